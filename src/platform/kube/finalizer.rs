//! The cluster's finalizer: while it is set, deleting the cluster waits for the operator to carry
//! out what the delete asked (keep or drop the data and backups).

use json_patch::{
    AddOperation, PatchOperation, RemoveOperation, TestOperation, jsonptr::PointerBuf,
};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use super::{FIELD_MANAGER, KubeError};
use crate::api::PostgresCluster;

pub const FINALIZER: &str = "pgdeck.dev/finalizer";

pub fn has(cluster: &PostgresCluster) -> bool {
    cluster.finalizers().iter().any(|f| f == FINALIZER)
}

fn pointer(path: &str) -> PointerBuf {
    PointerBuf::parse(path).expect("a valid JSON pointer")
}

/// Add the finalizer unless it is there; returns the cluster as it is now when it changed.
/// The patch holds only if the cluster is unchanged since it was read, so no one else's
/// finalizer is lost.
pub async fn ensure(
    api: &Api<PostgresCluster>,
    cluster: &PostgresCluster,
) -> Result<Option<PostgresCluster>, KubeError> {
    if has(cluster) {
        return Ok(None);
    }
    let mut ops = vec![PatchOperation::Test(TestOperation {
        path: pointer("/metadata/resourceVersion"),
        value: cluster.resource_version().unwrap_or_default().into(),
    })];
    ops.push(PatchOperation::Add(if cluster.finalizers().is_empty() {
        AddOperation {
            path: pointer("/metadata/finalizers"),
            value: vec![FINALIZER].into(),
        }
    } else {
        AddOperation {
            path: pointer("/metadata/finalizers/-"),
            value: FINALIZER.into(),
        }
    }));
    patch(api, cluster, ops, "add the finalizer to")
        .await
        .map(Some)
}

/// Remove the finalizer, letting the deletion finish.
pub async fn remove(
    api: &Api<PostgresCluster>,
    cluster: &PostgresCluster,
) -> Result<(), KubeError> {
    let Some(i) = cluster.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{i}");
    let ops = vec![
        PatchOperation::Test(TestOperation {
            path: pointer(&path),
            value: FINALIZER.into(),
        }),
        PatchOperation::Remove(RemoveOperation {
            path: pointer(&path),
        }),
    ];
    patch(api, cluster, ops, "remove the finalizer from")
        .await
        .map(drop)
}

async fn patch(
    api: &Api<PostgresCluster>,
    cluster: &PostgresCluster,
    ops: Vec<PatchOperation>,
    action: &'static str,
) -> Result<PostgresCluster, KubeError> {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.patch(
        cluster.name(),
        &params,
        &Patch::Json::<()>(json_patch::Patch(ops)),
    )
    .await
    .map_err(KubeError::api::<PostgresCluster>(
        action,
        cluster.namespace(),
        cluster.name(),
    ))
}
