//! `spec.dataSource.volumes` on Kubernetes, against the in-memory API server: the volumes named
//! are adopted only when they exist here, are Bound and are nobody else's; a Job moves the data
//! directory into place, and the first instance starts on the adopted volumes only after it
//! succeeded; the others once the cluster bootstrapped. What is refused is left as it was, and
//! status and an event say which volume and why.

use crate::common;

use std::collections::BTreeSet;

use common::kube::Harness;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodSpec};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use pgdeck::api::manifest;
use pgdeck::observe::conditions;
use pgdeck::platform::kube::names;
use pgdeck::platform::kube::objects::{self, Adopted, Inputs, Instance};
use serde_json::{Value, json};

const NS: &str = "db";

/// A cluster moving PGO v4's `oldhippo` volumes into place, as PGO's guide writes it.
fn from_v4(data: &str, wal: Option<&str>) -> String {
    let wal = wal
        .map(|w| format!("\n      pgWALVolume: {{pvcName: {w}}}"))
        .unwrap_or_default();
    format!(
        "apiVersion: postgres-operator.crunchydata.com/v1beta1
kind: PostgresCluster
metadata: {{name: hippo, namespace: {NS}}}
spec:
  postgresVersion: 15
  dataSource:
    volumes:
      pgDataVolume: {{pvcName: {data}, directory: oldhippo}}{wal}
  instances:
    - name: instance1
      replicas: 2
      dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"
    )
}

/// A claim as a DBA's earlier install left it.
fn claim(name: &str, phase: &str, extra: Value) -> Value {
    let mut pvc = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS, "labels": {"vendor": "crunchydata"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": phase},
    });
    if let (Some(meta), Some(extra)) = (pvc["metadata"].as_object_mut(), extra.as_object()) {
        meta.extend(extra.clone());
    }
    pvc
}

