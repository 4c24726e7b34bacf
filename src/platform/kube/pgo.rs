//! Crunchy PGO's own PostgresClusters (group `postgres-operator.crunchydata.com`), which the
//! console lists beside pgdeck's. PGO reconciles them; pgdeck only reads them, and its
//! operator never watches or writes this group. Their `status` is PGO's shape, read leniently:
//! a field pgdeck does not know, or cannot read, is left out, never fails the list.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::Resource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::status::ManualBackupStatus;
use crate::api::{PostgresCluster, PostgresClusterStatus};
use crate::observe::conditions;

pub const GROUP: &str = "postgres-operator.crunchydata.com";
/// The version the console reads: every PGO v5 serves it, and the API server converts
/// objects stored as `v1` to it.
pub const VERSION: &str = "v1beta1";

/// A PGO PostgresCluster as it is stored: its spec and status kept as PGO wrote them.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct PgoCluster {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl Resource for PgoCluster {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        crate::api::KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "postgresclusters".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl PgoCluster {
    /// The cluster as the console shows it: PGO's spec read as pgdeck's (the field names are
    /// PGO's), PGO's status mapped to what the list shows.
    pub fn to_cluster(&self) -> Result<PostgresCluster, String> {
        let spec = serde_json::from_value(self.spec.clone()).map_err(|e| {
            format!(
                "PGO's PostgresCluster {}/{}: spec: {e}",
                self.metadata.namespace.as_deref().unwrap_or_default(),
                self.metadata.name.as_deref().unwrap_or_default()
            )
        })?;
        let mut cluster =
            PostgresCluster::new(self.metadata.name.as_deref().unwrap_or_default(), spec);
        cluster.metadata = self.metadata.clone();
        let since = self.metadata.creation_timestamp.clone();
        cluster.status = self.status.as_ref().map(|s| status(s, since));
        Ok(cluster)
    }
}

/// PGO's `status`: `instances[]` counts replicas per set (`replicas`, `readyReplicas`), not
/// members; `conditions` are Kubernetes conditions, with no `Ready` among them: pgdeck's
/// `Ready` is said from the counts, its reason naming where it comes from. `patroni` has
/// pgdeck's shape (the switchover trigger PGO last acted on); `pgbackrest.manualBackup` counts
/// the backup Job's pods. Whatever does not read is left out.
fn status(pgo: &Value, since: Option<Time>) -> PostgresClusterStatus {
    let sets = pgo["instances"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let count = |field: &str| -> i64 { sets.iter().filter_map(|s| s[field].as_i64()).sum() };
    let mut conditions: Vec<Condition> = pgo["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::from_value::<Condition>(c.clone()).ok())
        .filter(|c| c.type_ != conditions::READY)
        .collect();
    if !sets.is_empty() {
        let (ready, desired) = (count("readyReplicas"), count("replicas"));
        let all = desired > 0 && ready == desired;
        conditions.push(Condition {
            type_: conditions::READY.into(),
            status: if all { "True" } else { "False" }.into(),
            reason: if all {
                "PGOInstancesReady"
            } else {
                "PGOInstancesNotReady"
            }
            .into(),
            message: format!("{ready}/{desired} instances ready, as PGO's status counts them"),
            last_transition_time: since.unwrap_or(Time(jiff::Timestamp::UNIX_EPOCH)),
            observed_generation: pgo["observedGeneration"].as_i64(),
        });
    }
    PostgresClusterStatus {
        observed_generation: pgo["observedGeneration"].as_i64(),
        ready: (!sets.is_empty())
            .then(|| format!("{}/{}", count("readyReplicas"), count("replicas"))),
        instance_count: i32::try_from(count("replicas"))
            .ok()
            .filter(|_| !sets.is_empty()),
        conditions,
        patroni: serde_json::from_value(pgo["patroni"].clone()).ok(),
        manual_backup: manual_backup(&pgo["pgbackrest"]["manualBackup"]),
        ..Default::default()
    }
}

/// PGO's `{name, finished, succeeded, failed}` (pod counts of its backup Job) as pgdeck's.
fn manual_backup(pgo: &Value) -> Option<ManualBackupStatus> {
    let count = |field: &str| pgo[field].as_i64().unwrap_or(0);
    Some(ManualBackupStatus {
        trigger: pgo["name"].as_str()?.to_string(),
        finished: pgo["finished"].as_bool().unwrap_or(false),
        succeeded: count("succeeded") > 0,
        label: None,
        message: (count("failed") > 0)
            .then(|| format!("PGO's backup Job failed {} time(s)", count("failed"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pgo(status: Value) -> PgoCluster {
        serde_json::from_value(json!({
            "metadata": {"name": "hippo", "namespace": "db"},
            "spec": {"postgresVersion": 16, "instances": [{"name": "instance1", "replicas": 2,
                     "dataVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"],
                       "resources": {"requests": {"storage": "1Gi"}}}}],
                     "backups": {"pgbackrest": {"repos": [{"name": "repo1"}]}},
                     "somethingPgoAddsLater": true},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn pgos_status_is_read_leniently() {
        let c = pgo(json!({
            "observedGeneration": 3,
            "instances": [{"name": "instance1", "replicas": 2, "readyReplicas": 1,
                           "updatedReplicas": 2}, {"name": "oddball"}],
            "conditions": [
                {"type": "ProxyAvailable", "status": "False", "reason": "NoPods",
                 "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "not a condition"}
            ],
            "patroni": {"systemIdentifier": "7311111111111111111"},
            "aFieldFromTheFuture": {"x": 1},
        }))
        .to_cluster()
        .unwrap();
        let s = c.status.unwrap();
        assert_eq!(s.ready.as_deref(), Some("1/2"));
        assert_eq!(s.instance_count, Some(2));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(
            s.conditions.len(),
            2,
            "the unreadable condition is left out"
        );
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "PGOInstancesNotReady")
        );
        assert_eq!(c.spec.instances[0].replicas, Some(2));
    }

    #[test]
    fn a_status_of_another_shape_reads_as_empty() {
        let c = pgo(json!("not an object")).to_cluster().unwrap();
        assert_eq!(c.status, Some(PostgresClusterStatus::default()));
        assert!(pgo(Value::Null).to_cluster().unwrap().status.is_none());
    }

    #[test]
    fn a_spec_that_does_not_read_names_the_cluster() {
        let mut c = pgo(Value::Null);
        c.spec = json!({"instances": "many"});
        let e = c.to_cluster().unwrap_err();
        assert!(
            e.starts_with("PGO's PostgresCluster db/hippo: spec:"),
            "{e}"
        );
    }
}
