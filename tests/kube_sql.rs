//! SQL to an instance pod on Kubernetes through the API server's port-forward
//! (`pods/portforward`), against the in-memory API server whose stand-in kubelet speaks
//! Kubernetes' port-forward protocol and connects to a REAL PostgreSQL holding the cluster's
//! certificate and superuser password (tests/common/pod_postgres.rs): the console's Activity
//! tab sees a session and cancels it, its Settings tab reads live values, its Instances tab
//! connections and commits; `pgdeck psql` and the console's `p` (in tmux) run the real psql
//! through the forward, the server checked against the cluster's CA.

use crate::common;

use std::time::Duration;

use common::kube::Harness;
use common::pod_postgres::PodPostgres;
use common::tmux::Tmux;
use common::{next, read, repo_root};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use pgdeck::api::manifest;
use pgdeck::console::activity::{Signal, Target};
use pgdeck::console::app::{Data, Key};
use pgdeck::console::source::KubeSource;
use pgdeck::observe::connection::Endpoint;
use pgdeck::observe::settings::Origin;
use pgdeck::platform::kube::forward::Forward;
use pgdeck::platform::kube::names::{self, Names};

const NS: &str = "db";

/// hippo (assets/examples/ha.yaml) settled in the in-memory API server, its primary's pod
/// backed by a real PostgreSQL; and the primary's name.
async fn hippo_with_a_database() -> (Harness, PodPostgres, String) {
    let h = Harness::new().await;
    let text = read(&repo_root().join("assets/examples/ha.yaml"))
        + "  patroni:\n    dynamicConfiguration:\n      postgresql:\n        parameters:\n          work_mem: 12MB\n";
    let mut hippo = manifest::parse(&text).unwrap();
    hippo.metadata.namespace = Some(NS.into());
    h.create(&manifest::to_yaml(&hippo)).await;
    h.settle(NS, "hippo").await;
    let primary = h
        .cluster(NS, "hippo")
        .await
        .status
        .and_then(|s| s.primary)
        .expect("the operator names a primary");
    // Every instance's pod reaches the same server: the tests follow the primary's.
    let pg = PodPostgres::start(&h.store, NS, "hippo").await;
    for instance in h.cluster(NS, "hippo").await.status.unwrap().instances {
        h.patroni
            .lock()
            .unwrap()
            .databases
            .insert(names::pod(&instance.name), pg.address);
    }
    (h, pg, primary)
}

