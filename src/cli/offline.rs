//! Commands that reach no platform: `validate` (which checks for one), `crd`, `completions`.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, Failure, read_manifest_source};
use crate::api::crd;
use crate::api::manifest::{self, Document};
use crate::api::support::Platform;

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// Check each file as `apply` on `platform` would, fields it does not support included.
pub fn validate(files: &[PathBuf], platform: Platform) -> Result<(), Failure> {
    let mut invalid = 0;
    for file in files {
        let text = read_manifest_source(file)?;
        match manifest::parse_documents_for(&text, platform) {
            Ok(documents) => {
                for d in documents {
                    let (kind, name) = match &d {
                        Document::Cluster(c) => ("PostgresCluster", c.name()),
                        Document::ConfigMap(c) => ("ConfigMap", name_of(&c.metadata)),
                        Document::Secret(s) => ("Secret", name_of(&s.metadata)),
                    };
                    super::print(&format!(
                        "{}: valid {kind} {name} on {platform}\n",
                        file.display()
                    ));
                }
            }
            Err(e) => {
                invalid += 1;
                for err in e.errors {
                    eprintln!("{}: {err}", file.display());
                }
            }
        }
    }
    if invalid == 0 {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            message: format!("{invalid} of {} file(s) invalid", files.len()),
        })
    }
}

pub fn crd() -> Result<(), Failure> {
    super::print(&crd::yaml());
    Ok(())
}

pub fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    clap_complete::generate(shell, &mut Cli::command(), "pgdeck", &mut std::io::stdout());
    Ok(())
}
