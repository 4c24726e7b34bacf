//! Removing instances and clusters. Data directories and repositories are deleted only here,
//! and only for what the user removed: an instance scaled away, or a deleted cluster, each
//! unless `keep-data` / `keep-backups` asked to keep it (then it moves under `<home>/kept/`).

use std::path::{Path, PathBuf};

use super::super::files::{AtPath, FileError};
use super::super::home::ClusterDir;
use super::super::operator::Shared;
use super::state::{self, InstanceRecord};
use super::{instances, kept};
use crate::actions;
use crate::api::{PostgresCluster, annotations};
use crate::platform::PlatformError;

/// Where kept things of `cluster` go: a fresh folder per removal, so nothing kept is ever
/// overwritten, with a record of whose they are (a clone restores from exactly that cluster).
pub fn kept_dir(shared: &Shared, cluster: &PostgresCluster) -> Result<PathBuf, FileError> {
    let now = jiff::Timestamp::now();
    let stamp = now.strftime(kept::STAMP);
    let dir = shared
        .home
        .kept(cluster.namespace())
        .join(format!("{}-{stamp}", cluster.name()));
    let record = kept::Record {
        namespace: cluster.namespace().to_string(),
        name: cluster.name().to_string(),
        uid: cluster.metadata.uid.clone(),
        kept_at: now,
    };
    record.write(&dir)?;
    Ok(dir)
}

/// Stop one instance and delete its directory, or move it under `kept/` when `keep`.
pub async fn remove_instance(
    shared: &Shared,
    dir: &ClusterDir,
    cluster: &PostgresCluster,
    rec: &InstanceRecord,
    keep: bool,
) -> Result<(), String> {
    let inst = dir.instance(&rec.name);
    instances::stop(dir, &rec.name).await;
    inst.remove_socket_dir()
        .at(&inst.socket_dir())
        .map_err(|e| e.to_string())?;
    if keep {
        let target = kept_dir(shared, cluster)
            .map_err(|e| e.to_string())?
            .join("instances")
            .join(&rec.name);
        move_dir(inst.path(), &target).map_err(|e| e.to_string())?;
        tracing::info!(cluster = cluster.name(), instance = %rec.name, "kept its data in {}", target.display());
    } else {
        std::fs::remove_dir_all(inst.path())
            .at(inst.path())
            .map_err(|e| e.to_string())?;
    }
    state::remove_record(dir, &rec.name).map_err(|e| e.to_string())?;
    shared.ports.release(rec.pg_port);
    shared.ports.release(rec.api_port);
    Ok(())
}

/// Tear a deleted cluster down: stop every instance, clear its Patroni keys, and delete its
/// data and repositories except what the delete asked to keep.
pub async fn delete(
    shared: &Shared,
    cluster: &PostgresCluster,
    dir: &ClusterDir,
) -> Result<(), PlatformError> {
    let records = state::instances(dir);
    futures::future::join_all(records.iter().map(|r| async move {
        instances::stop(dir, &r.name).await;
        // Outside the home (as root, under /run): it would not go with the directories below.
        let _ = dir.instance(&r.name).remove_socket_dir();
    }))
    .await;
    let pooler_ports = super::pooler::recorded_ports(dir);
    super::pooler::stop_all(dir, &shared.account).await;
    if let Some(etcd) = shared.etcd() {
        etcd.delete_cluster(cluster.namespace(), cluster.name())
            .await?;
    }
    let keep_data = actions::flag(cluster, annotations::KEEP_DATA);
    let keep_backups = actions::flag(cluster, annotations::KEEP_BACKUPS);
    if keep_data || keep_backups {
        let target = kept_dir(shared, cluster)?;
        if keep_data && dir.instances().exists() {
            move_dir(&dir.instances(), &target.join("instances")).at(&dir.instances())?;
        }
        if keep_backups && dir.repos().exists() {
            move_dir(&dir.repos(), &target.join("repos")).at(&dir.repos())?;
        }
        tracing::info!(
            cluster = cluster.name(),
            "kept {} in {}",
            kept_what(keep_data, keep_backups),
            target.display()
        );
    }
    for rec in &records {
        shared.ports.release(rec.pg_port);
        shared.ports.release(rec.api_port);
    }
    for port in pooler_ports {
        shared.ports.release(port);
    }
    if dir.path().exists() {
        std::fs::remove_dir_all(dir.path()).at(dir.path())?;
    }
    Ok(())
}

fn kept_what(data: bool, backups: bool) -> &'static str {
    match (data, backups) {
        (true, true) => "data and backups",
        (true, false) => "data",
        _ => "backups",
    }
}

/// Move a directory within the home (a rename: same filesystem).
fn move_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(from, to)
}
