//! The platform verbs on Kubernetes, and `render`.

use std::path::Path;

use super::{Failure, Global, print, read_manifest_source};
use crate::api::{PostgresCluster, manifest};
use crate::platform::kube::objects::{self, Inputs};
use crate::platform::kube::scaling;

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

/// Parse a manifest file, each cluster in the namespace its file or `-n` says.
fn read_clusters(file: &Path, global: &Global) -> Result<Vec<PostgresCluster>, Failure> {
    let text = read_manifest_source(file)?;
    let clusters = manifest::parse_all(&text).map_err(|e| {
        failure(
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
            match (&c.metadata.namespace, &global.namespace) {
                (Some(file_ns), Some(flag)) if file_ns != flag => {
                    return Err(failure(format!(
                        "{}: the namespace in the file ({file_ns}) does not match -n {flag}",
                        file.display()
                    )));
                }
                (Some(_), _) => {}
                (None, flag) => {
                    c.metadata.namespace = Some(flag.clone().unwrap_or_else(|| "default".into()))
                }
            }
            Ok(c)
        })
        .collect()
}

/// `pgdeck render -f FILE`: every object the operator would write for a new cluster, as YAML
/// documents. Owner references are left out: they need the cluster's UID, which only the API
/// server assigns.
pub fn render(file: &Path, global: &Global) -> Result<(), Failure> {
    let mut docs = Vec::new();
    for cluster in read_clusters(file, global)? {
        let plan = scaling::plan(&cluster, &[], None);
        let inputs = Inputs {
            instances: plan.run,
            ..Default::default()
        };
        let objects = objects::render(&cluster, &inputs).map_err(|e| failure(e.to_string()))?;
        docs.push(objects.to_yaml());
    }
    print(&docs.join("---\n"));
    Ok(())
}
