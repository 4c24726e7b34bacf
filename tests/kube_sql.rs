//! SQL to an instance pod on Kubernetes through the API server's port-forward
//! (`pods/portforward`), against the in-memory API server whose stand-in kubelet speaks
//! Kubernetes' port-forward protocol and connects to a REAL PostgreSQL holding the cluster's
//! certificate and superuser password (tests/common/pod_postgres.rs): the console's Activity
//! tab sees a session and cancels it, its Settings tab reads live values, its Instances tab
//! connections and commits; `pgdeck psql` and the console's `p` (in tmux) run the real psql
//! through the forward, the server checked against the cluster's CA. Crunchy PGO's clusters
//! the same, as PGO's superuser from `<c>-pguser-postgres`, the server checked for the name
//! PGO's certificate carries (its primary Service's); psql there (`p`) as a user its spec lists
//! the same way, and as `postgres` when unlisted through a private local socket relaying each
//! connection to `pods/exec`. The Connection tab reads a real pgBouncer's pools through a
//! forward to its pod.

use crate::common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::kube::Harness;
use common::pod_pgbouncer::PodPgBouncer;
use common::pod_postgres::PodPostgres;
use common::tmux::Tmux;
use common::{next, read, repo_root};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use pgdeck::api::manifest;
use pgdeck::console::activity::{Signal, Target};
use pgdeck::console::app::Reconciler;
use pgdeck::console::app::{Data, Key};
use pgdeck::console::source::KubeSource;
use pgdeck::observe::connection::Endpoint;
use pgdeck::observe::settings::Origin;
use pgdeck::plan::certificates;
use pgdeck::platform::kube::forward::Forward;
use pgdeck::platform::kube::names::{self, Names};
use serde_json::{Value, json};

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

    let pod_host = Names::new("hippo", NS).pod_host(&primary);
    let application = connect_as(
        &h,
        &primary,
        &pod_host,
        "hippo-cluster-cert",
        "hippo-superuser",
    )
    .await;
    let (mut source, mut rx, target) = console(&h, Key::pgdeck(NS, "hippo"), &primary);
    sees_and_cancels_a_session(&h, &mut source, &mut rx, &target, sleep_in(application)).await;

    // Settings: the server's own values beside what is asked.
    source.settings(Some(target.clone()));
    let rows = settings(&mut rx).await;
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
}

/// An application's connection to `instance`'s pod, through a port-forward of its own (kept
/// as long as the connection), checked as the console checks: the CA of Secret `cert`,
/// `server_name`; as the superuser whose password Secret `password` has.
async fn connect_as(
    h: &Harness,
    instance: &str,
    server_name: &str,
    cert: &str,
    password: &str,
) -> tokio_postgres::Client {
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), NS);
    let forward = Forward::open(pods, &names::pod(instance), 5432)
        .await
        .unwrap();
    let endpoint = Endpoint::verified(
        forward.address(),
        server_name,
        secret(h, cert, "ca.crt").await.as_bytes(),
        "postgres",
        &secret(h, password, "password").await,
        "postgres",
    )
    .unwrap();
    let client = endpoint
        .connect()
        .await
        .expect("TLS and SCRAM through the forward");
    // The forward lives as long as the connection through it.
    tokio::spawn(async move {
        let _kept = forward;
        std::future::pending::<()>().await
    });
    client
}

/// `application`'s session, named `sleeper`, sleeping a minute; what its query ended with.
fn sleep_in(application: tokio_postgres::Client) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        application
            .batch_execute("SET application_name = 'sleeper'")
            .await
            .unwrap();
        let ended = application.query("SELECT pg_sleep(60)", &[]).await;
        let error = ended.expect_err("the query was cancelled");
        error
            .as_db_error()
            .map(|e| e.message().to_string())
            .unwrap()
    })
}