/// [`from_v4`] with v4's repository volume too, for the cluster's first repository.
fn with_repository() -> String {
    from_v4("oldhippo", None).replace(
        "directory: oldhippo}\n",
        "directory: oldhippo}\n      pgBackRestVolume: {pvcName: oldhippo-pgbr-repo, directory: oldhippo-backrest-shared-repo}\n",
    ) + "  backups:
    pgbackrest:
      repos: [{name: repo1, volume: {volumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}]
"
}

async fn pvc(h: &Harness, name: &str) -> PersistentVolumeClaim {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    api.get(name).await.unwrap()
}

/// The instance StatefulSets of `hippo`.
async fn instances(h: &Harness) -> BTreeSet<String> {
    (h.names::<StatefulSet>(NS).await)
        .into_iter()
        .filter(|n| n.starts_with("hippo-instance1-"))
        .collect()
}

async fn pod_spec(h: &Harness, instance: &str) -> PodSpec {
    let sets: Api<StatefulSet> = Api::namespaced(h.store.clone(), NS);
    let set = sets.get(instance).await.unwrap();
    set.spec.unwrap().template.spec.unwrap()
}

/// The claim the pod mounts as volume `volume`.
fn claim_of(spec: &PodSpec, volume: &str) -> Option<String> {
    let v = spec.volumes.iter().flatten().find(|v| v.name == volume)?;
    Some(v.persistent_volume_claim.as_ref()?.claim_name.clone())
}

fn condition(h: &pgdeck::api::PostgresClusterStatus, kind: &str) -> (String, String, String) {
    h.condition(kind)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

async fn finish_job(h: &Harness, name: &str, status: Value) {
    let jobs: Api<Job> = Api::namespaced(h.store.clone(), NS);
    jobs.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn named_volumes_are_adopted_and_the_first_instance_waits_for_the_move() {
    adopting_volumes().await;
}

/// The scenario of [`named_volumes_are_adopted_and_the_first_instance_waits_for_the_move`], its harness kept for the RBAC check.
pub(crate) async fn adopting_volumes() -> Harness {
    let h = Harness::with_objects(vec![
        claim("oldhippo", "Bound", json!({})),
        claim("oldhippo-wal", "Bound", json!({})),
    ])
    .await;
    let cluster = h.create(&from_v4("oldhippo", Some("oldhippo-wal"))).await;
    let uid = cluster.uid().unwrap();
    h.reconcile(NS, "hippo").await.unwrap();

    // Both are the cluster's now, for the same instance, owned as PGO owns them.
    let data = pvc(&h, "oldhippo").await;
    let instance = data.labels()[names::INSTANCE].clone();
    assert!(instance.starts_with("hippo-instance1-"), "{instance}");
    for (name, role) in [("oldhippo", "pgdata"), ("oldhippo-wal", "pgwal")] {
        let v = pvc(&h, name).await;
        let labels = v.labels();
        assert_eq!(labels[names::ADOPTED], role);
        assert_eq!(labels[names::CLUSTER], "hippo");
        assert_eq!(labels[names::CLUSTER_UID], uid);
        assert_eq!(labels[names::INSTANCE], instance);
        assert_eq!(labels["vendor"], "crunchydata", "the DBA's labels stay");
        let owners = v.owner_references();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (owners[0].uid.as_str(), owners[0].controller),
            (uid.as_str(), Some(true))
        );
    }
    // The data directory moves in a Job, the directory an argument of a fixed script; the WAL
    // volume names no directory and is used as it is.
    let jobs: Api<Job> = Api::namespaced(h.store.clone(), NS);
    let job = jobs.get("hippo-move-pgdata-dir").await.unwrap();
    let pod = job.spec.unwrap().template.spec.unwrap();
    let command = pod.containers[0].command.clone().unwrap();
    assert_eq!(command[..2], ["bash", "-ceu"]);
    assert_eq!(
        command[3..],
        ["move-dir", "/pgdata", "oldhippo", "pg15_bootstrap"]
    );
    assert!(!command[2].contains("oldhippo"));
    assert_eq!(claim_of(&pod, "volume").as_deref(), Some("oldhippo"));
    assert!(
        jobs.get_opt("hippo-move-pgwal-dir")
            .await
            .unwrap()
            .is_none()
    );
    // Nothing starts while it runs, and Progressing says why.
    assert!(instances(&h).await.is_empty());
    let status = h.cluster(NS, "hippo").await.status.unwrap();
    let (_, reason, message) = condition(&status, conditions::PROGRESSING);
    assert_eq!(reason, "MovingDirectories");
    assert!(message.contains("hippo-move-pgdata-dir"), "{message}");

    // A second pass adopts nothing more, and keeps the instance it adopted for.
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        pvc(&h, "oldhippo").await.labels()[names::INSTANCE],
        instance
    );
    assert!(instances(&h).await.is_empty());

    finish_job(
        &h,
        "hippo-move-pgdata-dir",
        json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
    )
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        instances(&h).await,
        BTreeSet::from([instance.clone()]),
        "only the adopting instance starts before the bootstrap"
    );
    let spec = pod_spec(&h, &instance).await;
    assert_eq!(claim_of(&spec, "pgdata").as_deref(), Some("oldhippo"));
    assert_eq!(claim_of(&spec, "pgwal").as_deref(), Some("oldhippo-wal"));
    let (_, bootstrap) = crate::kube_reconcile::bootstrap_of(&h, &instance).await;
    assert_eq!(bootstrap["method"], "existing");
    assert_eq!(
        bootstrap["existing"],
        json!({"command": "mv -T -- /pgdata/pg15_bootstrap /pgdata/pg15", "no_params": true})
    );
    let made = h.names::<PersistentVolumeClaim>(NS).await;
    assert!(!made.contains(&format!("{instance}-pgdata")), "{made:?}");

    // Bootstrapped, the second instance starts on a volume of its own.
    h.settle(NS, "hippo").await;
    let all = instances(&h).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let other = all.iter().find(|i| **i != instance).unwrap();
    assert_eq!(
        claim_of(&pod_spec(&h, other).await, "pgdata"),
        Some(format!("{other}-pgdata"))
    );
    let status = h.cluster(NS, "hippo").await.status.unwrap();
    let (degraded, _, message) = condition(&status, conditions::DEGRADED);
    assert_eq!(degraded, "False", "{message}");
    // Once done, the adopted volumes stay the first instance's without the spec naming them.
    h.edit(NS, "hippo", |c| c.spec.data_source = None).await;
    h.settle(NS, "hippo").await;
    let spec = pod_spec(&h, &instance).await;
    assert_eq!(claim_of(&spec, "pgdata").as_deref(), Some("oldhippo"));
    assert_eq!(claim_of(&spec, "pgwal").as_deref(), Some("oldhippo-wal"));
    h
}

async fn versions(h: &Harness) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for n in ["pending", "rhinos", "free-wal"] {
        out.push(pvc(h, n).await.resource_version());
    }
    out
}

#[tokio::test]
async fn volumes_that_are_missing_unbound_or_anothers_are_never_touched() {
    refusing_volumes().await;
}

