//! Removing what a delete or scale-down asked to remove. Everything a cluster owns goes with it
//! through owner references (Kubernetes' garbage collector); volumes are kept instead when the
//! cluster says so (`pgdeck.dev/keep-data`, `pgdeck.dev/keep-backups`): they lose their owner
//! and carry `pgdeck.dev/kept`, and pgdeck never touches them again.

use k8s_openapi::api::core::v1::{Endpoints, PersistentVolumeClaim, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::apply::owned_by;
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
        .filter(|v| owned_by(*v, cluster.uid().as_deref()))
    {
        let is_repo = v.labels().contains_key(names::REPO);
        if (is_repo && keep_backups) || (!is_repo && keep_data) {
            keep(client, ns, &v.name_any()).await?;
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

/// Keep a volume: it no longer belongs to the cluster, so nothing deletes it with the cluster.
pub async fn keep(client: &Client, namespace: &str, volume: &str) -> Result<(), KubeError> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let patch = json!({
        "metadata": {
            "ownerReferences": null,
            "labels": { names::KEPT: "true" },
        }
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.patch(volume, &params, &Patch::Merge(&patch))
        .await
        .map_err(KubeError::api::<PersistentVolumeClaim>(
            "keep", namespace, volume,
        ))?;
    tracing::info!(volume, "kept: it no longer belongs to the cluster");
    Ok(())
}
