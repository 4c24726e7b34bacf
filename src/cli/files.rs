//! Reading manifest files named on the command line.

use std::io::Read;
use std::path::Path;

use super::Failure;
use crate::api::PostgresCluster;
use crate::api::manifest::{self, Document};
use crate::api::support::Platform;

/// The text of `path`, or of standard input for `-`.
pub fn read_manifest_source(path: &Path) -> Result<String, Failure> {
    let result = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|e| Failure {
        code: 1,
        message: format!("{}: cannot read: {e}", path.display()),
    })
}

/// The documents of a manifest file (PostgresClusters, ConfigMaps, Secrets), each in the
/// namespace its document gives, else `-n` (`flag`), else `default`; a document and `-n` that
/// disagree are refused, and so is a field `platform` does not support.
pub fn read_documents(
    file: &Path,
    platform: Platform,
    flag: Option<&str>,
    default: &str,
) -> Result<Vec<Document>, Failure> {
    let fail = |message: String| Failure { code: 1, message };
    let text = read_manifest_source(file)?;
    let documents = manifest::parse_documents_for(&text, platform).map_err(|e| {
        fail(
            e.errors
                .iter()
                .map(|err| format!("{}: {err}", file.display()))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    documents
        .into_iter()
        .map(|mut d| {
            let namespace = match &mut d {
                Document::Cluster(c) => &mut c.metadata.namespace,
                Document::ConfigMap(c) => &mut c.metadata.namespace,
                Document::Secret(s) => &mut s.metadata.namespace,
            };
            match (namespace.as_deref(), flag) {
                (Some(file_ns), Some(flag)) if file_ns != flag => {
                    return Err(fail(format!(
                        "{}: the namespace in the file ({file_ns}) does not match -n {flag}",
                        file.display()
                    )));
                }
                (Some(_), _) => {}
                (None, flag) => *namespace = Some(flag.unwrap_or(default).to_string()),
            }
            Ok(d)
        })
        .collect()
}

/// The clusters of a manifest file (see [`read_documents`]); ConfigMaps and Secrets beside
/// them are checked and left out. A file without a cluster is refused.
pub fn read_clusters(
    file: &Path,
    platform: Platform,
    flag: Option<&str>,
    default: &str,
) -> Result<Vec<PostgresCluster>, Failure> {
    let clusters: Vec<PostgresCluster> = read_documents(file, platform, flag, default)?
        .into_iter()
        .filter_map(Document::into_cluster)
        .collect();
    if clusters.is_empty() {
        return Err(Failure {
            code: 1,
            message: format!("{}: no PostgresCluster in the file", file.display()),
        });
    }
    Ok(clusters)
}
