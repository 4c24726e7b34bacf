//! Where a clone (`spec.dataSource.postgresCluster`) restores from: the source's repository
//! host while the source runs, or the repository volume a delete kept (`pgdeck.dev/kept`).
//!
//! The kept volume is found by what it records (see `teardown::keep`): exactly the source
//! named, by its UID when a cluster of that name exists, the newest copy when several are.
//!
//! Once the clone has instances, what they were made with stays (read from its own objects,
//! no API call), so its pods never change when the source comes or goes. Only before the first
//! instance does the reconciler look: one GET of the source's repository host StatefulSet, one
//! of the source cluster and one list of kept volumes. The kept volume is only ever read: mounted read-only, never written.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ListParams};
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
        // Another namespace, or options that cannot be read: reported as it is.
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
    let kept = kept_repo(client, ns, name, &src.repo_name).await?;
    if let Ok(claim) = kept {
        return Ok(Ok(RestoreFrom::KeptVolume {
            claim,
            instance: first.map(str::to_string),
        }));
    }
    let why = kept.err().unwrap_or_default();
    Ok(Err(format!(
        "spec.dataSource.postgresCluster: nothing to restore from: cluster {ns}/{name} has no \
         repository host ({host}), and no kept volume ({}) holds its repository: {why}; no \
         instance starts until one of them exists",
        kept_selector(name, &src.repo_name)
    )))
}

/// The labels of a kept volume holding repository `repo` of cluster `name`.
fn kept_selector(name: &str, repo: &str) -> String {
    format!(
        "{}=true,{}={name},{}={repo}",
        names::KEPT,
        names::CLUSTER,
        names::REPO
    )
}

/// The newest kept volume holding repository `repo` of exactly cluster `ns/name`: the cluster
/// of that name that exists now, by its UID, or, when none does, the one(s) deleted under
/// that name. Never a look-alike: another cluster's, or one whose record says otherwise.
/// Otherwise why none is.
async fn kept_repo(
    client: &Client,
    ns: &str,
    name: &str,
    repo: &str,
) -> Result<Result<String, String>, KubeError> {
    let clusters: Api<PostgresCluster> = Api::namespaced(client.clone(), ns);
    let live = clusters
        .get_opt(name)
        .await
        .map_err(KubeError::api::<PostgresCluster>("get", ns, name))?
        .and_then(|c| c.uid());
    let volumes: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let selector = kept_selector(name, repo);
    let listed = volumes
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(KubeError::api::<PersistentVolumeClaim>(
            "list",
            ns,
            &format!("-l {selector}"),
        ))?
        .items;
    Ok(newest_kept(&listed, ns, name, live.as_deref()))
}

/// Of `volumes` (kept repository volumes labelled with the source's name), the newest one
/// that came from `ns/name`, with UID `live` when a cluster of that name exists.
fn newest_kept(
    volumes: &[PersistentVolumeClaim],
    ns: &str,
    name: &str,
    live: Option<&str>,
) -> Result<String, String> {
    let from = format!("{ns}/{name}");
    let kept_at = |v: &PersistentVolumeClaim| {
        v.annotations()
            .get(names::KEPT_AT)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .or_else(|| v.creation_timestamp().map(|t| t.0))
    };
    let uid = |v: &PersistentVolumeClaim| v.labels().get(names::CLUSTER_UID).cloned();
    let candidates: Vec<&PersistentVolumeClaim> = volumes
        .iter()
        .filter(|v| {
            // Recorded by pgdeck since it records; before, the labels alone said it.
            v.annotations()
                .get(names::KEPT_FROM)
                .is_none_or(|f| *f == from)
                && v.labels().get(names::CLUSTER).map(String::as_str) == Some(name)
        })
        .collect();
    let of_source: Vec<&PersistentVolumeClaim> = candidates
        .iter()
        .copied()
        .filter(|v| live.is_none_or(|live| uid(v).as_deref() == Some(live)))
        .collect();
    if let Some(newest) = of_source.iter().max_by_key(|v| kept_at(v)) {
        return Ok(newest.name_any());
    }
    Err(match (live, candidates.first()) {
        (Some(live), Some(other)) => format!(
            "{} was kept from an earlier cluster of that name (uid {}), not from the one that \
             exists now (uid {live})",
            other.name_any(),
            uid(other).unwrap_or_else(|| "not recorded".into())
        ),
        _ => "there is none".into(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn kept(name: &str, from: &str, uid: &str, at: &str) -> PersistentVolumeClaim {
        let cluster = from.rsplit('/').next().unwrap();
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    [
                        (names::KEPT, "true"),
                        (names::CLUSTER, cluster),
                        (names::CLUSTER_UID, uid),
                        (names::REPO, "repo1"),
                    ]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ),
                annotations: Some(
                    [(names::KEPT_FROM, from), (names::KEPT_AT, at)]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_copy_of_exactly_the_source() {
        let volumes = [
            kept("hippo-repo1-a", "db/hippo", "u1", "2026-11-01T10:00:00Z"),
            // Newer, and a fraction of a second sorts by time, not as text.
            kept("hippo-repo1-b", "db/hippo", "u2", "2026-11-02T10:00:00.5Z"),
            kept("hippo-repo1-c", "db/hippo", "u3", "2026-11-02T10:00:00Z"),
            // Labelled with the name, but recorded from another namespace's cluster.
            kept("elsewhere", "other/hippo", "u4", "2026-12-01T10:00:00Z"),
        ];
        assert_eq!(
            newest_kept(&volumes, "db", "hippo", None).as_deref(),
            Ok("hippo-repo1-b")
        );
        // A cluster of that name exists: only its own copy.
        assert_eq!(
            newest_kept(&volumes, "db", "hippo", Some("u1")).as_deref(),
            Ok("hippo-repo1-a")
        );
        let why = newest_kept(&volumes, "db", "hippo", Some("u9")).unwrap_err();
        assert!(
            why.contains("not from the one that exists now (uid u9)"),
            "{why}"
        );
        assert!(newest_kept(&volumes, "db", "hippo-dev", None).is_err());
    }
}
