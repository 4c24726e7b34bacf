//! Who lists a cloud-only cluster's repositories on Kubernetes. Without a repository host each
//! instance pod's `info` container runs `pgbackrest info` every 15 s, and each run is a listing
//! of the bucket: only the primary runs it. The in-memory API server runs no containers, so the
//! test runs the container's loop body, as rendered, with a real pgBackRest against a REAL
//! primary and a REAL streaming replica, and reads what it leaves to serve.

use crate::common;

use std::os::unix::fs::chown;
use std::path::Path;
use std::process::Command;

use common::kube::Harness;
use common::pod_postgres::{PodPostgres, account};
use common::{read, repo_root};
use pgdeck::api::PostgresCluster;
use pgdeck::api::manifest;
use pgdeck::platform::kube::objects::{self, Inputs, Instance, REPO_INFO_FILE, paths};

const NS: &str = "db";

/// ha.yaml with its repository in a bucket (`standby`: a standby cluster following it).
fn cloud_only(standby: bool) -> PostgresCluster {
    let mut cluster = manifest::parse(&read(&repo_root().join("assets/examples/ha.yaml"))).unwrap();
    cluster.metadata.namespace = Some(NS.into());
    let backups = cluster.spec.backups.as_mut().unwrap();
    backups.pgbackrest.repos = serde_yaml::from_str(
        "[{name: repo1, s3: {bucket: b, endpoint: s3.example.com, region: r}}]",
    )
    .unwrap();
    if standby {
        cluster.spec.standby =
            Some(serde_yaml::from_str("{enabled: true, repoName: repo1}").unwrap());
    }
    cluster
}

/// What an instance's `info` container runs every period, as rendered, writing under `dir`
/// instead of the container's mount.
fn loop_body(cluster: &PostgresCluster, dir: &Path) -> String {
    let set = &cluster.spec.instances[0];
    let inputs = Inputs {
        instances: vec![Instance {
            name: format!("{}-{}-abcd", cluster.name(), set.name),
            set: set.name.clone(),
        }],
        ..Default::default()
    };
    let objects = objects::render(cluster, &inputs).unwrap();
    let set = &objects.stateful_sets[0];
    let pod = set.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let info = pod.containers.iter().find(|c| c.name == "info").unwrap();
    let script = &info.command.as_ref().unwrap()[2];
    let body = script.split_once("do\n").unwrap().1;
    let body = body.split_once("sleep ").unwrap().0;
    body.replace(paths::REPO_INFO, dir.to_str().unwrap())
}

/// Run `body` as the container does (the `postgres` account, the instance's `PG*`).
fn run(body: &str, env: &[(&str, String)]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", "bash", "-c", body])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(out.status.success(), "{body}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_primary_lists_the_bucket_and_a_replica_serves_nothing_stale() {
    let h = Harness::new().await;
    let mut hippo = manifest::parse(&read(&repo_root().join("assets/examples/ha.yaml"))).unwrap();
    hippo.metadata.namespace = Some(NS.into());
    h.create(&manifest::to_yaml(&hippo)).await;
    h.settle(NS, "hippo").await;
    let primary = PodPostgres::start(&h.store, NS, "hippo").await;
    let replica = primary.streaming_standby();

    let dir = tempfile::Builder::new()
        .prefix("pgdeck-test-repoinfo-")
        .tempdir()
        .unwrap();
    let (uid, gid) = account();
    chown(dir.path(), Some(uid), Some(gid)).unwrap();
    let served = dir.path().join(REPO_INFO_FILE);
    let body = loop_body(&cloud_only(false), dir.path());

    // The primary lists the repository: pgBackRest's own JSON is served.
    run(&body, &primary.socket_env());
    let listed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&served).unwrap())
            .unwrap_or_else(|e| panic!("{e}: {}", std::fs::read_to_string(&served).unwrap()));
    assert_eq!(listed[0]["name"], "db", "{listed}");

    // A replica lists nothing, and drops what it served when it was the primary.
    run(&body, &replica.socket_env());
    assert!(!served.exists(), "a replica still serves {served:?}");

    // An instance that cannot say what it is keeps what it served.
    std::fs::write(&served, "[]").unwrap();
    let gone = [
        (
            "PGHOST",
            dir.path().join("no-socket-here").display().to_string(),
        ),
        ("PGPORT", "1".to_string()),
    ];
    run(&body, &gone);
    assert_eq!(std::fs::read_to_string(&served).unwrap(), "[]");

    // In a standby cluster every instance is in recovery, its leader too: all of them list.
    let body = loop_body(&cloud_only(true), dir.path());
    std::fs::remove_file(&served).unwrap();
    run(&body, &replica.socket_env());
    let listed = std::fs::read_to_string(&served).unwrap();
    assert!(listed.contains("\"name\":\"db\""), "{listed}");
}