async fn secret(h: &Harness, name: &str, key: &str) -> String {
    let secrets: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    let s = secrets.get(name).await.unwrap();
    String::from_utf8(s.data.unwrap()[key].0.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_sees_and_cancels_a_session_and_reads_live_settings_through_a_port_forward() {
    let (h, _pg, primary) = hippo_with_a_database().await;

    // An application's session, through a port-forward of its own, checked as the console
    // checks: the cluster's CA, the pod's DNS name.
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), NS);
    let forward = Forward::open(pods, &names::pod(&primary), 5432)
        .await
        .unwrap();
    let endpoint = Endpoint::verified(
        forward.address(),
        &Names::new("hippo", NS).pod_host(&primary),
        secret(&h, "hippo-cluster-cert", "ca.crt").await.as_bytes(),
        "postgres",
        &secret(&h, "hippo-superuser", "password").await,
        "postgres",
    )
    .unwrap();
    let app = endpoint
        .connect()
        .await
        .expect("TLS and SCRAM through the forward");
    app.batch_execute("SET application_name = 'sleeper'")
        .await
        .unwrap();
    let sleeping = tokio::spawn(async move { app.query("SELECT pg_sleep(60)", &[]).await });

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));
    let target = Target {
        key: Key::pgdeck(NS, "hippo"),
        instance: primary.clone(),
        port: None,
    };
    source.activity(Some(target.clone()));
    let session = next(&mut rx, |d| match d {
        Data::Activity {
            result: Ok(sessions),
            ..
        } => sessions.into_iter().find(|s| s.query.contains("pg_sleep")),
        Data::Activity { result: Err(e), .. } => panic!("Activity failed: {e}"),
        _ => None,
    })
    .await;
    assert_eq!(session.application, "sleeper");
    assert_eq!(session.state, "active");

    source.signal(Signal {
        target: target.clone(),
        backend: session.backend,
        terminate: false,
    });
    let said = next(&mut rx, |d| match d {
        Data::Signalled(result) => Some(result),
        _ => None,
    })
    .await;
    assert_eq!(
        said,
        Ok(format!("session {} cancelled", session.backend.pid))
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), sleeping)
        .await
        .expect("the cancelled query returns")
        .unwrap();
    let error = ended.expect_err("the query was cancelled");
    assert_eq!(
        error.as_db_error().map(|e| e.message()),
        Some("canceling statement due to user request")
    );
    let events: Api<Event> = Api::namespaced(h.store.clone(), NS);
    let recorded = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        recorded
            .iter()
            .any(|e| e.reason.as_deref() == Some("SessionCancelled")),
        "the cancel is an Event on the cluster"
    );

    // Settings: the server's own values beside what is asked.
    source.settings(Some(target.clone()));
    let rows = next(&mut rx, |d| match d {
        Data::Settings {
            result: Ok(rows), ..
        } => Some(rows),
        Data::Settings { result: Err(e), .. } => panic!("Settings failed: {e}"),
        _ => None,
    })
    .await;
    let value = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.value.clone())
    };
    assert_eq!(
        value("max_connections").as_deref(),
        Some("20"),
        "live, not asked"
    );
    assert_eq!(value("ssl").as_deref(), Some("on"));
    let row = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
    assert_eq!(row("work_mem").origin, Origin::SpecPatroni);
    assert_eq!(row("work_mem").wanted.as_deref(), Some("12MB"));
    assert_eq!(row("wal_level").origin, Origin::Pgdeck);

    // The Instances tab's connections and commits, as locally.
    source.open(target.key.clone());
    let vitals = next(&mut rx, |d| match d {
        Data::Vitals { mut vitals, .. } => {
            vitals.remove(&primary).filter(|v| v.connections.is_some())
        }
        _ => None,
    })
    .await;
    let connections = vitals.connections.unwrap();
    assert_eq!(connections.max, 20);
    assert!(vitals.commits.is_some_and(|c| c > 0), "{vitals:?}");

    // What the console used is what its user must be granted: port-forward is `create`.
    let used: Vec<_> = h.calls().iter().flat_map(|c| c.permissions()).collect();
    assert!(
        used.contains(&("".into(), "pods/portforward".into(), "create".into())),
        "{used:?}"
    );
    drop(forward);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_to_a_pod_that_is_not_there_is_refused_at_once_naming_it() {
    let (h, _pg, _) = hippo_with_a_database().await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), NS);
    let refused = Forward::open(pods, "hippo-nowhere-0", 5432)
        .await
        .err()
        .expect("no such pod");
    assert!(
        refused.contains("pod hippo-nowhere-0") && refused.contains("404 Not Found"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgdeck_psql_runs_psql_through_a_port_forward_checking_the_server() {
    let (h, _pg, primary) = hippo_with_a_database().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, Harness::kubeconfig(h.listen().await, NS)).unwrap();
    let psql = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgdeck"));
        command
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("PGPASSWORD")
            .args(["--platform", "kube", "psql", "hippo"])
            .args(args);
        command
    };

    // psql is connected over TLS, to the pod's name (not the loopback) as the host its
    // certificate is checked against (verify-full: psql's environment, see platform::psql).
    let out = psql(&[
        "--user",
        "postgres",
        "--",
        "-Atc",
        "SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        "-c",
        "\\echo :HOST",
    ])
    .output()
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod_host = Names::new("hippo", NS).pod_host(&primary);
    assert_eq!(stdout, format!("t|postgres\n{pod_host}\n"));

    // A user the cluster does not have: refused, naming those it has; psql never starts.
    let out = psql(&["--user", "mallory", "--", "-c", "SELECT 1"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hippo has no user mallory"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_in_the_console_on_kubernetes_opens_psql_through_a_port_forward_and_returns() {
    let (h, _pg, _) = hippo_with_a_database().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, Harness::kubeconfig(h.listen().await, NS)).unwrap();
    // psql's private files (the CA, the passfile) go here, to be seen gone afterwards.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let console = format!(
        "TMPDIR={} KUBECONFIG={} PGDECK_CONFIG_DIR={}/config {}",
        tmp.display(),
        kubeconfig.display(),
        dir.path().display(),
        env!("CARGO_BIN_EXE_pgdeck")
    );
    let tmux = Tmux::start(140, 32);
    tmux.keys(&[&console, "Enter"]);
    tokio::task::block_in_place(|| {
        tmux.wait(Duration::from_secs(15), "the cluster list", |s| {
            s.contains("kube fake") && s.contains("hippo")
        });
        tmux.keys(&["Enter"]);
        tmux.wait(Duration::from_secs(10), "the instances", |s| {
            s.contains("│hippo-instance1-")
        });
        tmux.keys(&["p"]);
        tmux.wait(Duration::from_secs(5), "the user dialog", |s| {
            s.contains("psql on hippo-instance1-") && s.contains("postgres  superuser")
        });
        // The superuser, last in the list.
        tmux.keys(&["j", "j", "Enter"]);
        let s = tmux.wait(Duration::from_secs(15), "psql's prompt", |s| {
            s.contains("postgres=#")
        });
        assert!(s.contains("SSL connection"), "not over TLS:\n{s}");
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            2,
            "the CA and the passfile"
        );
        tmux.text("SELECT 'pgdeck-kube-' || 1");
        tmux.keys(&["\\;", "Enter"]);
        tmux.wait(Duration::from_secs(5), "the query's output", |s| {
            s.lines().any(|l| l.trim() == "pgdeck-kube-1")
        });
        tmux.text("\\q");
        tmux.keys(&["Enter"]);
        let s = tmux.wait(Duration::from_secs(10), "the console again", |s| {
            s.contains("│hippo-instance1-") && s.contains("psql on hippo-instance1-")
        });
        assert!(s.contains("ended"), "{s}");
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "the CA's file and the passfile are removed"
        );
        tmux.keys(&["q"]);
        tmux.assert_terminal_restored();
    });
}
