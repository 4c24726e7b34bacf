//! The ConfigMaps and Secrets that manifests carry beside their PostgresClusters, as `kubectl
//! apply -f` takes them: a PGO manifest's init SQL (`spec.databaseInitSQL`) or custom TLS
//! Secrets come in the same file. Their rules are the API server's: a DNS-subdomain name, keys
//! of `[-._a-zA-Z0-9]`, a key in one map only; a Secret's `stringData` is merged into `data`
//! (base64 in the text) when it is stored.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::manifest::FieldError;
use super::validate::dns_label;

/// `v1`, the core group's version.
pub const CORE_VERSION: &str = "v1";

/// What kind a document is, from its `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    ConfigMap,
    Secret,
}

impl ObjectKind {
    pub fn from_kind(kind: &str) -> Option<ObjectKind> {
        match kind {
            "ConfigMap" => Some(ObjectKind::ConfigMap),
            "Secret" => Some(ObjectKind::Secret),
            _ => None,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::Secret => "Secret",
        }
    }

    /// As `kubectl` prints it: `configmap/NAME`.
    pub fn resource(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "configmap",
            ObjectKind::Secret => "secret",
        }
    }
}

/// The rules the API server applies to a ConfigMap.
pub fn validate_config_map(cm: &ConfigMap) -> Vec<FieldError> {
    let mut errors = name_errors(&cm.metadata);
    let binary: Vec<&String> = cm.binary_data.iter().flat_map(|d| d.keys()).collect();
    errors.extend(key_errors("data", cm.data.iter().flat_map(|d| d.keys())));
    errors.extend(key_errors("binaryData", binary.iter().copied()));
    for key in cm.data.iter().flat_map(|d| d.keys()) {
        if binary.contains(&key) {
            errors.push(FieldError::new(
                format!("binaryData.{key}"),
                "the key is in data too: a key may be in one of them only",
            ));
        }
    }
    errors
}

/// The rules the API server applies to a Secret (before `stringData` is merged).
pub fn validate_secret(secret: &Secret) -> Vec<FieldError> {
    let mut errors = name_errors(&secret.metadata);
    errors.extend(key_errors(
        "data",
        secret.data.iter().flat_map(|d| d.keys()),
    ));
    errors.extend(key_errors(
        "stringData",
        secret.string_data.iter().flat_map(|d| d.keys()),
    ));
    errors
}

/// A Secret as the API server stores it: `stringData` merged into `data` (its values win), and
/// type `Opaque` unless it says otherwise.
pub fn normalize_secret(mut secret: Secret) -> Secret {
    if let Some(strings) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in strings {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
    secret.type_.get_or_insert_with(|| "Opaque".into());
    secret
}

fn name_errors(meta: &ObjectMeta) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = match meta.name.as_deref() {
        None | Some("") => vec![FieldError::new("metadata.name", "required")],
        Some(n) => dns_subdomain(n)
            .err()
            .map(|e| FieldError::new("metadata.name", e))
            .into_iter()
            .collect(),
    };
    if let Some(ns) = &meta.namespace {
        errors.extend(
            dns_label(ns)
                .err()
                .map(|e| FieldError::new("metadata.namespace", e)),
        );
    }
    errors
}

fn key_errors<'a>(map: &str, keys: impl Iterator<Item = &'a String>) -> Vec<FieldError> {
    keys.filter_map(|k| {
        data_key(k)
            .err()
            .map(|e| FieldError::new(format!("{map}.{k}"), e))
    })
    .collect()
}

/// A key of a ConfigMap's or Secret's data, as the API server allows it.
pub fn data_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(
            "a key must be at most 253 letters, digits, '-', '_' or '.' (and not '.' or '..')"
                .into(),
        )
    }
}

/// RFC 1123 subdomain: the names of ConfigMaps and Secrets; dot-separated labels.
pub fn dns_subdomain(value: &str) -> Result<(), String> {
    if value.len() <= 253 && value.split('.').all(|part| dns_label(part).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid name: use at most 253 lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit (RFC 1123 subdomain)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys_follow_the_api_servers_rules() {
        assert!(dns_subdomain("hippo-init.sql").is_ok());
        for bad in ["", "Hippo", "a..b", "-a", "a/b", ".."] {
            assert!(dns_subdomain(bad).is_err(), "{bad:?}");
        }
        let cm: ConfigMap = serde_yaml::from_str(
            "metadata: {name: x}\ndata: {ok.sql: a, 'bad/key': b, both: c}\nbinaryData: {both: ZA==}",
        )
        .unwrap();
        let paths: Vec<String> = validate_config_map(&cm)
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["data.bad/key", "binaryData.both"]);
    }

    #[test]
    fn string_data_is_merged_into_data_and_wins() {
        let s: Secret = serde_yaml::from_str(
            "metadata: {name: tls}\ndata: {a: YQ==, b: Yg==}\nstringData: {b: plain}",
        )
        .unwrap();
        let s = normalize_secret(s);
        let data = s.data.unwrap();
        assert_eq!(data["a"].0, b"a");
        assert_eq!(data["b"].0, b"plain");
        assert!(s.string_data.is_none());
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
    }
}
