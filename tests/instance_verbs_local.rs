//! Restart, reload, pause/resume, stop/start and reinit on the local platform, against a real
//! cluster (etcd, Patroni, PostgreSQL): from the console in tmux, and through the CLI.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::local::LocalHome;
use common::tmux::{Tmux, row};

fn ha(home: &LocalHome) {
    let manifest =
        std::fs::read_to_string(common::repo_root().join("assets/examples/ha.yaml")).unwrap();
    home.apply_ready(&manifest, "120s");
}

/// The instance's status entry.
fn instance(home: &LocalHome, name: &str) -> serde_json::Value {
    home.status("hippo")["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no instance {name}"))
        .clone()
}

/// The primary's and a replica's names.
fn roles(home: &LocalHome) -> (String, String) {
    let s = home.status("hippo");
    let primary = s["primary"].as_str().unwrap().to_string();
    (primary, common::local::a_replica(&s))
}

/// SQL on one instance; `None` while it does not answer.
fn sql_on(home: &LocalHome, name: &str, sql: &str) -> Option<String> {
    home.sql_on("hippo", name, "postgres", sql).ok()
}

/// When the instance's postmaster started.
fn started(home: &LocalHome, name: &str) -> String {
    for _ in 0..120 {
        if let Some(t) = sql_on(home, name, "select pg_postmaster_start_time()") {
            return t;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{name} does not answer");
}

/// What Patroni's `GET /cluster` says, asked of `name`.
fn patroni_cluster(home: &LocalHome, name: &str) -> serde_json::Value {
    let port = instance(home, name)["patroniPort"].to_string();
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "3"])
        .arg(format!("http://127.0.0.1:{port}/cluster"))
        .output()
        .unwrap();
    assert!(out.status.success(), "GET /cluster on {name}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn restart_a_replica_then_pause_and_resume_from_the_console() {
    let home = LocalHome::new();
    ha(&home);
    let (primary, replica) = roles(&home);
    let (primary_before, replica_before) = (started(&home, &primary), started(&home, &replica));

    let tmux = Tmux::start(120, 32);
    tmux.keys(&[&home.console_command(), "Enter"]);
    tmux.wait(Duration::from_secs(10), "the cluster list", |s| {
        row(s, "hippo").contains("● OK")
    });
    tmux.keys(&["Enter"]);
    let s = tmux.wait(Duration::from_secs(10), "the instances", |s| {
        s.lines()
            .filter(|l| l.starts_with("│hippo-instance1-"))
            .count()
            == 2
    });
    // The cursor onto the replica's row.
    let rows: Vec<&str> = s
        .lines()
        .filter(|l| l.starts_with("│hippo-instance1-"))
        .collect();
    for _ in 0..rows.iter().position(|r| r.contains(&replica)).unwrap() {
        tmux.keys(&["j"]);
    }

    // R: the dialog says what happens; enter restarts the replica, and the footer reports it.
    tmux.keys(&["R"]);
    tmux.wait(Duration::from_secs(5), "the restart dialog", |s| {
        s.contains(&format!("▸ restart {replica}")) && s.contains("The primary is not touched")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(60), "the restart to be reported", |s| {
        s.contains(&format!("restart: restarted {replica}"))
    });
    assert_ne!(
        started(&home, &replica),
        replica_before,
        "the replica's postmaster restarted"
    );
    assert_eq!(
        started(&home, &primary),
        primary_before,
        "the primary's did not"
    );

    // P: pause; the header says so until resumed, and Patroni reports pause.
    tmux.keys(&["P"]);
    tmux.wait(Duration::from_secs(5), "the pause dialog", |s| {
        s.contains("pause default/hippo") && s.contains("no automatic failover")
    });
    tmux.keys(&["Enter"]);
    let s = tmux.wait(
        Duration::from_secs(30),
        "the header to show the pause",
        |s| s.contains("HA PAUSED: hippo") && s.contains("pause: Patroni is paused"),
    );
    assert!(
        s.lines().next().unwrap().contains("HA PAUSED: hippo"),
        "{s}"
    );
    assert_eq!(patroni_cluster(&home, &primary)["pause"], true);
    let cond = home.status("hippo")["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PatroniPaused")
        .cloned()
        .unwrap();
    assert_eq!(cond["status"], "True", "{cond}");

    // The Events tab has what was asked for and what came of it.
    tmux.keys(&["Tab", "Tab"]);
    tmux.wait(Duration::from_secs(10), "the events", |s| {
        s.contains("RestartRequested") && s.contains("RestartDone") && s.contains("PauseRequested")
    });
    tmux.keys(&["Tab", "Tab"]);

    tmux.keys(&["P"]);
    tmux.wait(Duration::from_secs(5), "the resume dialog", |s| {
        s.contains("resume default/hippo")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(30), "the pause to clear", |s| {
        !s.contains("HA PAUSED") && s.contains("resume: Patroni resumed")
    });
    assert!(
        patroni_cluster(&home, &primary)
            .get("pause")
            .is_none_or(|p| p == false),
        "Patroni no longer paused"
    );
    tmux.keys(&["q"]);
    tmux.wait(Duration::from_secs(5), "the console to exit", |s| {
        s.trim_end().ends_with('$')
    });
    tmux.assert_terminal_restored();
}

fn fails(home: &LocalHome, args: &[&str]) -> String {
    let out = home.run(args);
    assert!(!out.status.success(), "pgdeck {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn reload_reinit_rolling_restart_and_refusals_through_the_cli() {
    let home = LocalHome::new();
    ha(&home);
    let (primary, replica) = roles(&home);
    let manifest = || std::fs::read_to_string(home.path().join("namespaces/default/hippo.yaml"));
    let before = manifest().unwrap();

    // The leader and a stranger are refused, naming them, and nothing changes.
    let err = fails(&home, &["reinit", "hippo", &primary]);
    assert!(err.contains(&format!("{primary} is the leader")), "{err}");
    let err = fails(&home, &["reinit", "hippo", "hippo-nobody"]);
    assert!(err.contains("hippo-nobody is not an instance"), "{err}");
    let err = fails(&home, &["restart", "hippo", "hippo-nobody"]);
    assert!(err.contains("hippo-nobody is not an instance"), "{err}");
    assert_eq!(manifest().unwrap(), before, "refusals change nothing");

    let out = home.ok(&["reload", "hippo", "--wait", "--timeout", "60s"]);
    assert!(out.contains("reloaded 2 instances"), "{out}");

    // Reinit rebuilds the replica's data directory: a file left in it is gone.
    let marker = home
        .path()
        .join("namespaces/default/hippo/instances")
        .join(&replica)
        .join("data/pgdeck-test-marker");
    std::fs::write(&marker, "x").unwrap();
    let out = home.ok(&["reinit", "hippo", &replica, "--wait", "--timeout", "120s"]);
    assert!(out.contains("rebuilt from the primary"), "{out}");
    assert!(!marker.exists(), "the data directory was rebuilt");
    home.settle("hippo", 2, "the rebuilt replica to stream");

    // Every instance, rolling: both restart, and the primary hands over first.
    let (p0, r0) = (started(&home, &primary), started(&home, &replica));
    let out = home.ok(&["restart", "hippo", "--all", "--wait", "--timeout", "180s"]);
    assert!(out.contains("rolling restart (all) done"), "{out}");
    let s = home.settle("hippo", 2, "both instances back");
    assert_eq!(
        s["primary"],
        replica.as_str(),
        "switched over before the primary restarted"
    );
    assert_ne!(started(&home, &primary), p0);
    assert_ne!(started(&home, &replica), r0);

    // A restarted reconciler does not act on a trigger again.
    let r1 = started(&home, &replica);
    home.kill_operator();
    home.ok(&["pause", "hippo", "--wait", "--timeout", "60s"]);
    home.ok(&["resume", "hippo", "--wait", "--timeout", "60s"]);
    assert_eq!(started(&home, &replica), r1, "nothing restarted again");

    // Stop and start (spec.shutdown).
    let out = home.ok(&["stop", "hippo", "--wait", "--timeout", "120s"]);
    assert!(out.contains("every instance is stopped"), "{out}");
    assert!(sql_on(&home, &replica, "select 1").is_none());
    let out = home.ok(&["start", "hippo", "--wait", "--timeout", "180s"]);
    assert!(out.contains("started: 2/2 ready"), "{out}");
}
