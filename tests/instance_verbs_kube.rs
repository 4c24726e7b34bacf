//! Restart, reload, pause/resume, stop and reinit through the CLI on Kubernetes, against the
//! in-memory API server and the stand-in Patroni (tests/common/kube.rs): the CLI changes the
//! manifest, the reconciler carries the change out once through Patroni's unsafe endpoints and
//! reports it in status.

mod common;

use common::kube::Harness;
use common::{read, repo_root};
use pgdeck::api::manifest;
use pgdeck::observe::conditions;
use pgdeck::platform::kube::names;

const NS: &str = "db";

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

async fn with_hippo() -> Harness {
    let h = Harness::new().await;
    let mut hippo = manifest::parse(&read(&repo_root().join("assets/examples/ha.yaml"))).unwrap();
    hippo.metadata.namespace = Some(NS.into());
    h.create(&manifest::to_yaml(&hippo)).await;
    h.settle(NS, "hippo").await;
    h
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
    let (ok, _, err) = cli.run(&["restart", "hippo", "--all"]).await;
    assert!(!ok && err.contains("not built on Kubernetes yet"), "{err}");
    assert!(h.writes_since(mark).is_empty(), "refusals write nothing");
    cli.ok(&["reinit", "hippo", &replica]).await;
    h.reconcile(NS, "hippo").await.unwrap();
    h.reconcile(NS, "hippo").await.unwrap();
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

    // Stop: spec.shutdown.
    cli.ok(&["stop", "hippo"]).await;
    assert_eq!(h.cluster(NS, "hippo").await.spec.shutdown, Some(true));
    cli.ok(&["start", "hippo"]).await;
    assert_eq!(h.cluster(NS, "hippo").await.spec.shutdown, None);
}