/// The console's Activity tab sees the `sleeper`'s sleeping query on `target` and cancels it
/// (`sleeping` says what the query ended with); the cancel is an Event.
async fn sees_and_cancels_a_session(
    h: &Harness,
    source: &mut KubeSource,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Data>,
    target: &Target,
    sleeping: tokio::task::JoinHandle<String>,
) {
    source.activity(Some(target.clone()));
    let session = next(rx, |d| match d {
        Data::Activity {
            result: Ok(sessions),
            ..
        // Active: tokio_postgres prepares the statement first (Parse, then Sync), and a sample
        // taken before it is executed shows its text on an idle session.
        } => sessions
            .into_iter()
            .find(|s| s.query.contains("pg_sleep") && s.state == "active"),
        Data::Activity { result: Err(e), .. } => panic!("Activity failed: {e}"),
        _ => None,
    })
    .await;
    assert_eq!(session.application, "sleeper");

    source.signal(Signal {
        target: target.clone(),
        backend: session.backend,
        terminate: false,
    });
    let said = next(rx, |d| match d {
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
    assert!(
        ended.contains("canceling statement due to user request"),
        "{ended}"
    );
    let events: Api<Event> = Api::namespaced(h.store.clone(), NS);
    let recorded = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        recorded
            .iter()
            .any(|e| e.reason.as_deref() == Some("SessionCancelled")),
        "the cancel is an Event on the cluster"
    );
}

/// The console's source on `h`, and `instance` of the cluster `key` as its tabs target it.
fn console(
    h: &Harness,
    key: Key,
    instance: &str,
) -> (
    KubeSource,
    tokio::sync::mpsc::UnboundedReceiver<Data>,
    Target,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));
    let target = Target {
        key,
        instance: instance.into(),
        port: None,
    };
    (source, rx, target)
}

/// The Settings tab's next rows.
async fn settings(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Data>,
) -> Vec<pgdeck::observe::settings::Setting> {
    next(rx, |d| match d {
        Data::Settings {
            result: Ok(rows), ..
        } => Some(rows),
        Data::Settings { result: Err(e), .. } => panic!("Settings failed: {e}"),
        _ => None,
    })
    .await
}

