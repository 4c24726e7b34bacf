//! Volumes a cluster must not adopt. A volume's name is fixed (`<cluster>-repo1`,
//! `<instance>-pgdata`), so a cluster re-created under a deleted one's name would take over the
//! repository volume the delete kept: applying it makes the new cluster its owner, and a later
//! plain delete would remove the backups the user asked to keep. A volume that exists and is not
//! this cluster's (another UID, kept, or owned by something else) is never written; nothing new
//! starts (StatefulSets, Jobs, CronJobs) while one is in the way, and Degraded says what to do.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::Api;
use kube::{Client, Resource, ResourceExt};

use super::KubeError;
use super::apply::belongs_to;
use super::names;
use super::objects::Objects;

/// Hold back from `desired` what would adopt a volume that is not the cluster's with `uid`:
/// `listed` are the volumes labelled with the cluster's name; one not listed is looked up by
/// name before it is created. Returns the problem, for Degraded, when something was held.
pub async fn hold(
    client: &Client,
    namespace: &str,
    uid: Option<&str>,
    desired: &mut Objects,
    existing: &Objects,
) -> Result<Option<String>, KubeError> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let mut found = Vec::new();
    for want in &desired.volumes {
        let name = want.name_any();
        let have = match existing.volumes.iter().find(|v| v.name_any() == name) {
            Some(v) => Some(v.clone()),
            None => api
                .get_opt(&name)
                .await
                .map_err(KubeError::api::<PersistentVolumeClaim>(
                    "get", namespace, &name,
                ))?,
        };
        found.extend(have);
    }
    Ok(hold_from(uid, desired, existing, &found))
}

/// [`hold`], given the volumes that exist under the names `desired` uses.
pub fn hold_from(
    uid: Option<&str>,
    desired: &mut Objects,
    existing: &Objects,
    found: &[PersistentVolumeClaim],
) -> Option<String> {
    let foreign: Vec<&PersistentVolumeClaim> =
        found.iter().filter(|v| !belongs_to(*v, uid)).collect();
    if foreign.is_empty() {
        return None;
    }
    desired
        .volumes
        .retain(|v| foreign.iter().all(|f| f.name_any() != v.name_any()));
    only_existing(&mut desired.stateful_sets, &existing.stateful_sets);
    only_existing(&mut desired.jobs, &existing.jobs);
    only_existing(&mut desired.cron_jobs, &existing.cron_jobs);
    let described: Vec<String> = foreign.iter().map(|v| describe(v)).collect();
    Some(format!(
        "{}; pgdeck never adopts a volume that is not this cluster's, and starts nothing new \
         until it is out of the way",
        described.join("; ")
    ))
}

/// Keep of `desired` only what exists already: nothing new starts.
fn only_existing<K: Resource>(desired: &mut Vec<K>, existing: &[K]) {
    desired.retain(|d| existing.iter().any(|e| e.meta().name == d.meta().name));
}

