//! Claims an instance set mounts as additional volumes (`volumes.additional`). A tenant who may
//! edit a PostgresCluster but not make pods must not reach, through pgdeck, a volume pgdeck
//! keeps for a cluster (another cluster's data, a kept repository); and a claim that does not
//! exist would leave a rolled instance's pod pending. Either holds the instances as they run:
//! no new pod template is written until the spec names claims that exist and are not pgdeck's.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::KubeError;
use super::names;
use super::objects::Objects;
use crate::api::PostgresCluster;

pub async fn hold(
    client: &Client,
    cluster: &PostgresCluster,
    desired: &mut Objects,
    existing: &Objects,
) -> Result<Option<String>, KubeError> {
    let ns = cluster.namespace();
    let claims: BTreeSet<&str> = cluster
        .spec
        .instances
        .iter()
        .flat_map(|s| s.volumes.iter().flat_map(|v| &v.additional))
        .map(|a| a.claim_name.as_str())
        .collect();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut problems = Vec::new();
    for claim in claims {
        let found = api
            .get_opt(claim)
            .await
            .map_err(KubeError::api::<PersistentVolumeClaim>("get", ns, claim))?;
        match found {
            None => problems.push(format!(
                "spec.instances[].volumes.additional: claim {claim} does not exist"
            )),
            Some(v) if pgdecks(&v) => problems.push(format!(
                "spec.instances[].volumes.additional: claim {claim} is a volume pgdeck keeps \
                 for a cluster, never mounted as an additional volume"
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        return Ok(None);
    }
    // Instances keep the template they run; none starts. Removed instances are not in
    // `desired`, and go as they would.
    desired.stateful_sets = desired
        .stateful_sets
        .iter()
        .filter_map(|d| {
            existing
                .stateful_sets
                .iter()
                .find(|e| e.name_any() == d.name_any())
                .cloned()
        })
        .collect();
    Ok(Some(format!(
        "{}; the instances keep the pods they run until it is fixed",
        problems.join("; ")
    )))
}

/// Whether pgdeck made the volume for a cluster (this one or another).
fn pgdecks(v: &PersistentVolumeClaim) -> bool {
    let labels = v.labels();
    labels.contains_key(names::CLUSTER_UID)
        || labels.get(names::MANAGED_BY.0).map(String::as_str) == Some(names::MANAGED_BY.1)
}