/// Crunchy PGO's cluster zoo as PGO leaves it (see [`Harness::pgo_cluster`]) with `spec.users`
/// `users`: its `zoo-cluster-cert` as PGO issues it (for its Services' names, not its pods'),
/// and `zoo-pguser-postgres` when `users` lists `postgres`, as PGO writes it then. Both
/// instance pods reach one real PostgreSQL: through a port-forward, with the password of that
/// Secret, when there is one; else only by an exec into their `database` container, by peer
/// on the socket, as PGO's own tooling signs in.
async fn pgo_zoo_with_a_database(users: Value) -> (Harness, PodPostgres) {
    let h = Harness::new().await;
    h.pgo_cluster(
        NS,
        "zoo",
        json!({"users": users, "patroni": {"dynamicConfiguration": {"postgresql":
               {"parameters": {"work_mem": "12MB"}}}}}),
    )
    .await;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_params = certificates::ca("postgres-operator-ca".into());
    let ca = ca_params.clone().self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let primary = format!("zoo-primary.{NS}.svc");
    let replicas = format!("zoo-replicas.{NS}.svc");
    let (cert, key) = certificates::issue(
        &format!("{primary}.cluster.local"),
        &[&format!("{primary}.cluster.local"), &primary, &replicas],
        1,
        &issuer,
    )
    .unwrap();
    let mut secrets = vec![json!({
        "metadata": {"name": "zoo-cluster-cert", "namespace": NS},
        "data": {"ca.crt": STANDARD.encode(&ca), "tls.crt": STANDARD.encode(cert),
                 "tls.key": STANDARD.encode(key)},
    })];
    let with_superuser = users
        .as_array()
        .is_some_and(|u| u.iter().any(|u| u["name"] == "postgres"));
    if with_superuser {
        secrets.push(json!({
            "metadata": {"name": "zoo-pguser-postgres", "namespace": NS},
            "data": {"user": STANDARD.encode("postgres"),
                     "password": STANDARD.encode("pgo-made-it"),
                     "host": STANDARD.encode(&primary), "port": STANDARD.encode("5432")},
        }));
    }
    let api: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    for secret in secrets {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
    }
    // What PGO bootstraps Patroni's dynamic configuration with, in part.
    let config = json!({"postgresql": {"parameters": {"wal_level": "logical",
                        "work_mem": "12MB", "archive_mode": "on"}}});
    h.patroni
        .lock()
        .unwrap()
        .config
        .insert(format!("{NS}/zoo"), config.as_object().unwrap().clone());
    let pg = if with_superuser {
        PodPostgres::with_password_of(&h.store, NS, "zoo", "zoo-pguser-postgres").await
    } else {
        PodPostgres::peer_only()
    };
    for suffix in ["abcd", "efgh"] {
        let pod = names::pod(&format!("zoo-instance1-{suffix}"));
        let mut fake = h.patroni.lock().unwrap();
        if with_superuser {
            fake.databases.insert(pod, pg.address);
        } else {
            fake.shells.insert(pod, pg.shell());
        }
    }
    (h, pg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgos_cluster_shows_and_cancels_sessions_and_reads_settings_and_vitals_as_pgos_superuser() {
    let users = json!([{"name": "zoo", "databases": ["zoo"]}, {"name": "postgres"}]);
    let (h, _pg) = pgo_zoo_with_a_database(users).await;
    let leader = "zoo-instance1-abcd";
    let application = connect_as(
        &h,
        leader,
        "zoo-primary.db.svc",
        "zoo-cluster-cert",
        "zoo-pguser-postgres",
    )
    .await;
    let (mut source, mut rx, target) =
        console(&h, Key(NS.into(), "zoo".into(), Reconciler::Pgo), leader);
    sees_and_cancels_a_session(&h, &mut source, &mut rx, &target, sleep_in(application)).await;
    let events: Api<Event> = Api::namespaced(h.store.clone(), NS);
    let recorded = events.list(&ListParams::default()).await.unwrap().items;
    let on = recorded
        .iter()
        .find(|e| e.reason.as_deref() == Some("SessionCancelled"))
        .and_then(|e| e.regarding.as_ref())
        .and_then(|r| r.api_version.clone());
    assert_eq!(
        on.as_deref(),
        Some("postgres-operator.crunchydata.com/v1beta1")
    );

    // Settings: read through one port-forward kept open, PGO's superuser's Secret read once;
    // nothing is said to be pgdeck's wish on PGO's cluster.
    let mark = h.mark();
    source.settings(Some(target.clone()));
    let mut rows = Vec::new();
    for _ in 0..3 {
        rows = settings(&mut rx).await;
    }
    let row = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
    assert_eq!(row("max_connections").value.as_deref(), Some("20"));
    assert_eq!(row("work_mem").origin, Origin::SpecPatroni);
    assert_eq!(row("work_mem").wanted.as_deref(), Some("12MB"));
    assert!(rows.iter().all(|r| r.origin != Origin::Pgdeck), "{rows:#?}");
    let calls = h.calls();
    let count = |what: &str| {
        calls[mark..]
            .iter()
            .filter(|c| c.path.ends_with(what))
            .count()
    };
    assert_eq!(count("/portforward"), 1, "one port-forward for three reads");
    assert_eq!(count("/secrets/zoo-pguser-postgres"), 1);

    // The Instances tab's connections and commits.
    source.open(target.key.clone());
    let vitals = next(&mut rx, |d| match d {
        Data::Vitals { mut vitals, .. } => {
            vitals.remove(leader).filter(|v| v.connections.is_some())
        }
        _ => None,
    })
    .await;
    assert_eq!(vitals.connections.unwrap().max, 20);
    assert!(vitals.commits.is_some_and(|c| c > 0), "{vitals:?}");
}

/// Without `postgres` in spec.users PGO writes no superuser Secret: the console reaches the
/// instance's PostgreSQL, which lets in only `postgres` by peer on its socket, through an
/// exec into the pod's `database` container running pgdeck's own bridge to that socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgos_cluster_without_its_superuser_shows_sessions_settings_and_vitals_through_pods_exec() {
    let (h, pg) = pgo_zoo_with_a_database(json!([{"name": "zoo"}])).await;
    let leader = "zoo-instance1-abcd";
    let sleeper = pg.session("sleeper", "SELECT pg_sleep(60)");
    let sleeping = tokio::spawn(async move {
        let out = sleeper.wait_with_output().await.unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    });
    let (mut source, mut rx, target) =
        console(&h, Key(NS.into(), "zoo".into(), Reconciler::Pgo), leader);
    sees_and_cancels_a_session(&h, &mut source, &mut rx, &target, sleeping).await;

    // Settings: three reads through one connection, so one exec.
    let mark = h.mark();
    source.settings(Some(target.clone()));
    let mut rows = Vec::new();
    for _ in 0..3 {
        rows = settings(&mut rx).await;
    }
    let row = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
    assert_eq!(row("max_connections").value.as_deref(), Some("20"));
    assert_eq!(row("listen_addresses").value.as_deref(), Some(""));
    assert_eq!(row("work_mem").origin, Origin::SpecPatroni);
    let execs: Vec<_> = h.calls()[mark..]
        .iter()
        .filter(|c| c.path.ends_with("/exec"))
        .cloned()
        .collect();
    assert_eq!(execs.len(), 1, "one exec for three reads");
    assert_eq!(
        execs[0].path,
        format!("/api/v1/namespaces/{NS}/pods/{}/exec", names::pod(leader))
    );
    assert!(execs[0].query.contains("container=database"), "{execs:?}");

    // The Instances tab's connections and commits.
    source.open(target.key.clone());
    let vitals = next(&mut rx, |d| match d {
        Data::Vitals { mut vitals, .. } => {
            vitals.remove(leader).filter(|v| v.connections.is_some())
        }
        _ => None,
    })
    .await;
    assert_eq!(vitals.connections.unwrap().max, 20);
    assert!(vitals.commits.is_some_and(|c| c > 0), "{vitals:?}");

    // Exec is what its user must be granted; no port-forward, no superuser's Secret.
    let calls = h.calls();
    let used: Vec<_> = calls.iter().flat_map(|c| c.permissions()).collect();
    assert!(
        used.contains(&("".into(), "pods/exec".into(), "create".into())),
        "{used:?}"
    );
    assert!(!calls.iter().any(|c| c.path.ends_with("/portforward")));
    assert!(
        !calls
            .iter()
            .any(|c| c.path.ends_with("/zoo-pguser-postgres"))
    );

    // The console closed, its connections end, and with them the execs' bridges.
    source.close();
    let console = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgdeck console'";
    let mut left = String::new();
    for _ in 0..100 {
        left = pg.by_socket(console);
        if left.trim() == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left.trim(), "0", "the console's sessions outlive it");
}

/// The exec route's failures say what is missing: the RBAC verb, the image's python3, the
/// socket; and it works again once nothing is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgos_cluster_through_pods_exec_says_what_is_missing() {
    let (h, pg) = pgo_zoo_with_a_database(json!([{"name": "zoo"}])).await;
    let leader = "zoo-instance1-abcd";
    let pod = names::pod(leader);
    let (mut source, mut rx, target) =
        console(&h, Key(NS.into(), "zoo".into(), Reconciler::Pgo), leader);
    let mut activity = async |source: &mut KubeSource| {
        source.activity(Some(target.clone()));
        // What the poll replaced may have said.
        while rx.try_recv().is_ok() {}
        next(&mut rx, |d| match d {
            Data::Activity { result, .. } => Some(result),
            _ => None,
        })
        .await
    };

    let exec = (
        "".to_string(),
        "pods/exec".to_string(),
        "create".to_string(),
    );
    h.patroni.lock().unwrap().denied.insert(exec.clone());
    assert_eq!(
        activity(&mut source).await.unwrap_err(),
        format!(
            "cannot exec into pod {NS}/{pod}: forbidden: reaching PGO's PostgreSQL as \
             `postgres` without its superuser's Secret needs RBAC verb `create` on \
             `pods/exec` in namespace {NS}"
        )
    );
    h.patroni.lock().unwrap().denied.remove(&exec);

    // An image without python3.
    let empty = tempfile::tempdir().unwrap();
    let mut shell = pg.shell();
    shell.path = empty.path().display().to_string();
    h.patroni.lock().unwrap().shells.insert(pod.clone(), shell);
    let said = activity(&mut source).await.unwrap_err();
    assert!(
        said.starts_with(&format!(
            "pod {NS}/{pod}, container database has no python3, which pgdeck runs there"
        )) && said.contains("executable file not found"),
        "{said}"
    );

    // PostgreSQL's socket elsewhere than PGHOST and PGPORT say.
    let mut shell = pg.shell();
    shell.port += 1;
    let socket = shell.socket_dir.join(format!(".s.PGSQL.{}", shell.port));
    h.patroni.lock().unwrap().shells.insert(pod.clone(), shell);
    assert_eq!(
        activity(&mut source).await.unwrap_err(),
        format!(
            "pod {NS}/{pod}, container database: no PostgreSQL socket at {}: No such file or \
             directory",
            socket.display()
        )
    );

    // Nothing missing: the sessions again.
    h.patroni.lock().unwrap().shells.insert(pod, pg.shell());
    let _waiting = pg.session("waiter", "SELECT pg_sleep(60)");
    let waiter = next(&mut rx, |d| match d {
        Data::Activity { result: Ok(s), .. } => s.into_iter().find(|s| s.application == "waiter"),
        Data::Activity { result: Err(e), .. } if !e.contains("socket") => panic!("{e}"),
        _ => None,
    })
    .await;
    assert_eq!(waiter.user, "postgres");
    source.close();
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
        query_and_quit(
            &tmux,
            "SELECT 'pgdeck-kube-' || 1",
            "pgdeck-kube-1",
            "hippo-instance1-",
        );
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "the CA's file and the passfile are removed"
        );
        tmux.keys(&["q"]);
        tmux.assert_terminal_restored();
    });
}

