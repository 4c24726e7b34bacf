//! The console on Kubernetes against the in-memory API server (tests/common/kube.rs): its
//! source (the list follows a watch, the open cluster's members come through the pod proxy,
//! users' URIs from their Secrets, requests change the manifest over the version they were
//! made from, recorded as Events naming who asked), and the real binary in tmux reaching the
//! API server over HTTP through a kubeconfig.

use crate::common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::kube::Harness;
use common::tmux::{Tmux, row};
use common::{next, read, repo_root};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use pgdeck::actions::verbs::Verb;
use pgdeck::api::manifest;
use pgdeck::console::activity::Target;
use pgdeck::console::app::{Data, Key, Reconciler};
use pgdeck::console::requests::{Outcome, Request, Waiting};
use pgdeck::console::source::KubeSource;
use pgdeck::observe::conditions;
use pgdeck::observe::logs::{self, Chunk};
use pgdeck::platform::kube::names;
use pgdeck::platform::kube::pgo::PgoCluster;
use pgdeck::platform::kube::pgo_actions::Progress;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

const NS: &str = "db";

async fn outcome(rx: &mut UnboundedReceiver<Data>) -> Outcome {
    next(rx, |d| match d {
        Data::Outcome { outcome, .. } => Some(outcome),
        _ => None,
    })
    .await
}

/// The in-memory API server holding `hippo` (assets/examples/ha.yaml), settled.
async fn with_hippo() -> Harness {
    hippo_with("").await
}

/// The same with `spec_extra` (YAML at the level of `spec`'s fields) added to its spec.
async fn hippo_with(spec_extra: &str) -> Harness {
    let h = Harness::new().await;
    let text = read(&repo_root().join("assets/examples/ha.yaml")) + spec_extra;
    let mut hippo = manifest::parse(&text).unwrap();
    hippo.metadata.namespace = Some(NS.into());
    h.create(&manifest::to_yaml(&hippo)).await;
    h.settle(NS, "hippo").await;
    // The in-memory API server runs no Job: the users Job succeeds as a real one would.
    let users = h.names::<k8s_openapi::api::batch::v1::Job>(NS).await;
    for job in users.iter().filter(|j| j.starts_with("hippo-users-")) {
        h.finish_job(NS, job, true).await;
    }
    h.settle(NS, "hippo").await;
    h
}

