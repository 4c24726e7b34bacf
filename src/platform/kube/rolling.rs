//! A new instance pod template rolls out one instance at a time, in `plan::rollout`'s order,
//! rather than to every StatefulSet at once: the StatefulSets still waiting keep the template
//! they have (they and their Patroni ConfigMaps are not written), and a pod says which template
//! it runs by its `pgdeck.dev/template-hash` annotation. New instances and a shut-down cluster
//! take the template at once.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::names;
use super::objects::Instance;
use super::proxy::Seen;
use crate::api::PostgresCluster;
use crate::plan::rollout::{self, Step};

#[derive(Debug, Default)]
pub struct Rolling {
    /// Instances whose StatefulSet and ConfigMap wait for their turn: not written this pass.
    pub held: Vec<String>,
    /// Instances not yet running what the spec says (status' `pendingRestart`).
    pub pending: Vec<String>,
    /// What to do this pass: the next instance's new template is written as the others are;
    /// a switchover, or a restart for settings Patroni reports pending, is the reconciler's.
    pub step: Option<Step>,
    /// The instance to restart through Patroni, its template being current.
    pub patroni_restart: Option<String>,
    /// Instances updated, out of all, while anything is pending.
    pub progress: Option<(usize, usize)>,
}

impl Rolling {
    pub fn holds(&self, instance: Option<&String>) -> bool {
        instance.is_some_and(|i| self.held.contains(i))
    }
}

/// `desired` and `existing` are the cluster's StatefulSets as rendered and as listed; `busy`
/// says something else is under way (scaling, a switchover) that must finish first.
pub fn plan(
    cluster: &PostgresCluster,
    run: &[Instance],
    desired: &[StatefulSet],
    existing: &[StatefulSet],
    pods: &[Pod],
    seen: &Seen,
    busy: bool,
) -> Rolling {
    if cluster.spec.shutdown == Some(true) {
        return Rolling::default();
    }
    // Instances whose StatefulSet has an older template; and those that must restart at all.
    let mut outdated = Vec::new();
    let mut stale = Vec::new();
    let mut pending = Vec::new();
    let mut behind = false;
    let mut total = 0;
    for i in run {
        let (Some(want), Some(have)) = (find(desired, &i.name), find(existing, &i.name)) else {
            behind = true; // a new instance: created at once, and waited for
            continue;
        };
        total += 1;
        let pod = pods.iter().find(|p| p.name_any() == names::pod(&i.name));
        // A pod still of the old template (a missing one is starting: readiness tells).
        let pod_behind = have == want && pod.is_some_and(|p| template_hash(&p.metadata) != want);
        let patroni_pending = seen.instance(&i.name).is_some_and(|s| s.pending_restart);
        if have != want {
            outdated.push(i.name.clone());
        }
        if have != want || (patroni_pending && !pod_behind) {
            stale.push(i.name.clone());
        }
        if have != want || pod_behind || patroni_pending {
            pending.push(i.name.clone());
        }
        behind |= pod_behind;
    }
    let statuses: Vec<_> = seen
        .statuses
        .iter()
        .filter(|s| run.iter().any(|i| i.name == s.name))
        .cloned()
        .collect();
    let step = rollout::next(&statuses, &stale, seen.leader.as_deref(), busy || behind);
    let restarting = match &step {
        Some(Step::Restart(name)) => Some(name.clone()),
        _ => None,
    };
    let patroni_restart = restarting.clone().filter(|r| !outdated.contains(r));
    outdated.retain(|i| Some(i) != restarting.as_ref());
    Rolling {
        held: outdated,
        patroni_restart,
        progress: (!pending.is_empty()).then_some((total - pending.len(), total)),
        pending,
        step,
    }
}

/// The template hash of the StatefulSet `name` among `sets`: `None` when there is no such
/// StatefulSet, `Some(None)` when it has no hash.
fn find<'a>(sets: &'a [StatefulSet], name: &str) -> Option<Option<&'a str>> {
    sets.iter()
        .find(|s| s.name_any() == name)
        .map(|s| template_hash(s.spec.as_ref()?.template.metadata.as_ref()?))
}

fn template_hash(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(names::TEMPLATE_HASH)
        .map(String::as_str)
}