/// The console's Connection tab reads pgBouncer's pools on Kubernetes: `SHOW POOLS` on a REAL
/// pgBouncer started from the files the operator rendered (tests/common/pod_pgbouncer.rs),
/// behind the stand-in kubelet's port-forward to a ready pgBouncer pod, as the pooler's login
/// that the rendered ini lets read statistics, over TLS checked against pgBouncer's CA for its
/// Service's name; a client waiting for a server shows as waiting, and the pod is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_pgbouncers_pools_through_a_port_forward() {
    let h = Harness::new().await;
    let text = read(&repo_root().join("assets/examples/ha.yaml")) + "  proxy:\n    pgBouncer: {}\n";
    let mut hippo = manifest::parse(&text).unwrap();
    hippo.metadata.namespace = Some(NS.into());
    h.create(&manifest::to_yaml(&hippo)).await;
    h.settle(NS, "hippo").await;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));
    source.open(Key::pgdeck(NS, "hippo"));
    let unread = next(&mut rx, |d| match d {
        Data::Pools { result: Err(e), .. } => Some(e),
        _ => None,
    })
    .await;
    assert_eq!(unread, "no pgBouncer pod is ready");

    // A ready pgBouncer pod, as the Deployment's controller would make it, whose port is a
    // real pgBouncer.
    let bouncer = PodPgBouncer::start(&h.store, NS, "hippo").await;
    let deployments: Api<Deployment> = Api::namespaced(h.store.clone(), NS);
    let template = deployments
        .get("hippo-pgbouncer")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "hippo-pgbouncer-5d8f9-x2x7q", "labels": template.metadata.unwrap().labels},
        "spec": {"containers": [{"name": "pgbouncer", "image": "postgres"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(h.store.clone(), NS);
    pods.create(&Default::default(), &pod).await.unwrap();
    h.patroni
        .lock()
        .unwrap()
        .databases
        .insert("hippo-pgbouncer-5d8f9-x2x7q".into(), bouncer.address);

    // A client of the pool, signed in from pgBouncer's authentication file, waits for a server
    // (the primary's Service name resolves nowhere here).
    let client = Endpoint::verified(
        bouncer.address,
        &Names::new("hippo", NS).service_host("hippo-pgbouncer"),
        secret(&h, "hippo-pgbouncer", "ca.crt").await.as_bytes(),
        "_crunchypgbouncer",
        &secret(&h, "hippo-pgbouncer", "password").await,
        "postgres",
    )
    .unwrap();
    let waiting = tokio::spawn(async move { client.connect_with(client.console_config()).await });

    let shown = next(&mut rx, |d| match d {
        Data::Pools { result: Ok(p), .. } if p.pools.iter().any(|p| p.clients_waiting > 0) => {
            Some(p)
        }
        _ => None,
    })
    .await;
    assert_eq!(
        shown.from.as_deref(),
        Some("pod hippo-pgbouncer-5d8f9-x2x7q")
    );
    let pool = &shown.pools[0];
    assert_eq!(
        (pool.database.as_str(), pool.user.as_str()),
        ("postgres", "_crunchypgbouncer")
    );
    assert_eq!((pool.clients_active, pool.clients_waiting), (0, 1));
    waiting.abort();

    // The pod gone, the next read says so rather than showing the last pools.
    drop(bouncer);
    let lost = next(&mut rx, |d| match d {
        Data::Pools { result: Err(e), .. } => Some(e),
        _ => None,
    })
    .await;
    assert!(
        lost.contains("pgBouncer pod hippo-pgbouncer-5d8f9-x2x7q"),
        "{lost}"
    );
    source.close();
}

/// The collector beside pgBouncer (`spec.instrumentation` with `spec.proxy`): the statements of
/// its rendered `collector.yaml` run on a REAL pgBouncer started from the rendered files, as
/// the stats user its datasource names with the `<c>-pgbouncer` Secret's password, over TLS;
/// every metric's columns are there and never NULL. pgBouncer writes the log file the
/// collector reads, each record in the form its transform parses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pgbouncer_collector_reads_a_real_pgbouncers_statistics_and_log() {
    let h = Harness::new().await;
    let text = read(&repo_root().join("assets/examples/ha.yaml"))
        + "  proxy:\n    pgBouncer: {}\n  instrumentation: {}\n";
    let mut hippo = manifest::parse(&text).unwrap();
    hippo.metadata.namespace = Some(NS.into());
    h.create(&manifest::to_yaml(&hippo)).await;
    h.settle(NS, "hippo").await;
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(h.store.clone(), NS);
    let data = maps.get("hippo-pgbouncer").await.unwrap().data.unwrap();
    let config: Value = serde_yaml::from_str(&data["collector.yaml"]).unwrap();
    let receiver = &config["receivers"]["sqlquery"];
    let datasource = receiver["datasource"].as_str().unwrap();
    assert_eq!(
        datasource,
        "host='localhost' port=5432 dbname='pgbouncer' user='_crunchypgbouncer' \
         password=${env:PGPASSWORD} sslmode=require"
    );
    assert!(data["pgbouncer.ini"].contains("logfile = /tmp/logs/pgbouncer/pgbouncer.log"));

    let bouncer = PodPgBouncer::start(&h.store, NS, "hippo").await;
    let endpoint = Endpoint::verified(
        bouncer.address,
        &Names::new("hippo", NS).service_host("hippo-pgbouncer"),
        secret(&h, "hippo-pgbouncer", "ca.crt").await.as_bytes(),
        "_crunchypgbouncer",
        &secret(&h, "hippo-pgbouncer", "password").await,
        "pgbouncer",
    )
    .unwrap();
    let client = endpoint
        .connect_with(endpoint.console_config())
        .await
        .unwrap();
    let queries = receiver["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 3);
    for query in queries {
        let sql = query["sql"].as_str().unwrap();
        let rows: Vec<_> = (client.simple_query(sql).await)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .collect();
        assert!(!rows.is_empty(), "{sql}: no row");
        for metric in query["metrics"].as_array().unwrap() {
            let name = metric["metric_name"].as_str().unwrap();
            let attributes = metric["attribute_columns"].as_array().cloned();
            let columns = std::iter::once(metric["value_column"].as_str().unwrap())
                .chain(attributes.iter().flatten().map(|a| a.as_str().unwrap()));
            for column in columns {
                for row in &rows {
                    let at = (row.columns().iter()).position(|c| c.name() == column);
                    let at = at.unwrap_or_else(|| panic!("{name}: {sql} has no {column}"));
                    let value = row
                        .get(at)
                        .unwrap_or_else(|| panic!("{name}: {column} NULL"));
                    if column == metric["value_column"] {
                        value
                            .parse::<i64>()
                            .unwrap_or_else(|e| panic!("{name}: {value}: {e}"));
                    }
                }
            }
        }
    }
    let log = std::fs::read_to_string(bouncer.log()).unwrap();
    assert!(log.lines().count() > 0);
    for line in log.lines() {
        assert!(pgbouncer_record(line), "{line:?}");
    }
}

/// Whether `line` starts as the collector's transform expects a pgBouncer record:
/// `<date> <time>.<ms> <zone> [<pid>] <LEVEL> `.
fn pgbouncer_record(line: &str) -> bool {
    let mut parts = line.splitn(6, ' ');
    let mut next = || parts.next().unwrap_or_default();
    let digits = |s: &str, seps: &[char]| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || seps.contains(&c))
    };
    let (date, time, zone, pid, level) = (next(), next(), next(), next(), next());
    date.len() == 10
        && digits(date, &['-'])
        && time.len() == 12
        && digits(time, &[':', '.'])
        && (3..=4).contains(&zone.len())
        && zone.chars().all(|c| c.is_ascii_uppercase())
        && pid.starts_with('[')
        && pid.ends_with(']')
        && digits(&pid[1..pid.len() - 1], &[])
        && !level.is_empty()
        && level.chars().all(|c| c.is_ascii_uppercase())
}