#[tokio::test]
async fn the_console_follows_and_changes_clusters_through_the_api() {
    let h = with_hippo().await;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));
    let listed = next(&mut rx, |d| match d {
        Data::Clusters(c) if !c.is_empty() => Some(c),
        _ => None,
    })
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status.as_ref().unwrap().instances.len(), 2);
    // Version, start and tags as Patroni gives them, in status as on the local platform.
    for i in &listed[0].status.as_ref().unwrap().instances {
        assert_eq!(i.postgres_version.as_deref(), Some("15.10"), "{i:?}");
        assert_eq!(
            i.started_at.as_ref().map(|t| t.0.to_string()).as_deref(),
            Some("2026-12-01T10:00:00Z")
        );
        assert_eq!(i.tags, ["clonefrom"]);
    }

    // The open cluster: Patroni's roles through the pod proxy, the user's URIs.
    let key = Key::pgdeck(NS, "hippo");
    source.open(key.clone());
    let live = next(&mut rx, |d| match d {
        Data::Live { result: Ok(i), .. } => Some(i),
        _ => None,
    })
    .await;
    let mut roles: Vec<_> = live.iter().filter_map(|i| i.role.clone()).collect();
    roles.sort();
    assert_eq!(roles, ["primary", "replica"], "{live:?}");
    // WAL positions from each member's Patroni; connections and commits need SQL, which the
    // console has not on Kubernetes.
    let vitals = next(&mut rx, |d| match d {
        Data::Vitals { vitals, .. } if vitals.len() == 2 => Some(vitals),
        _ => None,
    })
    .await;
    let primary = live
        .iter()
        .find(|i| i.role.as_deref() == Some("primary"))
        .unwrap();
    let replica = live
        .iter()
        .find(|i| i.role.as_deref() == Some("replica"))
        .unwrap();
    assert_eq!(vitals[&primary.name].wal_lsn, Some(5000));
    let r = &vitals[&replica.name];
    assert_eq!((r.received_lsn, r.replayed_lsn), (Some(5000), Some(4990)));
    assert!(
        vitals
            .values()
            .all(|v| v.connections.is_none() && v.commits.is_none())
    );
    let users = next(&mut rx, |d| match d {
        Data::Credentials { users, .. } => Some(users),
        _ => None,
    })
    .await;
    let primary = &users[0]
        .uris
        .iter()
        .find(|(l, _)| l == "primary")
        .unwrap()
        .1;
    assert!(primary.contains("hippo-primary.db.svc"), "{primary}");
    assert!(users[0].password.is_some());

    // A scale request writes the manifest and says what to wait for.
    source.request(
        key.clone(),
        Request::Scale {
            set: "instance1".into(),
            replicas: 3,
        },
    );
    let written = outcome(&mut rx).await;
    let stored = h.cluster(NS, "hippo").await;
    assert_eq!(stored.spec.instances[0].replicas, Some(3));
    assert_eq!(
        written,
        Outcome::Accepted(Waiting::Generation(stored.metadata.generation.unwrap()))
    );
    // The list follows the change through the watch.
    next(&mut rx, |d| match d {
        Data::Clusters(c) if c[0].spec.instances[0].replicas == Some(3) => Some(()),
        _ => None,
    })
    .await;
    // ... and is recorded as an Event saying who asked.
    let events = next(&mut rx, |d| match d {
        Data::Events { events, .. } if events.iter().any(|e| e.reason == "ScaleRequested") => {
            Some(events)
        }
        _ => None,
    })
    .await;
    let asked = events
        .iter()
        .find(|e| e.reason == "ScaleRequested")
        .unwrap();
    assert!(asked.source.ends_with("(console)"), "{asked:?}");
    assert_eq!(asked.message, "scale instance1 to 3");

    // An edit made from an older version is stopped, and nothing is written.
    let mut edited = stored.clone();
    edited.spec.instances[0].replicas = Some(1);
    let before = h.cluster(NS, "hippo").await;
    h.edit(NS, "hippo", |c| c.spec.port = Some(5433)).await;
    source.request(
        key.clone(),
        Request::Replace {
            manifest: Box::new(edited),
            resource_version: before.metadata.resource_version.clone().unwrap(),
        },
    );
    match outcome(&mut rx).await {
        Outcome::Conflict { current } => assert_eq!(current.spec.port, Some(5433)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        h.cluster(NS, "hippo").await.spec.instances[0].replicas,
        Some(3)
    );

    // A request that does not apply is refused with the reason, and changes nothing.
    source.request(
        key.clone(),
        Request::Scale {
            set: "nope".into(),
            replicas: 2,
        },
    );
    match outcome(&mut rx).await {
        Outcome::Refused(why) => assert!(why.contains("nope"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        h.cluster(NS, "hippo").await.spec.instances[0].replicas,
        Some(3)
    );

    // An edit setting a field Kubernetes does not support is refused naming it.
    let current = h.cluster(NS, "hippo").await;
    let mut edited = current.clone();
    edited.spec.openshift = Some(true);
    source.request(
        key.clone(),
        Request::Replace {
            manifest: Box::new(edited),
            resource_version: current.metadata.resource_version.clone().unwrap(),
        },
    );
    match outcome(&mut rx).await {
        Outcome::Refused(why) => assert!(
            why.contains("spec.openshift: not supported on Kubernetes"),
            "{why}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(h.cluster(NS, "hippo").await.spec.openshift, None);
}

// The test's own thread blocks on tmux; the API server answers from the other workers.
/// With pgBouncer, the Connection tab gets each user's pgBouncer URI from their Secret, and
/// says its pools are not read on Kubernetes rather than waiting for them.
/// The next lines of `instance`'s log the source sends; its error fails the test.
async fn log_chunk(rx: &mut UnboundedReceiver<Data>, instance: &str) -> Chunk {
    next(rx, |d| match d {
        Data::Logs {
            result,
            instance: i,
            ..
        } if i == instance => Some(result.expect("the log is read")),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn the_logs_tab_follows_the_database_containers_log_of_the_instances_pod() {
    let h = with_hippo().await;
    let instance = h.cluster(NS, "hippo").await.status.unwrap().instances[0]
        .name
        .clone();
    let pod = names::pod(&instance);
    let pg = "2026-12-01 21:03:02.363 UTC [14376] LOG:  database system is ready";
    h.patroni.lock().unwrap().pod_logs.insert(
        pod.clone(),
        format!("2026-12-01 21:03:01,100 INFO: older\n{pg}\n"),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));
    let key = Key::pgdeck(NS, "hippo");
    source.logs(Some(Target {
        key: key.clone(),
        instance: instance.clone(),
        port: None,
    }));
    let first = log_chunk(&mut rx, &instance).await;
    assert!(first.reset);
    let origins: Vec<_> = first.lines.iter().map(|l| l.origin).collect();
    assert_eq!(
        origins,
        [Some(logs::Origin::Patroni), Some(logs::Origin::Postgres)]
    );
    assert_eq!(first.lines[1].text, pg);

    // Followed: what the container prints next comes as it is printed.
    h.patroni
        .lock()
        .unwrap()
        .pod_logs
        .get_mut(&pod)
        .unwrap()
        .push_str("2026-12-01 21:03:05.000 UTC [1] LOG:  pgdeck-logs-marker\n");
    let next_chunk = log_chunk(&mut rx, &instance).await;
    assert!(!next_chunk.reset);
    assert_eq!(next_chunk.lines.len(), 1);
    assert!(next_chunk.lines[0].text.ends_with("pgdeck-logs-marker"));

    let asked = h.calls();
    let asked = asked
        .iter()
        .find(|c| c.path == format!("/api/v1/namespaces/{NS}/pods/{pod}/log"))
        .expect("the pod's log was asked for");
    for param in ["container=database", "follow=true", "tailLines=2000"] {
        assert!(
            asked.query.split('&').any(|p| p == param),
            "{}",
            asked.query
        );
    }
    source.logs(None);
}

#[tokio::test]
async fn the_console_shows_pgbouncers_uri_and_that_no_pgbouncer_pod_is_ready() {
    let h = Harness::new().await;
    let mut hippo = manifest::parse(&read(&repo_root().join("assets/examples/ha.yaml"))).unwrap();
    hippo.metadata.namespace = Some(NS.into());
    hippo.spec.proxy = Some(Default::default());
    h.create(&manifest::to_yaml(&hippo)).await;
    h.settle(NS, "hippo").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));
    source.open(Key::pgdeck(NS, "hippo"));
    let users = next(&mut rx, |d| match d {
        Data::Credentials { users, .. } => Some(users),
        _ => None,
    })
    .await;
    let pooled = &users[0]
        .uris
        .iter()
        .find(|(l, _)| l == "pgbouncer")
        .expect("a pgbouncer URI")
        .1;
    assert!(pooled.contains("@hippo-pgbouncer.db.svc:5432/"), "{pooled}");
    let pools = next(&mut rx, |d| match d {
        Data::Pools { result, .. } => Some(result),
        _ => None,
    })
    .await;
    // The in-memory API server runs no pgBouncer pod: said, not guessed.
    assert_eq!(pools, Err("no pgBouncer pod is ready".to_string()));
}

/// The real console in a terminal, its kubeconfig's context (namespace `db`) this API server
/// served over HTTP; the directory holding its files goes with the returned guard.
async fn console_in_tmux(h: &Harness) -> (Tmux, tempfile::TempDir) {
    let address = h.listen().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, Harness::kubeconfig(address, NS)).unwrap();
    let console = format!(
        "KUBECONFIG={} PGDECK_CONFIG_DIR={}/config {}",
        kubeconfig.display(),
        dir.path().display(),
        env!("CARGO_BIN_EXE_pgdeck")
    );
    let tmux = Tmux::start(120, 32);
    tmux.keys(&[&console, "Enter"]);
    (tmux, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_in_a_terminal_on_kubernetes() {
    let h = with_hippo().await;
    // With a kubeconfig context and no --platform, the console opens on Kubernetes.
    let (tmux, _dir) = console_in_tmux(&h).await;
    tokio::task::block_in_place(|| {
        tmux.wait(Duration::from_secs(15), "the cluster list", |s| {
            s.contains("kube fake") && s.contains("ns: db") && row(s, "hippo").contains("2/2")
        });
        tmux.keys(&["Enter"]);
        tmux.wait(Duration::from_secs(10), "the instances", |s| {
            let rows: Vec<&str> = s
                .lines()
                .filter(|l| l.starts_with("│hippo-instance1-"))
                .collect();
            rows.len() == 2
                && rows.iter().any(|r| r.contains(" primary "))
                && rows.iter().any(|r| r.contains(" replica "))
        });
        // + and enter scale 2 → 3 through the API.
        tmux.keys(&["+"]);
        tmux.wait(Duration::from_secs(5), "the scale dialog", |s| {
            s.contains("instance1: 2 → 3")
        });
        tmux.keys(&["Enter"]);
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.cluster(NS, "hippo").await.spec.instances[0].replicas != Some(3) {
        assert!(
            std::time::Instant::now() < deadline,
            "the scale was not written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The operator carries it out; the console sees it done.
    h.settle(NS, "hippo").await;
    tokio::task::block_in_place(|| {
        tmux.wait(Duration::from_secs(15), "the scale to be done", |s| {
            s.contains("scale instance1 to 3 done")
                && s.lines()
                    .filter(|l| l.starts_with("│hippo-instance1-"))
                    .count()
                    == 3
        });
        tmux.keys(&["q"]);
        tmux.assert_terminal_restored();
    });
}

/// The real console on a PGO cluster named as pgdeck's hippo: both listed, PGO's marked; its
/// switchover dialog says it enables PGO's switchover, enter writes PGO's spec and trigger, and
/// the footer reports it done once PGO's status records the trigger.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_switches_pgos_cluster_over_in_a_terminal() {
    let h = with_hippo().await;
    h.pgo_cluster(NS, "hippo", json!({})).await;
    let (tmux, _dir) = console_in_tmux(&h).await;
    tokio::task::block_in_place(|| {
        tmux.wait(Duration::from_secs(15), "both hippos", |s| {
            row(s, "hippo PGO").contains("2/2") && s.contains("│hippo      ")
        });
        // pgdeck's hippo sorts first; PGO's is the next row.
        tmux.keys(&["j", "Enter"]);
        tmux.wait(Duration::from_secs(10), "PGO's instances", |s| {
            s.contains("│hippo-instance1-abcd") && s.contains("│hippo-instance1-efgh")
        });
        tmux.keys(&["s"]);
        tmux.wait(Duration::from_secs(5), "the switchover dialog", |s| {
            s.contains("will be set to true") && s.contains("hippo-instance1-efgh")
        });
        tmux.keys(&["Enter"]);
    });
    let pgo: Api<PgoCluster> = Api::namespaced(h.store.clone(), NS);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let trigger = loop {
        let stored = pgo.get("hippo").await.unwrap();
        let annotations = stored.metadata.annotations.unwrap_or_default();
        if let Some(t) = annotations.get("postgres-operator.crunchydata.com/trigger-switchover") {
            assert_eq!(
                stored.spec["patroni"]["switchover"]["targetInstance"],
                "hippo-instance1-efgh"
            );
            break t.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the switchover was not written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ours = h.cluster(NS, "hippo").await.metadata.annotations;
    assert!(
        !ours
            .unwrap_or_default()
            .keys()
            .any(|k| k.contains("trigger-switchover")),
        "pgdeck's hippo got no trigger"
    );
    // PGO carries it out and records it.
    let done = json!({"status": {"patroni": {"switchover": trigger, "switchoverTimeline": 2}}});
    pgo.patch_status(
        "hippo",
        &Default::default(),
        &kube::api::Patch::Merge(&done),
    )
    .await
    .unwrap();
    tokio::task::block_in_place(|| {
        tmux.wait(
            Duration::from_secs(15),
            "PGO's switchover to be done",
            |s| s.contains("PGO switched over: timeline 2"),
        );
        tmux.keys(&["q"]);
        tmux.assert_terminal_restored();
    });
}

// Instance actions (issue 13) through the CLI: it changes the manifest, the reconciler carries
// the change out once through Patroni's unsafe endpoints and reports it in status.

struct Cli {
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Cli {
    async fn new(h: &Harness) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, Harness::kubeconfig(h.listen().await, NS)).unwrap();
        Cli {
            kubeconfig,
            _dir: dir,
        }
    }

    /// `pgdeck --platform kube ARGS`: its exit success, standard output and error.
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgdeck"))
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["--platform", "kube"])
            .args(args)
            .output()
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "pgdeck {args:?}: {err}");
        out
    }
}

fn actions(h: &Harness) -> Vec<String> {
    h.patroni.lock().unwrap().actions.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instance_verbs_through_the_cli_are_carried_out_once() {
    let h = with_hippo().await;
    let cli = Cli::new(&h).await;
    let status = h.cluster(NS, "hippo").await.status.unwrap();
    let primary = status.primary.clone().unwrap();
    let replica = status
        .instances
        .iter()
        .find(|i| i.name != primary)
        .unwrap()
        .name
        .clone();

    // Restart one replica: only it, once, and status says so.
    let out = cli.ok(&["restart", "hippo", &replica]).await;
    assert!(
        out.contains(&format!("restart {replica} requested")),
        "{out}"
    );
    h.reconcile(NS, "hippo").await.unwrap();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(actions(&h), [format!("restart {}", names::pod(&replica))]);
    let a = h.cluster(NS, "hippo").await.status.unwrap().actions["restart"].clone();
    assert!(a.finished && a.succeeded, "{a:?}");
    assert_eq!(a.target.as_deref(), Some(replica.as_str()));

    // A pass that fails after the restart (a Service to restore, which the API refuses)
    // neither repeats it nor loses its outcome.
    cli.ok(&["restart", "hippo", &replica]).await;
    h.fail_a_later_write(NS).await;
    for _ in 0..3 {
        assert!(h.reconcile(NS, "hippo").await.is_err());
    }
    h.patroni.lock().unwrap().failing.clear();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(actions(&h).len(), 2, "restarted once more, not four times");
    let a = h.cluster(NS, "hippo").await.status.unwrap().actions["restart"].clone();
    assert!(a.finished && a.succeeded, "{a:?}");

    // Reload every member.
    cli.ok(&["reload", "hippo"]).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let reloads: Vec<String> = actions(&h)
        .into_iter()
        .filter(|a| a.starts_with("reload "))
        .collect();
    assert_eq!(reloads.len(), 2, "{reloads:?}");

    // Reinit: the leader and a stranger are refused before anything is written.
    let mark = h.mark();
    let (ok, _, err) = cli.run(&["reinit", "hippo", &primary]).await;
    assert!(
        !ok && err.contains(&format!("{primary} is the leader")),
        "{err}"
    );
    let (ok, _, err) = cli.run(&["reinit", "hippo", "hippo-nobody"]).await;
    assert!(
        !ok && err.contains("hippo-nobody is not an instance"),
        "{err}"
    );
    assert!(h.writes_since(mark).is_empty(), "refusals write nothing");
    // Patroni only starts a rebuild: the action is done once the instance runs again.
    cli.ok(&["reinit", "hippo", &replica]).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let a = last_action(&h, "reinit").await;
    assert!(!a.finished && a.since.is_some(), "{a:?}");
    h.reconcile(NS, "hippo").await.unwrap();
    let a = last_action(&h, "reinit").await;
    assert!(!a.finished, "still creating the replica: {a:?}");
    h.patroni.lock().unwrap().rebuilding.clear();
    h.reconcile(NS, "hippo").await.unwrap();
    let a = last_action(&h, "reinit").await;
    assert!(a.finished && a.succeeded, "{a:?}");
    assert!(
        a.message
            .unwrap()
            .starts_with(&format!("rebuilt {replica}"))
    );
    let reinits: Vec<String> = actions(&h)
        .into_iter()
        .filter(|a| a.starts_with("reinit "))
        .collect();
    assert_eq!(reinits, [format!("reinit {}", names::pod(&replica))]);

    // A trigger set behind the CLI's back naming the leader is refused by the reconciler.
    h.edit(NS, "hippo", |c| {
        let a = c.metadata.annotations.get_or_insert_with(Default::default);
        a.insert("pgdeck.dev/reinit".into(), primary.clone());
        a.insert("pgdeck.dev/trigger-reinit".into(), "by-hand".into());
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let a = h.cluster(NS, "hippo").await.status.unwrap().actions["reinit"].clone();
    assert!(a.finished && !a.succeeded, "{a:?}");
    assert!(a.message.unwrap().contains("is the leader"));
    assert_eq!(
        actions(&h)
            .iter()
            .filter(|a| a.starts_with("reinit "))
            .count(),
        1
    );

    // Pause: Patroni's dynamic configuration, then the PatroniPaused condition; resume clears it.
    cli.ok(&["pause", "hippo"]).await;
    h.reconcile(NS, "hippo").await.unwrap();
    h.reconcile(NS, "hippo").await.unwrap();
    let paused = |s: &pgdeck::api::PostgresClusterStatus| {
        conditions::is_true(&s.conditions, conditions::PATRONI_PAUSED)
    };
    assert!(paused(&h.cluster(NS, "hippo").await.status.unwrap()));
    cli.ok(&["resume", "hippo"]).await;
    h.reconcile(NS, "hippo").await.unwrap();
    h.reconcile(NS, "hippo").await.unwrap();
    assert!(!paused(&h.cluster(NS, "hippo").await.status.unwrap()));

    // Every instance, rolling: the replica, a switchover, then the old primary; once each.
    h.patroni.lock().unwrap().actions.clear();
    cli.ok(&["restart", "hippo", "--all"]).await;
    for _ in 0..8 {
        h.kubelet(NS).await;
        h.reconcile(NS, "hippo").await.unwrap();
    }
    assert_eq!(
        actions(&h),
        [
            format!("restart {}", names::pod(&replica)),
            format!("switchover to {}", names::pod(&replica)),
            format!("restart {}", names::pod(&primary)),
        ]
    );
    let a = h.cluster(NS, "hippo").await.status.unwrap().actions["restart"].clone();
    assert!(a.finished && a.succeeded && a.remaining.is_empty(), "{a:?}");

    // Stop: spec.shutdown.
    cli.ok(&["stop", "hippo"]).await;
    assert_eq!(h.cluster(NS, "hippo").await.spec.shutdown, Some(true));
    cli.ok(&["start", "hippo"]).await;
    assert_eq!(h.cluster(NS, "hippo").await.spec.shutdown, None);
}

#[tokio::test]
async fn history_and_settings_come_through_the_pod_proxy() {
    let h = hippo_with(
        "  patroni:\n    dynamicConfiguration:\n      postgresql:\n        parameters:\n          work_mem: 12MB\n",
    )
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));
    let key = Key::pgdeck(NS, "hippo");

    // History: none yet, then the switchover the operator carries out.
    source.history(Some(key.clone()));
    let first = next(&mut rx, |d| match d {
        Data::History { result, .. } => Some(result),
        _ => None,
    })
    .await;
    assert_eq!(first, Ok(Vec::new()));
    let status = h.cluster(NS, "hippo").await.status.unwrap();
    let replica = status
        .instances
        .iter()
        .find(|i| Some(&i.name) != status.primary.as_ref())
        .unwrap()
        .name
        .clone();
    source.request(
        key.clone(),
        Request::Switchover {
            target: Some(replica.clone()),
            failover: false,
        },
    );
    outcome(&mut rx).await;
    for _ in 0..3 {
        h.reconcile(NS, "hippo").await.unwrap();
    }
    let switches = next(&mut rx, |d| match d {
        Data::History { result: Ok(s), .. } if !s.is_empty() => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(switches.len(), 1);
    assert_eq!(switches[0].timeline, 1);
    assert_eq!(switches[0].lsn.as_deref(), Some("0/30000A0"));
    assert_eq!(switches[0].leader, Some(names::pod(&replica)));
    assert!(switches[0].time.is_some());

    // Settings need SQL through a port-forward to the pod (tests/kube_sql.rs): where nothing
    // answers on the pod's port, the tab says so rather than showing what is merely asked.
    source.settings(Some(Target {
        key: key.clone(),
        instance: replica.clone(),
        port: None,
    }));
    let refused = next(&mut rx, |d| match d {
        Data::Settings {
            instance,
            result: Err(e),
            ..
        } if instance == replica => Some(e),
        _ => None,
    })
    .await;
    assert_eq!(
        refused,
        "error communicating with the server: the port-forward says: \
         error forwarding port 5432 to pod: connection refused"
    );

    // Leaving the tab stops the reads.
    source.settings(None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    while rx.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut late = Vec::new();
    while let Ok(d) = rx.try_recv() {
        late.push(d);
    }
    assert!(
        !late
            .iter()
            .any(|d| matches!(d, Data::Settings { .. } | Data::History { .. })),
        "nothing reads once the tab is closed"
    );
}

/// The last `verb` in hippo's `status.actions`.
async fn last_action(h: &Harness, verb: &str) -> pgdeck::api::status::ActionStatus {
    h.cluster(NS, "hippo").await.status.unwrap().actions[verb].clone()
}

/// Crunchy PGO's cluster `zoo` as PGO leaves it: see [`Harness::pgo_cluster`], and the user's
/// `zoo-pguser-zoo` Secret.
async fn pgo_zoo(h: &Harness) {
    h.pgo_cluster(NS, "zoo", json!({})).await;
    let secrets: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    let secret = json!({
        "metadata": {"name": "zoo-pguser-zoo", "namespace": NS},
        "data": {
            "password": STANDARD.encode("pgo-made-it"),
            "dbname": STANDARD.encode("zoo"),
            "uri": STANDARD.encode("postgresql://zoo:pgo-made-it@zoo-primary.db.svc:5432/zoo"),
        },
    });
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn pgos_own_clusters_are_listed_and_read_by_pgos_labels() {
    let h = with_hippo().await;
    pgo_zoo(&h).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));

    // PGO's clusters come apart from pgdeck's, with PGO's status read.
    let (mut own, mut pgo) = (None, None);
    while own.is_none() || pgo.is_none() {
        match next(&mut rx, |d| match d {
            Data::Clusters(c) | Data::PgoClusters(c) if c.is_empty() => None,
            d @ (Data::Clusters(_) | Data::PgoClusters(_)) => Some(d),
            _ => None,
        })
        .await
        {
            Data::Clusters(c) => own = Some(c),
            Data::PgoClusters(c) => pgo = Some(c),
            _ => unreachable!("picked above"),
        }
    }
    let own: Vec<String> = own.unwrap().iter().map(|c| c.name().to_string()).collect();
    assert_eq!(own, ["hippo"]);
    let pgo = pgo.unwrap();
    assert_eq!(pgo.len(), 1);
    assert_eq!(pgo[0].name(), "zoo");
    let status = pgo[0].status.as_ref().unwrap();
    assert_eq!(status.ready.as_deref(), Some("2/2"));
    assert_eq!(status.observed_generation, Some(1));

    // The open PGO cluster: its members' roles from Patroni through the pod proxy, found by
    // PGO's labels; its user's URIs from PGO's Secret.
    let key = Key(NS.into(), "zoo".into(), Reconciler::Pgo);
    source.open(key.clone());
    let live = next(&mut rx, |d| match d {
        Data::Live {
            key: k,
            result: Ok(i),
            ..
        } if k.1 == "zoo" => Some(i),
        _ => None,
    })
    .await;
    let mut seen: Vec<_> = live
        .iter()
        .map(|i| (i.name.as_str(), i.role.as_deref(), i.set.as_str()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("zoo-instance1-abcd", Some("primary"), "instance1"),
            ("zoo-instance1-efgh", Some("replica"), "instance1")
        ]
    );
    let users = next(&mut rx, |d| match d {
        Data::Credentials { key: k, users } if k.1 == "zoo" => Some(users),
        _ => None,
    })
    .await;
    assert_eq!(users[0].user, "zoo");
    assert_eq!(users[0].password.as_deref(), Some("pgo-made-it"));
    let uri = &users[0]
        .uris
        .iter()
        .find(|(l, _)| l == "primary")
        .unwrap()
        .1;
    assert!(uri.contains("zoo-primary.db.svc"), "{uri}");

    // History: Patroni's `/history` through the pod proxy, from PGO's leader by its labels.
    h.patroni.lock().unwrap().history.insert(
        format!("{NS}/zoo"),
        vec![json!([
            1,
            50331808,
            "no recovery target specified",
            "2026-12-01T10:00:00+00:00",
            "zoo-instance1-abcd"
        ])],
    );
    source.history(Some(key.clone()));
    let switches = next(&mut rx, |d| match d {
        Data::History { key: k, result, .. } if k == key => Some(result),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(switches.len(), 1);
    assert_eq!(switches[0].timeline, 1);
    assert_eq!(switches[0].leader.as_deref(), Some("zoo-instance1-abcd"));

    // Settings, zoo's spec not listing PGO's superuser, go through an exec into the pod; one
    // that runs nothing is named, rather than the cluster said gone (tests/kube_sql.rs execs
    // into a real PostgreSQL's). Patroni's dynamic configuration is PGO's.
    let config = json!({"postgresql": {"parameters": {"wal_level": "logical"}}});
    (h.patroni.lock().unwrap().config)
        .insert(format!("{NS}/zoo"), config.as_object().unwrap().clone());
    source.settings(Some(Target {
        key: key.clone(),
        instance: "zoo-instance1-efgh".into(),
        port: None,
    }));
    let settings = next(&mut rx, |d| match d {
        Data::Settings { key: k, result, .. } if k == key => Some(result),
        _ => None,
    })
    .await;
    let why = settings.unwrap_err();
    assert!(
        why.starts_with("cannot exec into pod db/zoo-instance1-efgh-0: "),
        "{why}"
    );
}

/// The writes since `mark` but Events, each as (method, path, content type, body as JSON).
fn writes(h: &Harness, mark: usize) -> Vec<(String, String, String, serde_json::Value)> {
    h.writes_since(mark)
        .into_iter()
        .filter(|c| !c.path.starts_with("/apis/events.k8s.io/"))
        .inspect(|c| assert!(c.query.contains("fieldManager=pgdeck-console"), "{c:?}"))
        .map(|c| {
            let body = serde_json::from_str(&c.body).unwrap_or(serde_json::Value::Null);
            (c.method, c.path, c.content_type, body)
        })
        .collect()
}

/// PGO's actions, PGO's way, on a PGO cluster named as pgdeck's `hippo` in the same namespace:
/// each sends exactly its patch or annotation to PGO's object, nothing to pgdeck's hippo, and
/// what PGO has no convention for (or lacks the spec for) is refused with nothing written.
#[tokio::test]
async fn actions_on_pgos_cluster_go_to_pgos_group_only() {
    let h = with_hippo().await;
    h.pgo_cluster(NS, "hippo", json!({})).await;
    let ours = h.cluster(NS, "hippo").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let source = KubeSource::start(h.client.clone(), Some(NS), tx, Duration::from_millis(200));
    let theirs = Key(NS.into(), "hippo".into(), Reconciler::Pgo);
    let object = format!(
        "/apis/postgres-operator.crunchydata.com/v1beta1/namespaces/{NS}/postgresclusters/hippo"
    );
    let pgo: Api<PgoCluster> = Api::namespaced(h.store.clone(), NS);
    let start = h.mark();
    const MERGE: &str = "application/merge-patch+json";

    // Switchover: PGO's spec, then its trigger annotation; done when PGO's status says so.
    let mark = h.mark();
    source.request(
        theirs.clone(),
        Request::Switchover {
            target: Some("hippo-instance1-efgh".into()),
            failover: false,
        },
    );
    let Outcome::Accepted(Waiting::Pgo(Progress::Switchover(trigger))) = outcome(&mut rx).await
    else {
        panic!("a switchover waits for PGO's status.patroni.switchover");
    };
    assert_eq!(
        writes(&h, mark),
        [
            (
                "PATCH".into(),
                object.clone(),
                MERGE.into(),
                json!({"spec": {"patroni": {"switchover": {
                 "enabled": true, "targetInstance": "hippo-instance1-efgh", "type": null}}}})
            ),
            (
                "PATCH".into(),
                object.clone(),
                MERGE.into(),
                json!({"metadata": {"annotations": {
                 "postgres-operator.crunchydata.com/trigger-switchover": trigger}}})
            ),
        ]
    );
    let stored = pgo.get("hippo").await.unwrap();
    assert_eq!(stored.spec["patroni"]["switchover"]["enabled"], true);

    // Scale: a JSON patch testing the set and its count at its index, then replacing it.
    let mark = h.mark();
    source.request(
        theirs.clone(),
        Request::Scale {
            set: "instance1".into(),
            replicas: 3,
        },
    );
    assert!(matches!(
        outcome(&mut rx).await,
        Outcome::Accepted(Waiting::Pgo(Progress::Scaled(_)))
    ));
    assert_eq!(
        writes(&h, mark),
        [(
            "PATCH".into(),
            object.clone(),
            "application/json-patch+json".into(),
            json!([
                {"op": "test", "path": "/spec/instances/0/name", "value": "instance1"},
                {"op": "test", "path": "/spec/instances/0/replicas", "value": 2},
                {"op": "replace", "path": "/spec/instances/0/replicas", "value": 3},
            ])
        )]
    );
    assert_eq!(
        pgo.get("hippo").await.unwrap().spec["instances"][0]["replicas"],
        3
    );

    // A manual backup needs PGO's manual section: refused naming it, nothing written.
    let mark = h.mark();
    let backup = Request::Backup {
        kind: "full".into(),
        repo: "repo1".into(),
    };
    source.request(theirs.clone(), backup.clone());
    match outcome(&mut rx).await {
        Outcome::Refused(why) => assert!(
            why.starts_with("spec.backups.pgbackrest.manual is not set"),
            "{why}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(writes(&h, mark), []);
    let manual = json!({"spec": {"backups": {"pgbackrest": {"manual":
        {"repoName": "repo1", "options": ["--type=full"]}}}}});
    pgo.patch(
        "hippo",
        &Default::default(),
        &kube::api::Patch::Merge(&manual),
    )
    .await
    .unwrap();
    let mark = h.mark();
    source.request(theirs.clone(), backup);
    let Outcome::Accepted(Waiting::Pgo(Progress::Backup(trigger))) = outcome(&mut rx).await else {
        panic!("a backup waits for PGO's status.pgbackrest.manualBackup");
    };
    assert_eq!(
        writes(&h, mark),
        [(
            "PATCH".into(),
            object.clone(),
            MERGE.into(),
            json!({"metadata": {"annotations": {
              "postgres-operator.crunchydata.com/pgbackrest-backup": trigger}}})
        )]
    );

    // Stop: PGO's spec.shutdown.
    let mark = h.mark();
    source.request(theirs.clone(), Request::Verb(Verb::Stop));
    assert!(matches!(
        outcome(&mut rx).await,
        Outcome::Accepted(Waiting::Pgo(Progress::Stopped(_)))
    ));
    assert_eq!(
        writes(&h, mark),
        [(
            "PATCH".into(),
            object.clone(),
            MERGE.into(),
            json!({"spec": {"shutdown": true}})
        )]
    );

    // What PGO has no convention for is refused, nothing written.
    let mark = h.mark();
    source.request(theirs.clone(), Request::Verb(Verb::Reload));
    match outcome(&mut rx).await {
        Outcome::Refused(why) => assert!(why.contains("PGO has no convention"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(writes(&h, mark), []);

    // Nothing reached pgdeck's group, and pgdeck's namesake is as it was.
    let ours_written: Vec<_> = writes(&h, start)
        .into_iter()
        .filter(|(_, path, ..)| !path.starts_with(&object))
        .collect();
    assert_eq!(ours_written, [], "only PGO's object was written");
    let now = h.cluster(NS, "hippo").await;
    assert_eq!(now.spec, ours.spec);
    assert_eq!(now.metadata.annotations, ours.metadata.annotations);

    // Each accepted action is an Event on PGO's object, saying who asked.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(h.store.clone(), NS);
    let asked: Vec<(String, String)> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| {
            let regarding = e.regarding?;
            Some((e.reason?, regarding.api_version?))
        })
        .filter(|(reason, _)| reason.ends_with("Requested"))
        .collect();
    let reasons: Vec<&str> = asked.iter().map(|(r, _)| r.as_str()).collect();
    for wanted in [
        "SwitchoverRequested",
        "ScaleRequested",
        "BackupRequested",
        "StopRequested",
    ] {
        assert!(reasons.contains(&wanted), "{wanted}: {asked:?}");
    }
    assert!(
        asked
            .iter()
            .all(|(_, v)| v == "postgres-operator.crunchydata.com/v1beta1"),
        "{asked:?}"
    );
}
