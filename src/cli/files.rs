//! Reading manifest files named on the command line.

use std::io::Read;
use std::path::Path;

use super::Failure;
use crate::api::support::Platform;
use crate::api::{PostgresCluster, manifest};

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

/// The clusters of a manifest file, each in the namespace its file gives, else `-n` (`flag`),
/// else `default`; a file and `-n` that disagree are refused, and so is a field `platform` does
/// not support.
pub fn read_clusters(
    file: &Path,
    platform: Platform,
    flag: Option<&str>,
    default: &str,
) -> Result<Vec<PostgresCluster>, Failure> {
    let fail = |message: String| Failure { code: 1, message };
    let text = read_manifest_source(file)?;
    let clusters = manifest::parse_all_for(&text, platform).map_err(|e| {
        fail(
            e.errors
                .iter()
                .map(|err| format!("{}: {err}", file.display()))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    clusters
        .into_iter()
        .map(|mut c| {
            match (&c.metadata.namespace, flag) {
                (Some(file_ns), Some(flag)) if file_ns != flag => {
                    return Err(fail(format!(
                        "{}: the namespace in the file ({file_ns}) does not match -n {flag}",
                        file.display()
                    )));
                }
                (Some(_), _) => {}
                (None, flag) => c.metadata.namespace = Some(flag.unwrap_or(default).to_string()),
            }
            Ok(c)
        })
        .collect()
}
