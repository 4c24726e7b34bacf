//! `spec.instances[]`: sets of identical PostgreSQL instances (PGO's `PostgresInstanceSetSpec`).

use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cluster::Metadata;
use super::sidecars::Sidecars;
use super::volume::VolumeClaimSpec;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSet {
    /// The set's name, unique in the cluster; `00`, `01`, ... by position when empty.
    #[serde(default)]
    #[schemars(regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"))]
    pub name: String,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,

    /// Instances in this set (1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<i32>,

    /// The PodDisruptionBudget's minAvailable for this set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,

    /// CPU and memory for the PostgreSQL container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// The volume for PostgreSQL's data directory. It may grow, never shrink.
    pub data_volume_claim_spec: VolumeClaimSpec,

    /// A separate volume for the write-ahead log. It may grow, never shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_volume_claim_spec: Option<VolumeClaimSpec>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Sidecars of the instance's pod, beside pgdeck's containers (PGO's `containers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Sidecars>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// Volumes for tablespaces, one per name: PGO mounts each at `/tablespaces/<name>`, and
    /// `CREATE TABLESPACE ... LOCATION '/tablespaces/<name>/data'` puts one there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub tablespace_volumes: Vec<TablespaceVolume>,

    /// More volumes for the instance's pod (PGO's `volumes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<InstanceVolumes>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceVolumes {
    /// A volume for temporary files (PGO mounts it at `/pgtmp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp: Option<VolumeClaimSpec>,

    /// Existing claims mounted at `/volumes/<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub additional: Vec<AdditionalVolume>,
}

/// An existing PersistentVolumeClaim mounted into the pod's containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalVolume {
    /// The directory under `/volumes`: unique in the set.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 55)
    )]
    pub name: String,

    /// The claim, in the cluster's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: String,

    /// The containers that mount it: every container of the pod when absent, none when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<String>>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// One tablespace's volume (PGO's `TablespaceVolume`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TablespaceVolume {
    /// Part of the volume's name, its mount path and a label value: unique in the set.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9]*$"), length(min = 1, max = 52))]
    pub name: String,

    /// The volume's claim. It may grow, never shrink.
    pub data_volume_claim_spec: VolumeClaimSpec,
}

impl InstanceSet {
    /// The desired number of instances; PGO's default is one.
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    /// The set's volume for temporary files (`volumes.temp`), when it asks for one.
    pub fn temp_volume(&self) -> Option<&VolumeClaimSpec> {
        self.volumes.as_ref()?.temp.as_ref()
    }
}

/// The name a set goes by: its own, or its position as PGO names unnamed sets.
pub fn set_name(set: &InstanceSet, index: usize) -> String {
    if set.name.is_empty() {
        format!("{index:02}")
    } else {
        set.name.clone()
    }
}
