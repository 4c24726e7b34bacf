//! Reading manifests: YAML text → `PostgresCluster`, refusing what is not one.
//!
//! Every way a manifest enters (a file, the console's editor, the API) goes through [`parse`]:
//! broken YAML is reported with its line and column, a field the resource does not have is
//! refused (a typo must never vanish silently), and then the rules of [`super::validate`] apply.
//! Each error names the field path (`spec.instances[0].replicas`) and the rule.

use std::fmt;

use serde::Deserialize;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::objects::{self, CORE_VERSION, ObjectKind};
use super::positions::Positions;
use super::support::{self, Platform};
use super::{API_VERSION, KIND, PostgresCluster, READ_API_VERSIONS, validate};

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, e.g. `spec.instances[0].replicas`; empty for the document as a whole.
    pub path: String,
    /// The rule it breaks.
    pub message: String,
    /// Where it is in the text (1-based line, column), when it came from text.
    pub position: Option<(usize, usize)>,
    /// The document it is about when that is not a PostgresCluster, e.g. `ConfigMap hippo-sql`.
    pub document: Option<String>,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
            position: None,
            document: None,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, column)) = self.position {
            write!(f, "line {line}, column {column}: ")?;
        }
        if let Some(document) = &self.document {
            write!(f, "{document}: ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything wrong with a manifest, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<FieldError> for ManifestError {
    fn from(e: FieldError) -> Self {
        ManifestError { errors: vec![e] }
    }
}

impl From<Vec<FieldError>> for ManifestError {
    fn from(errors: Vec<FieldError>) -> Self {
        ManifestError { errors }
    }
}

/// One document of a manifest file.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Cluster(Box<PostgresCluster>),
    ConfigMap(ConfigMap),
    /// As the API server stores it: `stringData` merged into `data`.
    Secret(Secret),
}

impl Document {
    pub fn into_cluster(self) -> Option<PostgresCluster> {
        match self {
            Document::Cluster(c) => Some(*c),
            _ => None,
        }
    }
}

/// Parse and validate every document in `text` (YAML, one or more `---` documents):
/// PostgresClusters, and the ConfigMaps and Secrets they reference. Anything else is refused.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, ManifestError> {
    documents(text, None)
}

/// [`parse_documents`], refusing too every field `platform` does not support ([`support`]).
pub fn parse_documents_for(text: &str, platform: Platform) -> Result<Vec<Document>, ManifestError> {
    documents(text, Some(platform))
}

/// Parse and validate every PostgresCluster in `text`; ConfigMaps and Secrets beside them are
/// validated and left out. PGO's apiVersions, and our `v1beta1`, are read as ours. Any
/// `status` in the text is kept as it was given; callers that store a manifest drop it.
pub fn parse_all(text: &str) -> Result<Vec<PostgresCluster>, ManifestError> {
    clusters(documents(text, None)?)
}

/// [`parse_all`], refusing too every field `platform` does not support ([`support`]).
pub fn parse_all_for(
    text: &str,
    platform: Platform,
) -> Result<Vec<PostgresCluster>, ManifestError> {
    clusters(documents(text, Some(platform))?)
}

fn clusters(documents: Vec<Document>) -> Result<Vec<PostgresCluster>, ManifestError> {
    let clusters: Vec<PostgresCluster> = documents
        .into_iter()
        .filter_map(Document::into_cluster)
        .collect();
    if clusters.is_empty() {
        return Err(FieldError::new("", "no PostgresCluster in the text").into());
    }
    Ok(clusters)
}