/// The scenario of [`volumes_that_are_missing_unbound_or_anothers_are_never_touched`], its harness kept for the RBAC check.
pub(crate) async fn refusing_volumes() -> Harness {
    let rhino = json!({"ownerReferences": [{"apiVersion": "pgdeck.dev/v1beta1", "kind": "PostgresCluster", "name": "rhino", "uid": "r-1", "controller": true}],
                       "labels": {"pgdeck.dev/cluster": "rhino"}});
    let h = Harness::with_objects(vec![
        claim("pending", "Pending", json!({})),
        claim("rhinos", "Bound", rhino),
        claim("free-wal", "Bound", json!({})),
    ])
    .await;
    let before = versions(&h).await;
    for (cluster, data, wal, why) in [
        (
            "c1",
            "gone",
            None,
            "PersistentVolumeClaim gone does not exist in namespace db",
        ),
        (
            "c2",
            "pending",
            None,
            "PersistentVolumeClaim pending is Pending, not Bound",
        ),
        (
            "c3",
            "rhinos",
            None,
            "PersistentVolumeClaim rhinos belongs to PostgresCluster rhino",
        ),
        // One refused volume holds back the other too: nothing is adopted by halves.
        ("c4", "pending", Some("free-wal"), "pending is Pending"),
    ] {
        h.create(&from_v4(data, wal).replace("name: hippo,", &format!("name: {cluster},")))
            .await;
        h.reconcile(NS, cluster).await.unwrap();
        h.reconcile(NS, cluster).await.unwrap();
        assert!(h.names::<StatefulSet>(NS).await.is_empty(), "{data}");
        assert!(
            h.names::<Job>(NS).await.iter().all(|j| !j.contains("move")),
            "{data}"
        );
        let status = h.cluster(NS, cluster).await.status.unwrap();
        let (degraded, _, message) = condition(&status, conditions::DEGRADED);
        assert_eq!(degraded, "True", "{data}");
        assert!(message.contains(why), "{message}");
        assert!(
            message.starts_with("spec.dataSource.volumes.pgDataVolume: "),
            "{message}"
        );
        let events: Api<Event> = Api::namespaced(h.store.clone(), NS);
        let warned = events.list(&Default::default()).await.unwrap().items;
        assert!(
            warned
                .iter()
                .any(|e| e.reason.as_deref() == Some("VolumeNotAdopted")
                    && e.type_.as_deref() == Some("Warning")
                    && e.note.as_deref().is_some_and(|n| n.contains(why))),
            "{warned:?}"
        );
    }
    assert_eq!(versions(&h).await, before, "no refused volume was written");
    h
}

/// The repository volume becomes the first repository's, moved into place (its `archive` and
/// `backup` to the volume's root) before the repository host or any instance starts.
#[tokio::test]
async fn a_repository_volume_is_the_repository_hosts_once_moved() {
    adopting_a_repository().await;
}

/// The scenario of [`a_repository_volume_is_the_repository_hosts_once_moved`], its harness kept for the RBAC check.
pub(crate) async fn adopting_a_repository() -> Harness {
    let h = Harness::with_objects(vec![
        claim("oldhippo", "Bound", json!({})),
        claim("oldhippo-pgbr-repo", "Bound", json!({})),
    ])
    .await;
    let cluster = h.create(&with_repository()).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let repo = pvc(&h, "oldhippo-pgbr-repo").await;
    let labels = repo.labels();
    assert_eq!(labels[names::ADOPTED], "pgbackrest-repo");
    assert_eq!(labels[names::REPO], "repo1");
    assert!(!labels.contains_key(names::INSTANCE));
    assert_eq!(repo.owner_references()[0].uid, cluster.uid().unwrap());
    let jobs: Api<Job> = Api::namespaced(h.store.clone(), NS);
    let job = jobs.get("hippo-move-pgbackrest-repo-dir").await.unwrap();
    let pod = job.spec.unwrap().template.spec.unwrap();
    let command = pod.containers[0].command.clone().unwrap();
    let dir = "oldhippo-backrest-shared-repo";
    let (archive, backup) = (format!("{dir}/archive"), format!("{dir}/backup"));
    assert_eq!(
        command[3..],
        [
            "move-dir",
            "/pgbackrest",
            &archive,
            "archive",
            &backup,
            "backup"
        ]
    );
    assert_eq!(
        claim_of(&pod, "volume").as_deref(),
        Some("oldhippo-pgbr-repo")
    );
    nothing_runs(&h).await;
    let done = json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
    finish_job(&h, "hippo-move-pgdata-dir", done.clone()).await;
    h.reconcile(NS, "hippo").await.unwrap();
    nothing_runs(&h).await;
    finish_job(&h, "hippo-move-pgbackrest-repo-dir", done).await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(instances(&h).await.len(), 1);
    let host = pod_spec(&h, "hippo-repo-host").await;
    assert_eq!(
        claim_of(&host, "repo1").as_deref(),
        Some("oldhippo-pgbr-repo")
    );
    assert!(
        !h.names::<PersistentVolumeClaim>(NS)
            .await
            .contains("hippo-repo1")
    );
    h
}

