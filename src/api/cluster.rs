//! The `PostgresCluster` resource: the spec's top level.
//!
//! Field names and shapes follow Crunchy PGO v5's `PostgresCluster` wherever the two overlap, so a
//! PGO manifest loads with only its `apiVersion` changed. Every field is optional unless PGO
//! requires it, and absent stays absent: a manifest round-trips without gaining defaults.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, SecretProjection, VolumeProjection};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::addons::{Monitoring, Proxy};
use super::authentication::Authentication;
use super::backups::Backups;
use super::instances::InstanceSet;
use super::instrumentation::InstrumentationSpec;
use super::patroni::PatroniSpec;
use super::sources::{DataSource, Standby};
use super::status::PostgresClusterStatus;
use super::users::{DatabaseInitSql, UserSpec};

/// Labels and annotations added to the objects pgdeck creates (PGO's `Metadata`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// How a Service is exposed (PGO's `ServiceSpec`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// The Service type; ClusterIP when absent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ServiceType>,
    /// The port on every node for a NodePort or LoadBalancer Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// Single or dual stack (the Service's `ipFamilyPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family_policy: Option<IpFamilyPolicy>,
    /// Whether traffic from inside the cluster goes to any node's endpoint or only the local one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_traffic_policy: Option<TrafficPolicy>,
    /// The same for traffic from outside: only for type NodePort or LoadBalancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<TrafficPolicy>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum IpFamilyPolicy {
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TrafficPolicy {
    Cluster,
    Local,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    Never,
    IfNotPresent,
}

/// PGO's `spec.config`: PostgreSQL parameters (PGO 5.8+) and extra configuration files
/// projected into every instance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<VolumeProjection>>,
    /// PostgreSQL parameters, over those of `spec.patroni.dynamicConfiguration.postgresql`
    /// (PGO's precedence); reloaded or restarted for as those are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 50))]
    pub parameters: Option<BTreeMap<String, IntOrString>>,
}

/// A PostgreSQL high-availability cluster: instance sets managed by Patroni, backed up by
/// pgBackRest.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
// Each printer column has its own `type_`; clippy reads them as one attribute repeated.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "pgdeck.dev",
    version = "v1",
    kind = "PostgresCluster",
    plural = "postgresclusters",
    shortname = "pgc",
    category = "pgdeck",
    namespaced,
    status = "PostgresClusterStatus",
    derive = "PartialEq",
    doc = "A PostgreSQL high-availability cluster run by pgdeck.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.ready",
        description = "Ready instances out of desired"
    ),
    printcolumn(
        name = "Primary",
        type_ = "string",
        json_path = ".status.primary",
        description = "The instance that accepts writes"
    ),
    printcolumn(
        name = "Instances",
        type_ = "integer",
        json_path = ".status.instanceCount",
        description = "Instances in the cluster"
    ),
    printcolumn(
        name = "Sync",
        type_ = "string",
        json_path = ".status.sync",
        description = "Synchronous replication: off, on or strict"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!has(self.customTLSSecret) || has(self.customReplicationTLSSecret)")
    .message("customReplicationTLSSecret is required when customTLSSecret is set")
    .field_path(".customReplicationTLSSecret"))]
#[x_kube(validation = Rule::new("self.postgresVersion == oldSelf.postgresVersion")
    .message("postgresVersion cannot change: a major upgrade needs a new cluster restored from this one's backups")
    .field_path(".postgresVersion"))]
#[serde(rename_all = "camelCase")]
pub struct PostgresClusterSpec {
    /// Labels and annotations for every object of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,

    /// The major PostgreSQL version.
    #[schemars(range(min = *super::POSTGRES_MAJORS.start(), max = *super::POSTGRES_MAJORS.end()))]
    pub postgres_version: i32,

    /// The instance image; the platform's default image when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,

    /// The port PostgreSQL listens on (5432 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: Option<i32>,

    /// How the primary Service is exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,

    /// How the replica Service is exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_service: Option<ServiceSpec>,

    /// Stop every instance while keeping all data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<bool>,

    /// Suspend reconciliation: nothing is changed while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,

    /// Sets of identical PostgreSQL instances.
    #[schemars(length(min = 1))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub instances: Vec<InstanceSet>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<Backups>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patroni: Option<PatroniSpec>,

    /// Users and databases to create; a user and database named after the cluster when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub users: Option<Vec<UserSpec>>,

    /// Client authentication rules (PGO's `spec.authentication`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,

    #[serde(
        default,
        rename = "databaseInitSQL",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_init_sql: Option<DatabaseInitSql>,

    /// A Secret with the server's TLS certificate (tls.crt, tls.key, ca.crt).
    #[serde(
        default,
        rename = "customTLSSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_tls_secret: Option<SecretProjection>,

    /// A Secret with the replication user's TLS client certificate.
    #[serde(
        default,
        rename = "customReplicationTLSSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_replication_tls_secret: Option<SecretProjection>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    /// An OpenTelemetry collector beside PostgreSQL (PGO 5.8+).
    // Boxed: a cluster is moved around by value, and most have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrumentation: Option<Box<InstrumentationSpec>>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<Standby>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigFiles>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openshift: Option<bool>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplemental_groups: Option<Vec<i64>>,
}
