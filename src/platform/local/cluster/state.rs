//! What the reconciler remembers of a cluster between passes and across restarts.
//!
//! Instances are directories, `instances/<name>/`, each with a record, `records/<name>.json`
//! (set and ports), written before anything is started, so a reconciler killed at any moment
//! finds every instance it began. Records live apart from the directories, which the database
//! account writes. Cluster-wide progress lives in `state.json`.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::super::files::{AtPath, FileError, read_optional, read_regular, write_atomic};
use super::super::home::ClusterDir;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    pub name: String,
    pub set: String,
    pub pg_port: u16,
    pub api_port: u16,
    /// Creation order: newer instances go first on scale-down.
    pub created: jiff::Timestamp,
    /// The template (resources, image) it runs with; when the spec's differs, it restarts.
    #[serde(default)]
    pub template: Option<String>,
    /// Where its postgres_exporter listens, while `spec.monitoring.pgmonitor.exporter` asks
    /// for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter_port: Option<u16>,
}

impl InstanceRecord {
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    /// Instances being removed: stopped, then their data deleted or kept.
    #[serde(default)]
    pub removing: Vec<String>,
    /// The stanza exists and the first full backup was taken.
    #[serde(default)]
    pub stanza_created: bool,
    #[serde(default)]
    pub initial_backup: Option<String>,
    /// Users as last applied, by name: a fingerprint of options, databases and password.
    #[serde(default)]
    pub users: BTreeMap<String, u64>,
    /// The last `pgdeck.dev/trigger-switchover` value acted on.
    #[serde(default)]
    pub switchover_handled: Option<String>,
    /// A primary has run: bootstrapping (initdb or a restore from another cluster) is done.
    #[serde(default)]
    pub initialized: bool,
    /// The last `pgdeck.dev/pgbackrest-backup` value acted on.
    #[serde(default)]
    pub backup_handled: Option<String>,
    /// Since when every Patroni configuration of the cluster names its etcd user: the home's
    /// etcd turns authentication on once every cluster's Patroni has had time to reload.
    #[serde(default)]
    pub dcs_credentials: Option<jiff::Timestamp>,
    /// How `spec.databaseInitSQL` last ran: its SQL's digest, and PostgreSQL's message when it
    /// failed. A success is never run again; a failure waits for other SQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_sql: Option<InitSqlRun>,
    /// The last trigger value acted on, by verb (`restart`, `reload`, `reinit`): recorded
    /// before Patroni is asked, so a reconciler restarted meanwhile never repeats one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verbs_handled: BTreeMap<String, String>,
    /// A rolling restart asked for by `pgdeck.dev/trigger-restart`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_queue: Option<RestartQueue>,
    /// A cluster restored from another's repository: how far that archive went before the
    /// bootstrap, and where replay ended (see `plan::wal_gap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayCheck>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplayCheck {
    /// The newest WAL segment in the source's archive before the bootstrap; `None`: it held
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_to: Option<String>,
    /// Set once the restored cluster has promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::plan::wal_gap::ReplayEnd>,
}

/// The instances a rolling restart has still to restart: each leaves the queue before it is
/// restarted, so none restarts twice.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestartQueue {
    pub trigger: String,
    pub scope: String,
    pub instances: Vec<String>,
    /// Those whose restart failed, with why.
    #[serde(default)]
    pub failed: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InitSqlRun {
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ClusterState {
    pub fn load(dir: &ClusterDir) -> Result<ClusterState, FileError> {
        let path = dir.state();
        Ok(read_optional(&path)
            .at(&path)?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    pub fn save(&self, dir: &ClusterDir) -> Result<(), FileError> {
        let path = dir.state();
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(self).expect("serializes"),
            0o600,
        )
        .at(&path)
    }
}

/// Every instance recorded under `dir`, oldest first.
pub fn instances(dir: &ClusterDir) -> Vec<InstanceRecord> {
    adopt_legacy_records(dir);
    let Ok(entries) = std::fs::read_dir(dir.records()) else {
        return Vec::new();
    };
    let mut out: Vec<InstanceRecord> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|file| {
            let name = file.strip_suffix(".json")?;
            match read_record(dir, name, &dir.record(name)) {
                Ok(record) => record,
                Err(why) => {
                    tracing::warn!("ignoring {}: {why}", dir.record(name).display());
                    None
                }
            }
        })
        .collect();
    out.sort_by_key(|r| r.created);
    out
}

/// The record at `path` of the instance `name`, if pgdeck can trust it and the instance's
/// directory is there (a record without one is what an interrupted removal left).
fn read_record(
    dir: &ClusterDir,
    name: &str,
    path: &Path,
) -> Result<Option<InstanceRecord>, String> {
    // A link in `instances/` (planted when an earlier pgdeck let the account write there)
    // is no instance: nothing is read or done through it.
    match std::fs::symlink_metadata(dir.instance(name).path()) {
        Ok(m) if m.is_dir() => {}
        _ => return Ok(None),
    }
    let Some((bytes, meta)) = read_regular(path).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let record: InstanceRecord = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    check_record(
        &record,
        name,
        meta.uid(),
        meta.nlink(),
        nix::unistd::geteuid().as_raw(),
    )?;
    Ok(Some(record))
}

/// Move the records an earlier pgdeck kept inside instance directories to `records/`, each
/// once and only when pgdeck wrote it: the account could have replaced it since.
fn adopt_legacy_records(dir: &ClusterDir) {
    let Ok(entries) = std::fs::read_dir(dir.instances()) else {
        return;
    };
    for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
        if std::fs::symlink_metadata(dir.record(&name)).is_ok() {
            continue;
        }
        let legacy = dir.instance(&name).legacy_record();
        let adopted = read_record(dir, &name, &legacy).and_then(|record| match record {
            Some(r) => write_record(dir, &r)
                .and_then(|()| std::fs::remove_file(&legacy).at(&legacy))
                .map_err(|e| e.to_string()),
            None => Ok(()),
        });
        if let Err(why) = adopted {
            tracing::warn!("not adopting {}: {why}", legacy.display());
        }
    }
}