/// PGO's cluster `zoo` as the console reads it.
async fn pgo_zoo(h: &Harness) -> pgdeck::api::PostgresCluster {
    let api: Api<pgdeck::platform::kube::pgo::PgoCluster> = Api::namespaced(h.client.clone(), NS);
    api.get("zoo").await.unwrap().to_cluster().unwrap()
}

/// psql run as the console runs it (its terminal aside): what it wrote with `-o`, and whether
/// it succeeded.
fn run_psql(prepared: &pgdeck::platform::psql::Prepared, sql: &str) -> (String, bool) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let args = [
        "-XAtq",
        "-o",
        out.path().to_str().unwrap(),
        "-c",
        sql,
        "-c",
        "\\qecho :HOST",
    ]
    .map(String::from);
    let status = tokio::task::block_in_place(|| prepared.session.run(&args)).unwrap();
    (read(out.path()), status.success())
}

/// `p` on PGO's cluster without `postgres` in spec.users: psql reaches the instance's
/// peer-only PostgreSQL as `postgres` through a private socket of pgdeck's whose every
/// connection is an exec into the pod's `database` container; the socket's directory is only
/// its user's, and gone with the session. Without the RBAC verb, psql is not started and the
/// verb is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_on_pgos_cluster_without_its_superuser_goes_through_pods_exec() {
    use std::os::unix::fs::PermissionsExt;
    let (h, _pg) = pgo_zoo_with_a_database(json!([{"name": "zoo"}])).await;
    let zoo = pgo_zoo(&h).await;
    let leader = "zoo-instance1-abcd";
    let mark = h.mark();
    let prepared = pgdeck::platform::kube::sql::psql_pgo(&h.client, &zoo, leader, "postgres")
        .await
        .unwrap();
    let dir = std::path::PathBuf::from(&prepared.session.host);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    let (out, ok) = run_psql(
        &prepared,
        "SELECT current_user, inet_server_addr() IS NULL, setting = '' \
         FROM pg_settings WHERE name = 'listen_addresses'",
    );
    assert!(ok, "{out}");
    assert_eq!(out, format!("postgres|t|t\n{}\n", dir.display()));
    // A second psql in the same session: another connection, another exec.
    let (out, ok) = run_psql(&prepared, "SELECT 2");
    assert!(ok && out.starts_with("2\n"), "{out}");
    let execs = h.calls()[mark..]
        .iter()
        .filter(|c| c.path == format!("/api/v1/namespaces/{NS}/pods/{}/exec", names::pod(leader)))
        .count();
    assert!(execs >= 2, "one exec per connection: {execs}");
    assert!(
        !h.calls()[mark..]
            .iter()
            .any(|c| c.path.ends_with("/portforward"))
    );

    // Another account (here the `postgres` one) cannot use the socket.
    let other = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(&prepared.session.program)
        .args(["-XAtc", "SELECT 1", "-U", "postgres", "-p", "5432", "-h"])
        .arg(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && said.contains("Permission denied"),
        "{said}"
    );

    // A connection whose exec is refused is told why, as PostgreSQL would tell it.
    let exec = (
        "".to_string(),
        "pods/exec".to_string(),
        "create".to_string(),
    );
    h.patroni.lock().unwrap().denied.insert(exec.clone());
    let refused = tokio_postgres::Config::new()
        .host_path(&dir)
        .port(5432)
        .user("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("no exec, no connection");
    let db = refused.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.severity(), "FATAL");
    assert!(db.message().contains("`create` on `pods/exec`"), "{db:?}");
    h.patroni.lock().unwrap().denied.remove(&exec);

    drop(prepared);
    assert!(!dir.exists(), "{} outlives psql", dir.display());

    h.patroni.lock().unwrap().denied.insert(exec);
    let refused = pgdeck::platform::kube::sql::psql_pgo(&h.client, &zoo, leader, "postgres")
        .await
        .err()
        .expect("no exec, no psql");
    assert!(
        refused.contains("needs RBAC verb `create` on `pods/exec` in namespace db"),
        "{refused}"
    );
}