/// No StatefulSet, and no first backup.
async fn nothing_runs(h: &Harness) {
    let sets = h.names::<StatefulSet>(NS).await;
    assert!(sets.is_empty(), "{sets:?}");
    assert!(!h.names::<Job>(NS).await.contains("hippo-backup-initial"));
}

/// A cluster that bootstrapped without them never takes volumes named later: status says so.
#[tokio::test]
async fn volumes_named_after_the_bootstrap_are_not_adopted_and_status_says_so() {
    let h = Harness::with_objects(vec![claim("oldhippo", "Bound", json!({}))]).await;
    let plain = from_v4("oldhippo", None);
    let start = plain.find("  dataSource:").unwrap();
    let end = plain.find("  instances:").unwrap();
    h.create(&format!("{}{}", &plain[..start], &plain[end..]))
        .await;
    h.settle(NS, "hippo").await;
    let later = manifest::parse(&plain).unwrap();
    h.edit(NS, "hippo", |c| c.spec.data_source = later.spec.data_source)
        .await;
    let before = pvc(&h, "oldhippo").await.resource_version();
    h.reconcile(NS, "hippo").await.unwrap();
    let status = h.cluster(NS, "hippo").await.status.unwrap();
    let (degraded, _, message) = condition(&status, conditions::DEGRADED);
    assert_eq!(degraded, "True");
    assert!(message.starts_with("spec.dataSource.volumes.pgDataVolume (oldhippo): not adopted: the cluster has bootstrapped already"), "{message}");
    assert_eq!(pvc(&h, "oldhippo").await.resource_version(), before);
    assert!(h.names::<Job>(NS).await.iter().all(|j| !j.contains("move")));
}

#[tokio::test]
async fn a_failed_move_says_why_and_starts_nothing() {
    let h = Harness::with_objects(vec![claim("oldhippo", "Bound", json!({}))]).await;
    h.create(&from_v4("oldhippo", None)).await;
    h.reconcile(NS, "hippo").await.unwrap();
    finish_job(&h, "hippo-move-pgdata-dir", json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})).await;
    h.reconcile(NS, "hippo").await.unwrap();
    h.reconcile(NS, "hippo").await.unwrap();
    assert!(instances(&h).await.is_empty());
    let status = h.cluster(NS, "hippo").await.status.unwrap();
    let (degraded, _, message) = condition(&status, conditions::DEGRADED);
    assert_eq!(degraded, "True");
    assert!(message.contains("moving the data directory failed (Job hippo-move-pgdata-dir): Job has reached the specified backoff limit"), "{message}");
    assert!(message.contains("delete the Job to try again"), "{message}");
}

/// Every object the operator writes while adopting passes the Kubernetes 1.32 schemas.
#[test]
fn adopting_objects_pass_the_kubernetes_schemas() {
    let cluster = manifest::parse(&with_repository().replace(
        "directory: oldhippo}\n",
        "directory: oldhippo}\n      pgWALVolume: {pvcName: oldhippo-wal, directory: oldhippo-wal}\n",
    ))
    .unwrap();
    let instance = Instance {
        name: "hippo-instance1-abcd".into(),
        set: "instance1".into(),
    };
    let inputs = Inputs {
        instances: vec![instance.clone()],
        owner_uid: Some("u1".into()),
        adopted: Some(Adopted {
            instance: instance.name.clone(),
            data: "oldhippo".into(),
            wal: Some("oldhippo-wal".into()),
            repo: Some("oldhippo-pgbr-repo".into()),
            moving: true,
        }),
        ..Default::default()
    };
    let objects = objects::render(&cluster, &inputs).unwrap();
    let jobs: BTreeSet<String> = objects.jobs.iter().map(|j| j.name_any()).collect();
    for role in ["pgdata", "pgwal", "pgbackrest-repo"] {
        assert!(jobs.contains(&format!("hippo-move-{role}-dir")), "{jobs:?}");
    }
    let volumes: Vec<String> = objects.volumes.iter().map(|v| v.name_any()).collect();
    assert!(volumes.is_empty(), "only adopted volumes: {volumes:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adopting.yaml");
    std::fs::write(&file, objects.to_yaml()).unwrap();
    let documents = objects.to_yaml().matches("\nkind: ").count()
        + usize::from(objects.to_yaml().starts_with("kind: "));
    crate::kube_render::validate(&file, documents);
}