/// A record is pgdeck's when pgdeck's own account owns it (the database account cannot make
/// such a file, only move one: so it must have one link and name its own directory), and its
/// name is a DNS label equal to its directory's: a forged name such as `../../x` or another
/// instance's never reaches a path pgdeck deletes or starts.
pub fn check_record(
    record: &InstanceRecord,
    entry: &str,
    owner: u32,
    links: u64,
    pgdeck: u32,
) -> Result<(), String> {
    if owner != pgdeck || links != 1 {
        return Err(format!(
            "written by uid {owner} with {links} links, not by pgdeck (uid {pgdeck})"
        ));
    }
    crate::api::validate::dns_label(&record.name)?;
    if record.name != entry {
        return Err(format!(
            "it names {:?}, not its directory {entry:?}",
            record.name
        ));
    }
    Ok(())
}

pub fn write_record(dir: &ClusterDir, record: &InstanceRecord) -> Result<(), FileError> {
    let path = dir.record(&record.name);
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(record).expect("serializes"),
        0o644,
    )
    .at(&path)
}

/// Forget a removed instance (its directory is gone or kept elsewhere).
pub fn remove_record(dir: &ClusterDir, name: &str) -> Result<(), FileError> {
    let files = [
        dir.patroni_pid_file(name),
        dir.exporter_pid_file(name),
        dir.record(name),
    ];
    for path in files {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&path),
            _ => {}
        }
    }
    Ok(())
}

/// Every port recorded anywhere in the home, so the allocator never hands one out twice.
pub fn recorded_ports(namespaces: &Path) -> Vec<u16> {
    let Ok(nss) = std::fs::read_dir(namespaces) else {
        return Vec::new();
    };
    nss.filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .flat_map(|ns| {
            std::fs::read_dir(ns.path())
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
        })
        .filter(|c| c.path().is_dir())
        .flat_map(|c| {
            let dir = ClusterDir(c.path());
            let pooled = super::pooler::recorded_ports(&dir);
            instances(&dir)
                .into_iter()
                .flat_map(|r| [Some(r.pg_port), Some(r.api_port), r.exporter_port])
                .flatten()
                .chain(pooled)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> InstanceRecord {
        InstanceRecord {
            name: name.into(),
            set: "instance1".into(),
            pg_port: 20001,
            api_port: 20002,
            created: jiff::Timestamp::UNIX_EPOCH,
            template: None,
            exporter_port: None,
        }
    }

    #[test]
    fn only_pgdecks_own_record_naming_its_directory_counts() {
        let entry = "hippo-instance1-abcd";
        assert!(check_record(&record(entry), entry, 0, 1, 0).is_ok());
        // Made by the database account, or a hard link to pgdeck's record elsewhere.
        assert!(check_record(&record(entry), entry, 105, 1, 0).is_err());
        assert!(check_record(&record(entry), entry, 0, 2, 0).is_err());
        // A name that leads elsewhere, or another instance's.
        for forged in [
            "../../x",
            "/etc",
            "hippo-instance1-wxyz",
            "",
            "Hippo",
            "a/b",
        ] {
            assert!(
                check_record(&record(forged), entry, 0, 1, 0).is_err(),
                "{forged:?} was accepted"
            );
        }
    }

    #[test]
    fn records_live_apart_and_legacy_ones_are_adopted_only_when_pgdeck_wrote_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ClusterDir(tmp.path().to_path_buf());
        let legacy = |r: &InstanceRecord, name: &str| {
            let inst = dir.instance(name);
            std::fs::create_dir_all(inst.path()).unwrap();
            std::fs::write(inst.legacy_record(), serde_json::to_vec(r).unwrap()).unwrap();
        };
        // Written by an earlier pgdeck inside its directory: adopted, and gone from there.
        let old = record("hippo-instance1-abcd");
        legacy(&old, &old.name);
        // Another directory whose record names the first; a link to the first.
        legacy(&old, "hippo-instance1-wxyz");
        std::os::unix::fs::symlink(
            dir.instance(&old.name).path(),
            dir.instances().join("hippo-instance1-link"),
        )
        .unwrap();
        assert_eq!(instances(&dir), vec![old.clone()]);
        assert!(dir.record(&old.name).exists());
        assert!(!dir.instance(&old.name).legacy_record().exists());

        // What shows up in an instance's directory later is never read again.
        let mut forged = old.clone();
        forged.pg_port = 5432;
        legacy(&forged, &old.name);
        assert_eq!(instances(&dir), vec![old.clone()]);

        // A record whose directory is gone (an interrupted removal) is no instance.
        let new = record("hippo-instance1-efgh");
        write_record(&dir, &new).unwrap();
        assert_eq!(instances(&dir), vec![old.clone()]);
        std::fs::create_dir_all(dir.instance(&new.name).path()).unwrap();
        assert_eq!(instances(&dir).len(), 2);
        remove_record(&dir, &new.name).unwrap();
        remove_record(&dir, &new.name).unwrap();
        assert_eq!(instances(&dir), vec![old]);
    }
}