/// `p` on PGO's cluster as users its spec lists: through a port-forward with PGO's
/// `<c>-pguser-<user>` Secret, over TLS checked against the name PGO's certificate carries
/// (its primary Service's), in the user's first database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_on_pgos_cluster_as_a_listed_user_checks_pgos_certificate() {
    let users = json!([{"name": "zoo", "databases": ["zoo"]}, {"name": "postgres"}]);
    let (h, _pg) = pgo_zoo_with_a_database(users).await;
    let leader = "zoo-instance1-abcd";
    let admin = connect_as(
        &h,
        leader,
        "zoo-primary.db.svc",
        "zoo-cluster-cert",
        "zoo-pguser-postgres",
    )
    .await;
    admin
        .batch_execute("CREATE ROLE zoo LOGIN PASSWORD 'zoo-pgo-pass'")
        .await
        .unwrap();
    admin
        .batch_execute("CREATE DATABASE zoo OWNER zoo")
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    let pguser = json!({
        "metadata": {"name": "zoo-pguser-zoo", "namespace": NS},
        "data": {"user": STANDARD.encode("zoo"), "password": STANDARD.encode("zoo-pgo-pass"),
                 "dbname": STANDARD.encode("zoo")},
    });
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(pguser).unwrap(),
        )
        .await
        .unwrap();
    let zoo = pgo_zoo(&h).await;
    let ssl = "SELECT current_user, current_database(), ssl FROM pg_stat_ssl \
               WHERE pid = pg_backend_pid()";
    for (user, database) in [("zoo", "zoo"), ("postgres", "postgres")] {
        let prepared = pgdeck::platform::kube::sql::psql_pgo(&h.client, &zoo, leader, user)
            .await
            .unwrap();
        let (out, ok) = run_psql(&prepared, ssl);
        assert!(ok, "{out}");
        assert_eq!(out, format!("{user}|{database}|t\nzoo-primary.{NS}.svc\n"));
    }
    assert!(
        !h.calls().iter().any(|c| c.path.ends_with("/exec")),
        "listed users need no exec"
    );
}

