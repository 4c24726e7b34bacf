//! Where a cluster made from another's backups (`spec.dataSource.postgresCluster`) restores
//! from: the source cluster's live repository, or, when it was deleted with its backups kept,
//! the newest kept copy.

use super::super::home::Home;
use super::instances::RestoreSource;
use super::kept;
use crate::api::PostgresCluster;
use crate::plan::pgbackrest_options::{self, Command};
use crate::platform::PlatformError;

pub fn source(
    home: &Home,
    cluster: &PostgresCluster,
) -> Result<Option<RestoreSource>, PlatformError> {
    let Some(src) = cluster
        .spec
        .data_source
        .as_ref()
        .and_then(|d| d.postgres_cluster.as_ref())
    else {
        return Ok(None);
    };
    let name = src.cluster_name.as_deref().unwrap_or_default();
    let ns = src
        .cluster_namespace
        .as_deref()
        .unwrap_or(cluster.namespace());
    let live = home.cluster(ns, name).repo(&src.repo_name);
    let path = if live.join("backup").exists() {
        Some(live)
    } else {
        kept::newest_repo(home, ns, name, &src.repo_name)
    };
    let path = path.ok_or_else(|| {
        PlatformError::Operator(format!(
            "spec.dataSource.postgresCluster: cluster {ns}/{name} has no repository {} here, live or kept \
             (delete --keep-backups keeps one)",
            src.repo_name
        ))
    })?;
    Ok(Some(RestoreSource {
        repo: src.repo_name.clone(),
        path,
        // Validated at apply; a stored spec from before that is refused here, not run.
        options: pgbackrest_options::read_all(
            src.options.as_deref().unwrap_or_default(),
            Command::Restore,
        )
        .map_err(|e| PlatformError::Operator(format!("spec.dataSource.postgresCluster.{e}")))?,
    }))
}
