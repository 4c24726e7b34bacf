//! Where a clone (`spec.dataSource.postgresCluster`) restores from: the source's repository
//! host while the source runs, or the repository volume a delete kept (`pgdeck.dev/kept`).
//!
//! Once the clone has instances, what they were made with stays (read from its own objects,
//! no API call), so its pods never change when the source comes or goes. Only before the first
//! instance does the reconciler look: one GET of the source's repository host StatefulSet, one
//! of the kept volume. The kept volume is only ever read: mounted read-only, never written.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::KubeError;
use super::apply::owned_by;
use super::names::{self, Names};
use super::objects::{self, RestoreFrom};
use super::owned::Owned;
use crate::api::PostgresCluster;

/// Where `cluster` restores from, or why it cannot (nothing to restore from: no instance may
/// start, or it would start empty). `first` is the instance that would bootstrap.
pub async fn decide(
    client: &Client,
    cluster: &PostgresCluster,
    owned: &Owned,
    first: Option<&str>,
) -> Result<Result<RestoreFrom, String>, KubeError> {
    let Some(src) = cluster
        .spec
        .data_source
        .as_ref()
        .and_then(|d| d.postgres_cluster.as_ref())
    else {
        return Ok(Ok(RestoreFrom::SourceHost));
    };
    let Some(name) = src.cluster_name.as_deref() else {
        return Ok(Ok(RestoreFrom::SourceHost));
    };
    if objects::restore_problem(cluster).is_some() {
        // Another namespace: reported as it is.
        return Ok(Ok(RestoreFrom::SourceHost));
    }
    if let Some(made) = as_made(cluster, owned, &src.repo_name) {
        return Ok(Ok(made));
    }
    let ns = cluster.namespace();
    let source = Names::new(name, ns);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let host = source.repo_host();
    if sets
        .get_opt(&host)
        .await
        .map_err(KubeError::api::<StatefulSet>("get", ns, &host))?
        .is_some()
    {
        return Ok(Ok(RestoreFrom::SourceHost));
    }
    let claim = source.repo_volume(&src.repo_name);
    let volumes: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let kept = volumes
        .get_opt(&claim)
        .await
        .map_err(KubeError::api::<PersistentVolumeClaim>("get", ns, &claim))?
        .is_some_and(|v| v.labels().get(names::KEPT).map(String::as_str) == Some("true"));
    if kept {
        return Ok(Ok(RestoreFrom::KeptVolume {
            claim,
            instance: first.map(str::to_string),
        }));
    }
    Ok(Err(format!(
        "spec.dataSource.postgresCluster: nothing to restore from: cluster {ns}/{name} has no \
         repository host ({host}) and no kept volume {claim} (labelled {}=true) holds its \
         repository {}; no instance starts until one of them exists",
        names::KEPT,
        src.repo_name
    )))
}

/// What the cluster's instances were made with, when it has any.
fn as_made(cluster: &PostgresCluster, owned: &Owned, repo: &str) -> Option<RestoreFrom> {
    let uid = cluster.uid();
    let instances: Vec<&StatefulSet> = owned
        .objects
        .stateful_sets
        .iter()
        .filter(|s| {
            owned_by(*s, uid.as_deref())
                && s.labels().get(names::COMPONENT).map(String::as_str) == Some("instance")
        })
        .collect();
    for s in &instances {
        let claim = s
            .spec
            .as_ref()
            .and_then(|spec| spec.template.spec.as_ref())
            .and_then(|pod| pod.volumes.as_ref())
            .into_iter()
            .flatten()
            .find(|v| v.name == objects::KEPT_VOLUME)
            .and_then(|v| v.persistent_volume_claim.as_ref());
        if let Some(claim) = claim {
            return Some(RestoreFrom::KeptVolume {
                claim: claim.claim_name.clone(),
                instance: s.labels().get(names::INSTANCE).cloned(),
            });
        }
    }
    // The instance that mounted it is gone: the others' configuration still says so.
    let path = format!("-path={}\n", objects::kept_path(repo));
    let kept_config = owned.objects.config_maps.iter().any(|c| {
        owned_by(c, uid.as_deref())
            && c.data
                .as_ref()
                .and_then(|d| d.get(objects::RESTORE_CONFIG_FILE))
                .is_some_and(|t| t.contains(&path))
    });
    if kept_config {
        let src = cluster
            .spec
            .data_source
            .as_ref()?
            .postgres_cluster
            .as_ref()?;
        let source = Names::new(src.cluster_name.as_deref()?, cluster.namespace());
        return Some(RestoreFrom::KeptVolume {
            claim: source.repo_volume(repo),
            instance: None,
        });
    }
    (!instances.is_empty()).then_some(RestoreFrom::SourceHost)
}

/// Whether `cluster` ever had a primary: its bootstrap is done.
pub fn bootstrapped(cluster: &PostgresCluster, leader: Option<&str>) -> bool {
    leader.is_some() || cluster.status.as_ref().is_some_and(|s| s.primary.is_some())
}
