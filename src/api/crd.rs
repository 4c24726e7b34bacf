//! The CustomResourceDefinition, generated from the types: `pgdeck crd` prints it, `crds/`
//! holds a copy, and a test fails when the two drift.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::core::crd::merge_crds;

use super::PostgresCluster;

/// Versions served beside the stored one, with its schema: the API server converts between
/// identical schemas by changing `apiVersion` alone, so objects written as `v1beta1` before
/// `v1` existed are read and written either way.
const ALSO_SERVED: &[&str] = &["v1beta1"];

pub fn definition() -> CustomResourceDefinition {
    let stored = PostgresCluster::crd();
    let storage = stored.spec.versions[0].name.clone();
    let mut all = vec![stored.clone()];
    for name in ALSO_SERVED {
        let mut other = stored.clone();
        other.spec.versions[0].name = (*name).to_string();
        all.push(other);
    }
    merge_crds(all, &storage).expect("the versions share group, kind and scope")
}

/// The CRD as YAML, as `crds/postgresclusters.pgdeck.dev.yaml` holds it.
pub fn yaml() -> String {
    serde_yaml::to_string(&definition()).expect("the CRD serializes")
}

/// Where `crds/` keeps it, relative to the repository root.
pub const FILE: &str = "crds/postgresclusters.pgdeck.dev.yaml";