fn documents(text: &str, platform: Option<Platform>) -> Result<Vec<Document>, ManifestError> {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    for (doc, deserializer) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match parse_document(text, doc, deserializer, platform) {
            Ok(Some(d)) => documents.push(d),
            Ok(None) => {}
            // After a syntax error the YAML stream cannot be resumed: serde_yaml would yield
            // the same error forever.
            Err(Broken(e)) => {
                errors.push(e);
                break;
            }
            Err(Invalid(e)) => errors.extend(e.errors),
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    if documents.is_empty() {
        return Err(FieldError::new("", "no PostgresCluster in the text: it is empty").into());
    }
    Ok(documents)
}

/// Parse and validate exactly one PostgresCluster.
pub fn parse(text: &str) -> Result<PostgresCluster, ManifestError> {
    let mut clusters = parse_all(text)?;
    if clusters.len() > 1 {
        return Err(FieldError::new(
            "",
            format!(
                "expected one PostgresCluster, found {} documents",
                clusters.len()
            ),
        )
        .into());
    }
    Ok(clusters.remove(0))
}

/// Why a document was refused: its YAML is broken, or it is not a valid PostgresCluster.
enum DocumentError {
    Broken(FieldError),
    Invalid(ManifestError),
}
use DocumentError::{Broken, Invalid};

impl From<ManifestError> for DocumentError {
    fn from(e: ManifestError) -> Self {
        Invalid(e)
    }
}

fn parse_document(
    text: &str,
    doc: usize,
    deserializer: serde_yaml::Deserializer<'_>,
    platform: Option<Platform>,
) -> Result<Option<Document>, DocumentError> {
    let value = serde_yaml::Value::deserialize(deserializer).map_err(|e| Broken(yaml_error(e)))?;
    if value.is_null() {
        return Ok(None); // an empty document, e.g. after a trailing `---`
    }
    // Positions are only needed to report errors; most manifests have none.
    let positions = std::cell::OnceCell::new();
    let locate = |mut e: FieldError| {
        e.position = positions
            .get_or_init(|| Positions::index(text, doc))
            .find(&e.path);
        e
    };
    if let Some(kind) = value
        .get("kind")
        .and_then(|k| k.as_str())
        .and_then(ObjectKind::from_kind)
    {
        let document = format!(
            "{} {}",
            kind.kind(),
            value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or("(no name)")
        );
        return parse_object(kind, value).map(Some).map_err(|errors| {
            let errors: Vec<FieldError> = errors
                .into_iter()
                .map(|e| FieldError {
                    document: Some(document.clone()),
                    ..locate(e)
                })
                .collect();
            Invalid(errors.into())
        });
    }
    check_type(&value).map_err(|e| ManifestError::from(locate(e)))?;

    let mut unknown = Vec::new();
    let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(field_path(&path));
    let parsed: Result<PostgresCluster, _> = serde_path_to_error::deserialize(
        serde_ignored::Deserializer::new(value, &mut note_unknown),
    );
    let cluster = match parsed {
        Ok(c) => c,
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            return Err(ManifestError::from(locate(FieldError::new(
                path,
                e.into_inner().to_string(),
            )))
            .into());
        }
    };
    let mut errors: Vec<FieldError> = unknown
        .into_iter()
        // The generated type writes these two itself and ignores them on read; check_type read them.
        .filter(|path| path != "apiVersion" && path != "kind")
        .map(|path| FieldError::new(path, "unknown field: PostgresCluster has no such field"))
        .collect();
    errors.extend(validate::validate(&cluster));
    if let Some(platform) = platform {
        errors.extend(support::refusals(&cluster, platform));
    }
    if errors.is_empty() {
        Ok(Some(Document::Cluster(Box::new(cluster))))
    } else {
        let mut errors: Vec<FieldError> = errors.into_iter().map(locate).collect();
        errors.sort_by_key(|e| e.position); // stable: errors without a line keep their order
        Err(ManifestError::from(errors).into())
    }
}

