//! Growing volumes. A larger `dataVolumeClaimSpec`, `walVolumeClaimSpec` or repository volume
//! is written to the existing PersistentVolumeClaim (pgdeck creates them itself, not through
//! StatefulSet templates, which could not change), when its StorageClass allows expansion.
//! When it does not, the claim stays as it is and the `VolumeResize` condition says why and
//! what to do instead.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::{KubeError, names};
use crate::api::quantity;

/// Volumes to grow: each one whose StorageClass refuses stays in `desired` as it is in
/// `existing` (so it is not written); the messages say which and why.
pub async fn check(
    client: &Client,
    desired: &mut [PersistentVolumeClaim],
    existing: &[PersistentVolumeClaim],
) -> Result<Vec<String>, KubeError> {
    let classes: Api<StorageClass> = Api::all(client.clone());
    let mut refused = Vec::new();
    for want in desired.iter_mut() {
        let Some(have) = existing.iter().find(|e| e.name_any() == want.name_any()) else {
            continue;
        };
        let (Some(to), Some(from)) = (storage(want), storage(have)) else {
            continue;
        };
        if quantity::bytes(&to) <= quantity::bytes(&from) {
            continue;
        }
        let class = have
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone())
            .filter(|c| !c.is_empty());
        let allowed = match &class {
            Some(name) => match classes.get_opt(name).await {
                Ok(c) => c.and_then(|c| c.allow_volume_expansion) == Some(true),
                Err(e) => return Err(KubeError::api::<StorageClass>("get", "", name)(e)),
            },
            None => false,
        };
        if allowed {
            continue;
        }
        refused.push(message(have, &to, class.as_deref()));
        *want = have.clone();
    }
    Ok(refused)
}

/// The size a claim asks for.
pub fn storage(v: &PersistentVolumeClaim) -> Option<Quantity> {
    v.spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .cloned()
}

fn message(v: &PersistentVolumeClaim, to: &Quantity, class: Option<&str>) -> String {
    let why = match class {
        Some(c) => format!("its StorageClass {c} does not allow volume expansion"),
        None => "it has no StorageClass that could expand it".to_string(),
    };
    // PGO's way around a class that cannot expand: new volumes, filled by replication.
    let instead = if v.labels().contains_key(names::INSTANCE) {
        "add a second instance set with the larger volume, let it replicate, then remove the old set"
    } else {
        "add a repository with the larger volume, take a full backup into it, then remove the old one"
    };
    format!(
        "{} cannot grow to {}: {why}; instead {instead}",
        v.name_any(),
        to.0
    )
}
