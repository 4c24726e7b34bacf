//! `status`: what the reconciler observed. Only the reconciler writes it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresClusterStatus {
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready instances out of desired, e.g. `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<i32>,

    /// The instance holding the leader lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,

    /// Synchronous replication in effect: `off`, `on` or `strict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceStatus>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repos: Vec<RepoStatus>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patroni: Option<PatroniStatus>,

    /// `Ready`, `Progressing`, `Degraded`, and the outcome of actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The ConfigMap whose init SQL has run, as PGO records it.
    #[serde(
        default,
        rename = "databaseInitSQL",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_init_sql: Option<String>,

    /// The last manual backup (`pgdeck.dev/pgbackrest-backup`), as PGO's
    /// `status.pgbackrest.manualBackup` reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_backup: Option<ManualBackupStatus>,

    /// The connection pooler, as PGO's `status.proxy` reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyStatus>,
    /// How the last restart, reload and reinit asked for by their trigger annotations went,
    /// by verb (`restart`, `reload`, `reinit`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub actions: std::collections::BTreeMap<String, ActionStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    #[serde(rename = "pgBouncer")]
    pub pg_bouncer: PgBouncerStatus,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBouncerStatus {
    /// pgBouncers wanted.
    #[serde(default)]
    pub replicas: i32,
    /// pgBouncers that take connections.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Where each listens (`host:port`), where the platform assigns addresses (local).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Its pools are paused for a switchover: clients wait.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// One verb's last request (`pgdeck.dev/trigger-<verb>`) and its outcome.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionStatus {
    /// The trigger annotation's value this answers.
    pub trigger: String,
    /// What it applies to: an instance, `all` or `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub succeeded: bool,
    /// What happened, or why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A rolling restart's instances still to restart: each leaves before it restarts.
    /// Written also when empty, so that a merge of the status empties it.
    #[serde(default)]
    pub remaining: Vec<String>,
    /// Instances whose restart failed, with why.
    #[serde(default)]
    pub failed: Vec<String>,
    /// A reinit under way: the instance's postmaster start time before it (empty when it was
    /// not running); the rebuild is done once it runs one started since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManualBackupStatus {
    /// The annotation's value this backup answers.
    pub trigger: String,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub succeeded: bool,
    /// The backup's label when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// pgBackRest's message when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    pub name: String,
    /// The instance set it belongs to.
    pub set: String,
    /// `primary`, `sync_standby`, `replica` or `standby_leader`; absent while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Patroni's state: `running`, `streaming`, `starting`, `stopped`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<i64>,
    /// Bytes of WAL the replica is behind the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<i64>,
    /// Time the replica's replay is behind (pg_stat_replication.replay_lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_lag_seconds: Option<f64>,
    /// Settings changed that take effect only after a restart.
    #[serde(default)]
    pub pending_restart: bool,
    /// Which, as Patroni says (`work_mem: 4MB → 8MB, ...`), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_restart_reason: Option<String>,
    /// PostgreSQL's version, e.g. `15.10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_version: Option<String>,
    /// When PostgreSQL last started (Patroni's `postmaster_start_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// Patroni's tags that are set: `nofailover`, `nosync`, `name=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Running, and streaming when a replica.
    #[serde(default)]
    pub ready: bool,
    /// Since when it has not been ready; absent while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ready_since: Option<Time>,
    /// Where PostgreSQL listens (local platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Patroni's REST API port (local platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patroni_port: Option<i32>,
    /// Where its postgres_exporter serves `/metrics` (local platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<String>,
    /// The node the pod runs on (Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeStatus>,
    /// Its tablespace volumes (`spec.instances[].tablespaceVolumes`, local platform).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tablespace_volumes: Vec<TablespaceVolumeStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TablespaceVolumeStatus {
    pub name: String,
    /// The LOCATION to give `CREATE TABLESPACE`: the same in every instance of the cluster.
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    /// The requested size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<i64>,
    /// Bytes in use, where the platform can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoStatus {
    pub name: String,
    /// pgBackRest's repo-type: `posix`, `s3`, `gcs`, `azure`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default)]
    pub stanza_created: bool,
    /// pgBackRest's status for the stanza, e.g. `ok` or `no valid backups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stanza_status: Option<String>,
    /// Oldest and newest WAL segment archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_max: Option<String>,
    /// Backups, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<BackupStatus>,
    /// The repository's volume: its size, and its usage where the platform can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    pub label: String,
    /// `full`, `diff` or `incr`, as pgBackRest names them.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Time>,
    /// Size of the database at backup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Size of the backup in the repository (compressed, deduplicated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_size_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_stop: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatroniStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
    /// The value of `pgdeck.dev/trigger-switchover` last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<String>,
    /// The timeline the last switchover produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover_timeline: Option<i64>,
}

impl PostgresClusterStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    pub fn instance(&self, name: &str) -> Option<&InstanceStatus> {
        self.instances.iter().find(|i| i.name == name)
    }
}
