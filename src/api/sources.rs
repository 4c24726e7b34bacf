//! Where a cluster's data comes from: `spec.dataSource` (clone or point-in-time restore from
//! another cluster's repository, or from a repository in the cloud that no cluster here owns;
//! or existing volumes to adopt) and `spec.standby` (follow another cluster).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration, VolumeProjection};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backups::Repo;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_cluster: Option<PostgresClusterDataSource>,
    // Boxed, as it is large and rarely set: every PostgresCluster carries the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest: Option<Box<PgBackRestDataSource>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<DataSourceVolumes>,
}

/// Bootstrap from a backup in a cloud repository described here (PGO's "cloud-based data
/// source"): no cluster here owns it, and nothing is ever written to it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestDataSource {
    /// The repository's stanza; `db` when absent, as PGO's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stanza: Option<String>,
    /// pgBackRest configuration files for the restore, e.g. a Secret with the repository's
    /// credentials (`repo1-s3-key`, `repo1-s3-key-secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Vec<VolumeProjection>>,
    /// Options for the restore's `[global]` section, e.g. `repo1-path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<BTreeMap<String, String>>,
    /// The repository to restore from.
    pub repo: Repo,
    /// `pgbackrest restore` options, each one word as a shell reads it (as PGO passes them),
    /// e.g. `--type=time`, `--target="2026-11-21 10:00:00+00"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

impl PgBackRestDataSource {
    /// The stanza to restore from.
    pub fn stanza(&self) -> &str {
        self.stanza.as_deref().unwrap_or("db")
    }
}

/// Existing volumes to adopt as the new cluster's (PGO's upgrade from v4 on its volumes).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceVolumes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_data_volume: Option<DataSourceVolume>,
    #[serde(
        default,
        rename = "pgWALVolume",
        skip_serializing_if = "Option::is_none"
    )]
    pub pg_wal_volume: Option<DataSourceVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_back_rest_volume: Option<DataSourceVolume>,
}

/// An existing PersistentVolumeClaim, and the directory of it that holds the data.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceVolume {
    pub pvc_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

/// Bootstrap from a backup in another cluster's pgBackRest repository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresClusterDataSource {
    /// The cluster whose repository holds the backup; it may since have been deleted with its
    /// backups kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// That cluster's namespace; this cluster's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_namespace: Option<String>,
    #[schemars(regex(pattern = "^repo[1-4]$"))]
    pub repo_name: String,
    /// `pgbackrest restore` options, each one word as a shell reads it (as PGO passes them),
    /// e.g. `--type=time`, `--target="2026-11-21 10:00:00+00"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Run as a standby of another cluster, from its repository or by streaming from its host.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Standby {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^repo[1-4]$"))]
    pub repo_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: Option<i32>,
}
