//! `spec.backups.pgbackrest`: repositories, schedules, manual backups and restores
//! (PGO's `PGBackRestArchive`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint, VolumeProjection,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cluster::Metadata;
use super::volume::VolumeClaimSpec;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backups {
    pub pgbackrest: PgBackRest,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,

    /// Extra pgBackRest configuration files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Vec<VolumeProjection>>,

    /// Options for pgBackRest's `[global]` section, e.g. `repo1-retention-full: "2"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<BTreeMap<String, String>>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<BackupJobs>,

    /// A backup to run when the annotation `pgdeck.dev/pgbackrest-backup` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualBackup>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_host: Option<RepoHost>,

    /// Backup repositories, `repo1` to `repo4`.
    #[schemars(length(min = 1, max = 4))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub repos: Vec<Repo>,

    /// An in-place restore of this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
}

/// Scheduling and resources for backup Jobs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupJobs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManualBackup {
    /// The repository to back up to.
    #[schemars(regex(pattern = "^repo[1-4]$"))]
    pub repo_name: String,
    /// Extra `pgbackrest backup` options, e.g. `--type=full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

/// Where the repository host runs (Kubernetes: the `<cluster>-repo-host` StatefulSet).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoHost {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
}

/// One pgBackRest repository: exactly one of `volume`, `s3`, `gcs`, `azure`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Repo {
    #[schemars(regex(pattern = "^repo[1-4]$"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<RepoVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<RepoS3>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<RepoGcs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<RepoAzure>,
    /// Cron schedules for automatic backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedules: Option<Schedules>,
}

impl Repo {
    /// The storage kind, as pgBackRest's `repo-type` names it.
    pub fn kind(&self) -> &'static str {
        match (&self.volume, &self.s3, &self.gcs, &self.azure) {
            (_, Some(_), _, _) => "s3",
            (_, _, Some(_), _) => "gcs",
            (_, _, _, Some(_)) => "azure",
            _ => "posix",
        }
    }

    /// Its bucket or container, when it is in the cloud.
    pub fn cloud(&self) -> Option<Cloud<'_>> {
        match (&self.s3, &self.gcs, &self.azure) {
            (Some(s3), _, _) => Some(Cloud::S3(s3)),
            (_, Some(gcs), _) => Some(Cloud::Gcs(gcs)),
            (_, _, Some(azure)) => Some(Cloud::Azure(azure)),
            _ => None,
        }
    }
}

/// A repository in the cloud: where pgBackRest finds it, the credentials aside.
#[derive(Clone, Copy, Debug)]
pub enum Cloud<'a> {
    S3(&'a RepoS3),
    Gcs(&'a RepoGcs),
    Azure(&'a RepoAzure),
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoVolume {
    pub volume_claim_spec: VolumeClaimSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoS3 {
    pub bucket: String,
    pub endpoint: String,
    pub region: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoGcs {
    pub bucket: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoAzure {
    pub container: String,
}

/// Cron schedules (five fields, as in a CronJob) per backup type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differential: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<String>,
}

impl Schedules {
    /// The schedules that are set, with pgBackRest's name for the backup type.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("full", &self.full),
            ("diff", &self.differential),
            ("incr", &self.incremental),
        ]
        .into_iter()
        .filter_map(|(kind, cron)| cron.as_deref().map(|c| (kind, c)))
    }
}

/// An in-place restore (PGO's `PGBackRestRestore`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restore {
    /// Run the restore; it runs once per change of the annotation `pgdeck.dev/pgbackrest-restore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[schemars(regex(pattern = "^repo[1-4]$"))]
    pub repo_name: String,
    /// `pgbackrest restore` options, e.g. `--type=time`, `--target=...`.
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
