//! The CustomResourceDefinition, generated from the types: `pgdeck crd` prints it, `crds/`
//! holds a copy, and a test fails when the two drift.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::PostgresCluster;

pub fn definition() -> CustomResourceDefinition {
    PostgresCluster::crd()
}

/// The CRD as YAML, as `crds/postgresclusters.pgdeck.dev.yaml` holds it.
pub fn yaml() -> String {
    serde_yaml::to_string(&definition()).expect("the CRD serializes")
}

/// Where `crds/` keeps it, relative to the repository root.
pub const FILE: &str = "crds/postgresclusters.pgdeck.dev.yaml";
