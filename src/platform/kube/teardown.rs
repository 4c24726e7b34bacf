//! Removing what a delete or scale-down asked to remove. Everything a cluster owns goes with it
//! through owner references (Kubernetes' garbage collector); volumes are kept instead when the
//! cluster says so (`pgdeck.dev/keep-data`, `pgdeck.dev/keep-backups`): they lose their owner
//! as soon as the annotation is set (see `objects`), and on delete carry `pgdeck.dev/kept` and
//! where they came from (namespace, name and UID of the cluster, and when), and pgdeck never
//! touches them again. No cluster adopts them (see `foreign`); a clone may read them.

use k8s_openapi::api::core::v1::{Endpoints, PersistentVolumeClaim, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::apply::belongs_to;
use super::{FIELD_MANAGER, KubeError, names, owned};
use crate::actions;
use crate::api::{PostgresCluster, annotations};

/// Carry out a delete: keep the volumes asked for, and remove what Patroni made (its Endpoints
/// and config Service, which the cluster does not own).
pub async fn cleanup(client: &Client, cluster: &PostgresCluster) -> Result<(), KubeError> {
    let ns = cluster.namespace();
    let keep_data = actions::flag(cluster, annotations::KEEP_DATA);
    let keep_backups = actions::flag(cluster, annotations::KEEP_BACKUPS);
    let params = ListParams::default().labels(&owned::selector(cluster.name()));
    let volumes: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let listed = volumes
        .list(&params)
        .await
        .map_err(KubeError::api::<PersistentVolumeClaim>(
            "list",
            ns,
            cluster.name(),
        ))?;
    for v in listed
        .items
        .iter()
        .filter(|v| belongs_to(*v, cluster.uid().as_deref()))
    {
        let is_repo = v.labels().contains_key(names::REPO);
        if (is_repo && keep_backups) || (!is_repo && keep_data) {
            keep(client, cluster, &v.name_any()).await?;
        }
    }
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    endpoints
        .delete_collection(&DeleteParams::background(), &params)
        .await
        .map_err(KubeError::api::<Endpoints>(
            "delete",
            ns,
            &format!("-l {}", owned::selector(cluster.name())),
        ))?;
    let config = format!("{}-config", names::Names::new(cluster.name(), ns).ha());
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    match services.delete(&config, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(KubeError::api::<Service>("delete", ns, &config)(e)),
    }
}

/// Keep a volume of `cluster`: it no longer belongs to the cluster, so nothing deletes it with
/// the cluster, and it says where it came from, so that a clone finds exactly it.
pub async fn keep(
    client: &Client,
    cluster: &PostgresCluster,
    volume: &str,
) -> Result<(), KubeError> {
    let ns = cluster.namespace();
    let mut labels = json!({ names::KEPT: "true" });
    if let Some(uid) = cluster.uid() {
        labels[names::CLUSTER_UID] = uid.into();
    }
    let patch = json!({
        "metadata": {
            "ownerReferences": null,
            "labels": labels,
            "annotations": {
                names::KEPT_FROM: format!("{ns}/{}", cluster.name()),
                names::KEPT_AT: jiff::Timestamp::now().to_string(),
            },
        }
    });
    merge(client, ns, volume, &patch, "keep").await?;
    tracing::info!(volume, "kept: it no longer belongs to the cluster");
    Ok(())
}

/// Drop the owner reference of a volume the cluster says to keep, now rather than at delete:
/// a deletion that propagates (foreground, Argo CD) would take it before the finalizer runs.
pub async fn release(client: &Client, namespace: &str, volume: &str) -> Result<(), KubeError> {
    let patch = json!({ "metadata": { "ownerReferences": null } });
    merge(client, namespace, volume, &patch, "release").await?;
    tracing::info!(volume, "to be kept: no longer owned by the cluster");
    Ok(())
}

async fn merge(
    client: &Client,
    namespace: &str,
    volume: &str,
    patch: &serde_json::Value,
    action: &'static str,
) -> Result<(), KubeError> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.patch(volume, &params, &Patch::Merge(patch))
        .await
        .map_err(KubeError::api::<PersistentVolumeClaim>(
            action, namespace, volume,
        ))?;
    Ok(())
}
