//! What the reconciler remembers of a cluster between passes and across restarts.
//!
//! Instances are directories: `instances/<name>/instance.json` records the set and ports, and
//! is written before anything is started, so a reconciler killed at any moment finds every
//! instance it began. Cluster-wide progress lives in `state.json`.

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

/// Every instance recorded under `dir`, oldest first. An instance's directory is writable by
/// the database account, so a record counts only when pgdeck wrote it (see [`check_record`]).
pub fn instances(dir: &ClusterDir) -> Vec<InstanceRecord> {
    let Ok(entries) = std::fs::read_dir(dir.instances()) else {
        return Vec::new();
    };
    let mut out: Vec<InstanceRecord> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| match read_record(dir, &name) {
            Ok(record) => record,
            Err(why) => {
                tracing::warn!("ignoring {}: {why}", dir.instance(&name).record().display());
                None
            }
        })
        .collect();
    out.sort_by_key(|r| r.created);
    out
}

/// The record of the instance directory `entry`, if it has one pgdeck can trust.
fn read_record(dir: &ClusterDir, entry: &str) -> Result<Option<InstanceRecord>, String> {
    let inst = dir.instance(entry);
    // A link in `instances/` (planted when an earlier pgdeck let the account write there)
    // is no instance: nothing is read or done through it.
    match std::fs::symlink_metadata(inst.path()) {
        Ok(m) if m.is_dir() => {}
        _ => return Ok(None),
    }
    let Some((bytes, meta)) = read_regular(&inst.record()).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let record: InstanceRecord = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    check_record(
        &record,
        entry,
        meta.uid(),
        meta.nlink(),
        nix::unistd::geteuid().as_raw(),
    )?;
    Ok(Some(record))
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
    let path = dir.instance(&record.name).record();
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(record).expect("serializes"),
        0o644,
    )
    .at(&path)
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
        .flat_map(|c| instances(&ClusterDir(c.path())))
        .flat_map(|r| [r.pg_port, r.api_port])
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
    fn links_and_foreign_records_are_no_instances() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ClusterDir(tmp.path().to_path_buf());
        let good = record("hippo-instance1-abcd");
        std::fs::create_dir_all(dir.instance(&good.name).path()).unwrap();
        write_record(&dir, &good).unwrap();
        // Another directory whose record names the first, and a link to the first.
        let other = dir.instance("hippo-instance1-wxyz");
        std::fs::create_dir_all(other.path()).unwrap();
        std::fs::write(other.record(), serde_json::to_vec(&good).unwrap()).unwrap();
        std::os::unix::fs::symlink(
            dir.instance(&good.name).path(),
            dir.instances().join("hippo-instance1-link"),
        )
        .unwrap();
        assert_eq!(instances(&dir), vec![good]);
    }
}
