//! Bringing one kind of object to what was rendered: server-side apply (field manager
//! `pgdeck`) of what is missing or differs, deletion of what is no longer wanted. An object that
//! is as rendered is not written at all, so an unchanged cluster reconciles with zero writes.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::names;
use super::{FIELD_MANAGER, KubeError};

/// A namespaced kind pgdeck writes.
pub trait Kind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Writes a pass made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    pub applied: usize,
    pub deleted: usize,
}

impl std::ops::AddAssign for Writes {
    fn add_assign(&mut self, other: Writes) {
        self.applied += other.applied;
        self.deleted += other.deleted;
    }
}

/// How a kind is brought up to date.
pub struct Policy<'a, K> {
    /// Whether an object no longer rendered is deleted (only objects the cluster owns are).
    pub prune: &'a (dyn Fn(&K) -> bool + Sync),
    /// Objects whose spec cannot change (Jobs) are replaced rather than patched.
    pub replace: bool,
}

impl<K> Policy<'static, K> {
    /// Patch in place, and delete every owned object no longer rendered.
    pub fn prune_all() -> Self {
        Policy {
            prune: &|_| true,
            replace: false,
        }
    }
}

/// Apply `desired` over `existing` (this cluster's objects of kind `K`, as listed), and delete
/// the owned objects `policy` prunes.
pub async fn sync<K: Kind>(
    client: &Client,
    namespace: &str,
    owner_uid: Option<&str>,
    desired: &[K],
    existing: &[K],
    policy: Policy<'_, K>,
) -> Result<Writes, KubeError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut writes = Writes::default();
    for want in desired {
        let name = want.name_any();
        let have = existing.iter().find(|e| e.name_any() == name);
        if have.is_some_and(|h| !differs(want, h)) {
            continue;
        }
        if policy.replace && have.is_some() {
            delete(&api, &name).await?;
            writes.deleted += 1;
        }
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(want),
        )
        .await
        .map_err(KubeError::api::<K>("apply", namespace, &name))?;
        writes.applied += 1;
    }
    for have in existing {
        let name = have.name_any();
        let wanted = desired.iter().any(|d| d.name_any() == name);
        if !wanted && owned_by(have, owner_uid) && (policy.prune)(have) {
            delete(&api, &name).await?;
            writes.deleted += 1;
        }
    }
    Ok(writes)
}

async fn delete<K: Kind>(api: &Api<K>, name: &str) -> Result<(), KubeError> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        // Gone already: what deleting wanted.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(KubeError::api::<K>("delete", api_namespace(api), name)(e)),
    }
}

fn api_namespace<K: Kind>(api: &Api<K>) -> &str {
    api.namespace().unwrap_or_default()
}

/// Whether the cluster with `uid` owns `object`: what it does not own it never deletes.
pub fn owned_by<K: Resource>(object: &K, uid: Option<&str>) -> bool {
    uid.is_some_and(|uid| object.owner_references().iter().any(|o| o.uid == uid))
}

/// Whether `object` is the cluster's with `uid`: owned by it, or labelled with its UID (a
/// volume the cluster keeps has no owner reference).
pub fn belongs_to<K: Resource>(object: &K, uid: Option<&str>) -> bool {
    owned_by(object, uid)
        || uid.is_some_and(|uid| {
            object
                .meta()
                .labels
                .as_ref()
                .and_then(|l| l.get(names::CLUSTER_UID))
                .is_some_and(|l| l == uid)
        })
}

/// Whether `have` (as the API server returned it) is not what `want` says: it was written from
/// another rendering (its digest differs), or someone changed a field pgdeck sets.
pub fn differs<K: Kind>(want: &K, have: &K) -> bool {
    let digest = |k: &K| k.annotations().get(names::HASH).cloned();
    if digest(want) != digest(have) {
        return true;
    }
    let want = serde_json::to_value(want).expect("an object serializes");
    let have = serde_json::to_value(have).expect("an object serializes");
    !covers(&have, &want)
}

/// Whether `have` holds every value `want` sets. The API server adds defaults and bookkeeping,
/// so more is fine; lists must match item by item; quantities compare by value (`0.5` is
/// `500m`).
pub fn covers(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| covers(hv, wv))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(hv, wv)| covers(hv, wv))
        }
        (Value::String(h), Value::String(w)) => h == w || same_quantity(h, w),
        (h, w) => h == w,
    }
}

fn same_quantity(a: &str, b: &str) -> bool {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let value = |s: &str| crate::api::quantity::value(&Quantity(s.to_string())).ok();
    matches!((value(a), value(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_added_by_the_server_are_covered() {
        let want = json!({"spec": {"ports": [{"port": 5432}], "type": "ClusterIP"}});
        let have = json!({"spec": {"ports": [{"port": 5432, "protocol": "TCP"}], "type": "ClusterIP", "clusterIP": "10.0.0.1"}});
        assert!(covers(&have, &want));
    }

    #[test]
    fn changes_removals_from_lists_and_quantities() {
        let want =
            json!({"resources": {"requests": {"cpu": "500m"}}, "tolerations": [{"key": "a"}]});
        assert!(covers(
            &json!({"resources": {"requests": {"cpu": "0.5"}}, "tolerations": [{"key": "a"}]}),
            &want
        ));
        assert!(!covers(
            &json!({"resources": {"requests": {"cpu": "1"}}, "tolerations": [{"key": "a"}]}),
            &want
        ));
        assert!(!covers(
            &json!({"resources": {"requests": {"cpu": "500m"}}, "tolerations": [{"key": "a"}, {"key": "b"}]}),
            &want
        ));
        assert!(!covers(&json!({"tolerations": [{"key": "a"}]}), &want));
        assert!(
            !covers(&json!({"a": "db"}), &json!({"a": "dc"})),
            "not quantities"
        );
    }
}
