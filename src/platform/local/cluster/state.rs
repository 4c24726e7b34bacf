//! What the reconciler remembers of a cluster between passes and across restarts.
//!
//! Instances are directories: `instances/<name>/instance.json` records the set and ports, and
//! is written before anything is started, so a reconciler killed at any moment finds every
//! instance it began. Cluster-wide progress lives in `state.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::super::files::{AtPath, FileError, read_optional, write_atomic};
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
    let Ok(entries) = std::fs::read_dir(dir.instances()) else {
        return Vec::new();
    };
    let mut out: Vec<InstanceRecord> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| read_record(&e.path().join("instance.json")))
        .collect();
    out.sort_by_key(|r| r.created);
    out
}

fn read_record(path: &Path) -> Option<InstanceRecord> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
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
