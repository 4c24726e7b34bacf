//! How far behind a standby cluster on Kubernetes is, measured against a REAL PostgreSQL
//! streaming standby: the in-memory API server and its stand-in kubelet run no containers, so
//! the test runs the `info` container's query (`plan::standby_lag::RECEIVER_SQL`) as the
//! container does (the superuser by peer through the socket) on a real standby streaming from
//! a real primary, and the stand-in serves what it printed as the standby leader's `wal.json`.
//! The operator reads it through the pod proxy and says how far behind it is, and that it no
//! longer streams once the source is gone.

use crate::common;

use std::time::{Duration, Instant};

use common::kube::Harness;
use common::pod_postgres::PodPostgres;
use common::{read, repo_root};
use pgdeck::api::manifest;
use pgdeck::api::sources::Standby;
use pgdeck::plan::standby::CONDITION;
use pgdeck::plan::standby_lag::RECEIVER_SQL;
use pgdeck::platform::kube::names;
use serde_json::Value;

const NS: &str = "db";

/// Cluster `name` from ha.yaml in the test namespace, standby of `standby` when given, settled.
async fn settled(h: &Harness, name: &str, standby: Option<Standby>) {
    let mut cluster = manifest::parse(&read(&repo_root().join("assets/examples/ha.yaml"))).unwrap();
    cluster.metadata.name = Some(name.into());
    cluster.metadata.namespace = Some(NS.into());
    cluster.spec.standby = standby;
    h.create(&manifest::to_yaml(&cluster)).await;
    h.settle(NS, name).await;
}

/// The `Standby` condition's message after a pass over `copy`.
async fn message_after_a_pass(h: &Harness) -> String {
    h.reconcile(NS, "copy").await.unwrap();
    let status = h.cluster(NS, "copy").await.status.unwrap();
    status.condition(CONDITION).unwrap().message.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_streaming_standby_says_how_far_behind_what_its_source_last_sent() {
    let h = Harness::new().await;
    settled(&h, "hippo", None).await;
    let standby = Standby {
        enabled: Some(true),
        host: Some("hippo-primary".into()),
        port: Some(5432),
        repo_name: None,
    };
    settled(&h, "copy", Some(standby)).await;
    let leader = names::pod(&h.cluster(NS, "copy").await.status.unwrap().primary.unwrap());

    let source = PodPostgres::start(&h.store, NS, "hippo").await;
    let replica = source.streaming_standby();
    // The source writes; the standby streams it, and the sender reports its WAL end.
    let mut sample = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0.. {
        source.by_socket(&format!("CREATE TABLE written_{i} AS SELECT 1"));
        sample = replica.by_socket(RECEIVER_SQL);
        let r: Value = serde_json::from_str(&sample).unwrap();
        if r["status"] == "streaming" && r["latest_end_lsn"].is_string()
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let receiver: Value = serde_json::from_str(&sample).unwrap();
    assert_eq!(receiver["status"], "streaming", "{sample}");
    let serve = |r: Value| h.serve_receiver(&leader, r);
    serve(receiver);
    assert_eq!(
        message_after_a_pass(&h).await,
        "standby of hippo-primary:5432, < 16.0 MiB behind what it last sent"
    );

    // The source goes: the standby leader's WAL receiver stops streaming, and status says so.
    source.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let receiver: Value = serde_json::from_str(&replica.by_socket(RECEIVER_SQL)).unwrap();
        let streaming = receiver["status"] == "streaming";
        serve(receiver);
        if !streaming || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let said = message_after_a_pass(&h).await;
    assert!(
        said.starts_with(
            "standby of hippo-primary:5432, how far behind is not measured: not streaming from \
             hippo-primary:5432: "
        ),
        "{said}"
    );
}