/// `p` in the console on PGO's cluster without `postgres` in spec.users, as a person would:
/// both its users offered, `postgres` picked, psql's prompt over the local socket relaying to
/// `pods/exec`; psql's private directory (no CA, no passfile) is gone once psql is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_in_the_console_on_pgos_cluster_opens_psql_as_postgres_through_pods_exec() {
    let (h, _pg) = pgo_zoo_with_a_database(json!([{"name": "zoo"}])).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, Harness::kubeconfig(h.listen().await, NS)).unwrap();
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
        tmux.wait(Duration::from_secs(15), "PGO's cluster", |s| {
            s.contains("kube fake") && s.contains("zoo") && s.contains("PGO")
        });
        tmux.keys(&["Enter"]);
        tmux.wait(Duration::from_secs(10), "the instances", |s| {
            s.contains("│zoo-instance1-abcd")
        });
        tmux.keys(&["p"]);
        tmux.wait(Duration::from_secs(5), "the user dialog", |s| {
            s.contains("psql on zoo-instance1-abcd")
                && s.contains("zoo")
                && s.contains("postgres  superuser")
        });
        tmux.keys(&["j", "Enter"]);
        tmux.wait(Duration::from_secs(15), "psql's prompt", |s| {
            s.contains("postgres=#")
        });
        let inside: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(inside.len(), 1, "only the socket's directory: {inside:?}");
        let sockets: Vec<_> = std::fs::read_dir(&inside[0])
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(sockets, [".s.PGSQL.5432"]);
        query_and_quit(
            &tmux,
            "SELECT current_user || '-by-socket-' || (inet_server_addr() IS NULL)",
            "postgres-by-socket-true",
            "zoo-instance1-abcd",
        );
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "psql's socket directory is removed"
        );
        tmux.keys(&["q"]);
        tmux.assert_terminal_restored();
    });
}

/// At psql's prompt in the console: `query` prints the line `expected`, then `\q` returns to
/// the console on `instance`, which says psql ended.
fn query_and_quit(tmux: &Tmux, query: &str, expected: &str, instance: &str) {
    tmux.text(query);
    tmux.keys(&["\\;", "Enter"]);
    tmux.wait(Duration::from_secs(5), "the query's output", |s| {
        s.lines().any(|l| l.trim() == expected)
    });
    tmux.text("\\q");
    tmux.keys(&["Enter"]);
    let s = tmux.wait(Duration::from_secs(10), "the console again", |s| {
        s.contains(&format!("│{instance}")) && s.contains(&format!("psql on {instance}"))
    });
    assert!(s.contains("ended"), "{s}");
}