/// A ConfigMap or Secret document: `v1`, no unknown field, the API server's rules.
fn parse_object(kind: ObjectKind, value: serde_yaml::Value) -> Result<Document, Vec<FieldError>> {
    match value.get("apiVersion").and_then(|v| v.as_str()) {
        Some(CORE_VERSION) => {}
        other => {
            let what = other.map_or("required".to_string(), |o| format!("not {o}"));
            return Err(vec![FieldError::new(
                "apiVersion",
                format!("must be {CORE_VERSION} for a {}: {what}", kind.kind()),
            )]);
        }
    }
    fn typed<T: serde::de::DeserializeOwned>(
        value: serde_yaml::Value,
    ) -> Result<T, Vec<FieldError>> {
        let mut unknown = Vec::new();
        let mut note_unknown = |p: serde_ignored::Path<'_>| unknown.push(field_path(&p));
        let parsed: Result<T, _> = serde_path_to_error::deserialize(
            serde_ignored::Deserializer::new(value, &mut note_unknown),
        );
        match parsed {
            Ok(_) if !unknown.is_empty() => Err(unknown
                .into_iter()
                .map(|p| FieldError::new(p, "unknown field"))
                .collect()),
            Ok(t) => Ok(t),
            Err(e) => {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                Err(vec![FieldError::new(path, e.into_inner().to_string())])
            }
        }
    }
    match kind {
        ObjectKind::ConfigMap => {
            let cm: ConfigMap = typed(value)?;
            let errors = objects::validate_config_map(&cm);
            if errors.is_empty() {
                Ok(Document::ConfigMap(cm))
            } else {
                Err(errors)
            }
        }
        ObjectKind::Secret => {
            let secret: Secret = typed(value).map_err(|mut errors| {
                for e in errors.iter_mut().filter(|e| e.path.starts_with("data.")) {
                    e.message =
                        format!("not base64 (plain text goes in stringData): {}", e.message);
                }
                errors
            })?;
            let errors = objects::validate_secret(&secret);
            if errors.is_empty() {
                Ok(Document::Secret(objects::normalize_secret(secret)))
            } else {
                Err(errors)
            }
        }
    }
}

/// `apiVersion` and `kind` first: a Deployment should be told it is not a PostgresCluster,
/// not that it has a hundred unknown fields.
fn check_type(value: &serde_yaml::Value) -> Result<(), FieldError> {
    if !value.is_mapping() {
        return Err(FieldError::new(
            "",
            "a manifest must be a YAML mapping (key: value)",
        ));
    }
    match value.get("kind").and_then(|k| k.as_str()) {
        Some(KIND) => {}
        Some(other) => {
            return Err(FieldError::new(
                "kind",
                format!("must be {KIND}, not {other}"),
            ));
        }
        None => return Err(FieldError::new("kind", format!("required: must be {KIND}"))),
    }
    match value.get("apiVersion").and_then(|v| v.as_str()) {
        Some(version) if READ_API_VERSIONS.contains(&version) => Ok(()),
        Some(other) => Err(FieldError::new(
            "apiVersion",
            format!(
                "must be one of {}, not {other}",
                READ_API_VERSIONS.join(", ")
            ),
        )),
        None => Err(FieldError::new(
            "apiVersion",
            format!("required: must be {API_VERSION}"),
        )),
    }
}

/// A syntax error, with its position.
fn yaml_error(e: serde_yaml::Error) -> FieldError {
    let message = e.to_string();
    let mut err = FieldError::new("", strip_location(&message).to_string());
    err.message = format!("invalid YAML: {}", err.message);
    err.position = e.location().map(|l| (l.line(), l.column()));
    err
}

fn strip_location(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

/// `spec.instances[0].replcas` from serde_ignored's path.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let parent = field_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Give errors about the first document of `text` their line and column, where they have none.
pub fn locate(text: &str, errors: &mut [FieldError]) {
    if errors.iter().all(|e| e.position.is_some()) {
        return;
    }
    let positions = Positions::index(text, 0);
    for e in errors.iter_mut().filter(|e| e.position.is_none()) {
        e.position = positions.find(&e.path);
    }
}

/// The manifest as YAML, the way pgdeck writes it.
pub fn to_yaml(cluster: &PostgresCluster) -> String {
    serde_yaml::to_string(cluster).expect("a PostgresCluster always serializes")
}