/// What a foreign volume is, and how to go on.
fn describe(v: &PersistentVolumeClaim) -> String {
    let name = v.name_any();
    let ns = v.namespace().unwrap_or_default();
    let labels = v.labels();
    let delete =
        format!("delete it (`kubectl delete pvc -n {ns} {name}`) if its data is no longer wanted");
    if labels.get(names::KEPT).map(String::as_str) == Some("true") {
        let annotations = v.annotations();
        let from = annotations
            .get(names::KEPT_FROM)
            .cloned()
            .or_else(|| Some(format!("{ns}/{}", labels.get(names::CLUSTER)?)))
            .unwrap_or_else(|| "a deleted cluster".into());
        let uid = labels
            .get(names::CLUSTER_UID)
            .map(|u| format!(" (uid {u})"))
            .unwrap_or_default();
        let at = annotations
            .get(names::KEPT_AT)
            .map(|t| format!(" on {t}"))
            .unwrap_or_default();
        let source = from.rsplit('/').next().unwrap_or_default();
        let what = if labels.contains_key(names::REPO) {
            "backups"
        } else {
            "data"
        };
        return format!(
            "volume {name} holds the {what} kept from cluster {from}{uid}{at}, not this \
             cluster's: to go on, restore from it into a cluster of another name \
             (spec.dataSource.postgresCluster.clusterName: {source}), or bind its \
             PersistentVolume to a claim of another name, or {delete}"
        );
    }
    let owner = v
        .owner_references()
        .first()
        .map(|o| format!("belongs to {} {}", o.kind, o.name))
        .unwrap_or_else(|| "was not made by this cluster".into());
    format!("volume {name} {owner}: to go on, give this cluster another name, or {delete}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use std::collections::BTreeMap;

    fn volume(name: &str, labels: &[(&str, &str)], owner: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("db".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        kind: "PostgresCluster".into(),
                        name: "hippo".into(),
                        uid: uid.into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn set(name: &str) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn desired() -> Objects {
        Objects {
            volumes: vec![
                volume("hippo-repo1", &[], Some("new")),
                volume("hippo-a-pgdata", &[], Some("new")),
            ],
            stateful_sets: vec![set("hippo-repo-host"), set("hippo-a")],
            ..Default::default()
        }
    }

    #[test]
    fn the_clusters_own_volumes_are_written() {
        let mut want = desired();
        let found = [
            volume("hippo-repo1", &[], Some("new")),
            // Kept by this very cluster (keep-backups): no owner, its UID.
            volume("hippo-a-pgdata", &[(names::CLUSTER_UID, "new")], None),
        ];
        assert_eq!(
            hold_from(Some("new"), &mut want, &Objects::default(), &found),
            None
        );
        assert_eq!(want.volumes.len(), 2);
        assert_eq!(want.stateful_sets.len(), 2);
    }

    #[test]
    fn a_kept_volume_of_a_deleted_namesake_is_never_adopted() {
        let mut want = desired();
        let kept = volume(
            "hippo-repo1",
            &[
                (names::KEPT, "true"),
                (names::CLUSTER, "hippo"),
                (names::CLUSTER_UID, "old"),
                (names::REPO, "repo1"),
            ],
            None,
        );
        let existing = Objects {
            stateful_sets: vec![set("hippo-a")],
            ..Default::default()
        };
        let problem = hold_from(Some("new"), &mut want, &existing, &[kept]).unwrap();
        assert!(
            want.volumes.iter().all(|v| v.name_any() != "hippo-repo1"),
            "not written"
        );
        assert_eq!(
            want.stateful_sets
                .iter()
                .map(|s| s.name_any())
                .collect::<Vec<_>>(),
            ["hippo-a"],
            "nothing new starts; what runs stays"
        );
        for what in [
            "hippo-repo1",
            "backups kept from cluster db/hippo (uid old)",
            "clusterName: hippo",
            "kubectl delete pvc -n db hippo-repo1",
        ] {
            assert!(problem.contains(what), "{what} in {problem}");
        }
    }

    #[test]
    fn a_volume_owned_by_something_else_is_never_adopted() {
        let mut want = desired();
        let theirs = volume("hippo-a-pgdata", &[], Some("other"));
        let problem = hold_from(Some("new"), &mut want, &Objects::default(), &[theirs]).unwrap();
        assert_eq!(want.volumes.len(), 1);
        assert!(want.stateful_sets.is_empty());
        assert!(
            problem.contains("hippo-a-pgdata belongs to PostgresCluster hippo"),
            "{problem}"
        );
    }

    /// A volume as it may be found under a name the cluster wants.
    #[derive(Debug, Clone, Copy)]
    enum Found {
        Missing,
        Owned,
        Labelled,
        Kept,
        OwnedByAnother,
        Unmarked,
    }

    fn found(name: &str, how: Found) -> Option<PersistentVolumeClaim> {
        match how {
            Found::Missing => None,
            Found::Owned => Some(volume(name, &[], Some("ours"))),
            Found::Labelled => Some(volume(name, &[(names::CLUSTER_UID, "ours")], None)),
            Found::Kept => Some(volume(
                name,
                &[(names::KEPT, "true"), (names::CLUSTER_UID, "old")],
                None,
            )),
            Found::OwnedByAnother => Some(volume(name, &[], Some("theirs"))),
            Found::Unmarked => Some(volume(name, &[], None)),
        }
    }

    proptest::proptest! {
        /// Whatever exists under the names the cluster wants: no volume that is not its own is
        /// ever written, what runs is never dropped (and so never pruned), nothing new starts
        /// while something is in the way, and each foreign volume is named.
        #[test]
        fn foreign_volumes_are_never_written(
            volumes in proptest::collection::vec(
                proptest::sample::select(vec![
                    Found::Missing, Found::Owned, Found::Labelled, Found::Kept,
                    Found::OwnedByAnother, Found::Unmarked,
                ]),
                0..6,
            ),
            running in proptest::collection::vec(proptest::bool::ANY, 0..4),
        ) {
            let names: Vec<String> = (0..volumes.len()).map(|i| format!("v{i}")).collect();
            let mut want = Objects {
                volumes: names.iter().map(|n| volume(n, &[], Some("ours"))).collect(),
                stateful_sets: (0..running.len()).map(|i| set(&format!("s{i}"))).collect(),
                ..Default::default()
            };
            let existing = Objects {
                stateful_sets: running
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| **r)
                    .map(|(i, _)| set(&format!("s{i}")))
                    .collect(),
                ..Default::default()
            };
            let on_server: Vec<PersistentVolumeClaim> = names
                .iter()
                .zip(&volumes)
                .filter_map(|(n, how)| found(n, *how))
                .collect();
            let before = want.clone();
            let problem = hold_from(Some("ours"), &mut want, &existing, &on_server);
            let foreign: Vec<String> = on_server
                .iter()
                .filter(|v| !belongs_to(*v, Some("ours")))
                .map(|v| v.name_any())
                .collect();
            for v in &want.volumes {
                proptest::prop_assert!(!foreign.contains(&v.name_any()));
            }
            for s in &existing.stateful_sets {
                proptest::prop_assert!(want.stateful_sets.iter().any(|w| w.name_any() == s.name_any()));
            }
            match problem {
                None => {
                    proptest::prop_assert!(foreign.is_empty());
                    proptest::prop_assert_eq!(want.volumes.len(), before.volumes.len());
                    proptest::prop_assert_eq!(want.stateful_sets.len(), before.stateful_sets.len());
                }
                Some(problem) => {
                    proptest::prop_assert!(!foreign.is_empty());
                    proptest::prop_assert_eq!(want.stateful_sets.len(), existing.stateful_sets.len());
                    for f in &foreign {
                        let named = problem.contains(&format!("volume {f} "));
                        proptest::prop_assert!(named);
                    }
                }
            }
        }
    }
}
