//! The adversarial suite: real clusters on the local platform under bad luck — a primary
//! killed or frozen, the DCS gone, every Patroni stopped during a scale-down, the reconciler
//! killed at random moments, kept backups with look-alike names. Each asserts what a DBA
//! relies on: no acknowledged write is lost, no data directory goes that should not, the
//! cluster converges. Bounded for CI; the benchmark `failover` repeats the outages and times
//! them.

use crate::common;

use std::time::{Duration, Instant};

use common::local::LocalHome;
use common::writer;
use nix::sys::signal::Signal;
use serde_json::Value;

const SYNC: &str = "  patroni:\n    dynamicConfiguration:\n      synchronous_mode: true\n";

fn manifest(name: &str, replicas: u32, spec_extra: &str) -> String {
    common::local::manifest(name, replicas, "", spec_extra, "")
}

fn instances(status: &Value) -> Vec<Value> {
    status["instances"].as_array().cloned().unwrap_or_default()
}

fn primary(status: &Value) -> String {
    status["primary"].as_str().unwrap_or_default().to_string()
}

#[test]
fn killing_the_primarys_postmaster_loses_no_acknowledged_write() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("kill9", 2, SYNC), "180s");
    let writing = writer::Writing::start(&home, "kill9");
    for round in 0..5 {
        let status = home.protected("kill9", 2);
        let p = primary(&status);
        let pids = home.postgres_pids("kill9", &p);
        assert!(!pids.is_empty(), "round {round}: no postmaster for {p}");
        common::local::signal(&pids[..1], Signal::SIGKILL);
        std::thread::sleep(Duration::from_secs(2));
    }
    home.settle("kill9", 2, "every member to rejoin");
    writing.finish(&home, "kill9");
}

#[test]
fn a_frozen_primary_acknowledges_no_write_after_losing_the_lock() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("frozen", 2, SYNC), "180s");
    let status = home.protected("frozen", 2);
    let old = primary(&status);
    let port = instances(&status)
        .iter()
        .find(|i| i["name"] == old.as_str())
        .and_then(|i| i["port"].as_i64())
        .unwrap();
    let mut writing = writer::Writing::start(&home, "frozen");
    // A second writer stays on the old primary: after the thaw it is the one that could
    // acknowledge a write the new primary never sees.
    let cluster_uri = home.ok(&["uri", "frozen"]);
    let pinned = writer::pin_to_port(cluster_uri.trim(), port);
    writing.also(pinned, 1_000_000_000, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));

    let mut pids = home.patroni_pids("frozen", &old);
    pids.extend(home.postgres_pids("frozen", &old));
    let frozen = common::local::Frozen::freeze(pids);
    let took_over = home.wait_for(
        "frozen",
        Duration::from_secs(120),
        "another member to take over from the frozen primary",
        |s| s["primary"].is_string() && primary(s) != old,
    );
    std::thread::sleep(Duration::from_secs(3));
    drop(frozen);
    let after = home.settle("frozen", 2, "the old primary to rejoin as a replica");
    assert_eq!(primary(&after), primary(&took_over), "no second failover");
    std::thread::sleep(Duration::from_secs(2));
    writing.finish(&home, "frozen");
}

#[test]
fn thirty_seconds_without_etcd_lose_nothing() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("nodcs", 2, SYNC), "180s");
    home.protected("nodcs", 2);
    let writing = writer::Writing::start(&home, "nodcs");
    std::thread::sleep(Duration::from_secs(2));
    // The reconciler would start etcd again at once: stop it first.
    home.ok(&["operator", "stop"]);
    let etcd = home.pids_matching(&["etcd", "--data-dir"]);
    assert_eq!(etcd.len(), 1, "one etcd per home");
    common::local::signal(&[etcd[0] as i32], Signal::SIGKILL);
    std::thread::sleep(Duration::from_secs(30));
    // Any change starts the reconciler, which starts etcd again.
    let again = home.apply_text(&manifest("nodcs", 2, SYNC), &[]);
    assert!(again.status.success());
    home.settle("nodcs", 2, "the cluster to recover after etcd came back");
    std::thread::sleep(Duration::from_secs(2));
    writing.finish(&home, "nodcs");
}

#[test]
fn scaling_down_while_every_patroni_is_stopped_keeps_the_primarys_data() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("dark", 2, ""), "180s");
    let first: Vec<Value> = instances(&home.status("dark"));
    home.ok(&[
        "scale",
        "dark",
        "--replicas",
        "3",
        "--wait",
        "--timeout",
        "180s",
    ]);
    // The newest instance leads: a scale-down that goes by age alone would remove it.
    let newest = instances(&home.status("dark"))
        .into_iter()
        .find(|i| first.iter().all(|f| f["name"] != i["name"]))
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    home.ok(&["switchover", "dark", "--to", &newest, "--wait"]);
    home.apply_ready(&manifest("dark", 3, SYNC), "120s");
    let status = home.protected("dark", 3);
    assert_eq!(primary(&status), newest);
    let leader_port = instances(&status)
        .iter()
        .find(|i| i["name"] == newest.as_str())
        .and_then(|i| i["port"].as_i64())
        .unwrap();

    // Lights out, the replicas first: the primary alone then has what it writes, and Patroni
    // records that no standby is synchronous, so only it may lead again.
    home.ok(&["operator", "stop"]);
    let stop_patroni = |name: &str| {
        common::local::signal(&home.patroni_pids("dark", name), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !home.patroni_pids("dark", name).is_empty() {
            assert!(Instant::now() < deadline, "Patroni of {name} did not stop");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    for i in instances(&status)
        .iter()
        .filter(|i| i["name"] != newest.as_str())
    {
        stop_patroni(i["name"].as_str().unwrap());
    }
    let direct = writer::pin_to_port(home.ok(&["uri", "dark"]).trim(), leader_port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !home
        .psql(&direct, "SHOW synchronous_standby_names")
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "Patroni kept a synchronous standby"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    home.psql(&direct, "CREATE TABLE precious AS SELECT 42 AS answer");
    stop_patroni(&newest);

    // Nobody leads now: the scale-down must wait until someone does, and keep the leader.
    home.ok(&[
        "scale",
        "dark",
        "--replicas",
        "1",
        "--wait",
        "--timeout",
        "240s",
    ]);
    let after = home.settle("dark", 1, "one instance");
    assert_eq!(primary(&after), newest);
    let uri = home.ok(&["uri", "dark"]);
    assert_eq!(home.psql(&uri, "SELECT answer FROM precious"), "42");
}

#[test]
fn a_reconciler_killed_during_scale_and_switchover_converges_without_loss() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("jolt", 2, ""), "180s");
    let writing = writer::Writing::start(&home, "jolt");
    let mut kills = 0;
    // Kill the reconciler at a random moment of what `args` started, then bring it back with
    // the same command (a changing command starts it).
    let mut jolt = |home: &LocalHome, args: &[&str]| {
        home.ok(args);
        std::thread::sleep(Duration::from_millis(rand::random_range(100..3000)));
        home.kill_operator();
        kills += 1;
    };
    for _ in 0..3 {
        jolt(&home, &["scale", "jolt", "--replicas", "3"]);
    }
    home.ok(&[
        "scale",
        "jolt",
        "--replicas",
        "3",
        "--wait",
        "--timeout",
        "180s",
    ]);
    let before = primary(&home.settle("jolt", 3, "three members"));
    // One switchover asked for, the reconciler killed three times while it runs: it happens
    // once, never again to yet another replica.
    jolt(&home, &["switchover", "jolt"]);
    for _ in 0..2 {
        jolt(&home, &["scale", "jolt", "--replicas", "3"]);
    }
    home.ok(&["scale", "jolt", "--replicas", "3"]);
    let moved = home.wait_for("jolt", Duration::from_secs(120), "the switchover", |s| {
        common::local::all_ready(s, 3) && primary(s) != before
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        primary(&home.status("jolt")),
        primary(&moved),
        "one switchover, not two"
    );
    for _ in 0..4 {
        jolt(&home, &["scale", "jolt", "--replicas", "2"]);
    }
    home.ok(&[
        "scale",
        "jolt",
        "--replicas",
        "2",
        "--wait",
        "--timeout",
        "180s",
    ]);
    let end = home.settle("jolt", 2, "two members");
    assert_eq!(kills, 10);
    assert!(
        instances(&end)
            .iter()
            .any(|i| i["name"] == moved["primary"]),
        "the primary was not among those removed"
    );
    std::thread::sleep(Duration::from_secs(2));
    for i in instances(&end) {
        let name = i["name"].as_str().unwrap();
        assert_eq!(
            home.patroni_pids("jolt", name).len(),
            1,
            "one Patroni for {name}"
        );
    }
    assert_eq!(
        home.pids_matching(&["patroni", "/jolt/instances/"]).len(),
        2,
        "no Patroni left of removed instances"
    );
    writing.finish(&home, "jolt");
}

#[test]
fn a_clone_restores_the_named_clusters_kept_backups_not_a_look_alikes() {
    let home = LocalHome::new();
    for name in ["hippo", "hippo-dev"] {
        home.apply_ready(&manifest(name, 1, ""), "180s");
        let uri = home.ok(&["uri", name]);
        reachable(&uri);
        home.psql(
            &uri,
            &format!("CREATE TABLE whose AS SELECT '{name}'::text AS name"),
        );
        // In a backup (which waits for its WAL to be archived), so a restore has it.
        home.ok(&["backup", name, "--type", "incr", "--wait"]);
    }
    // hippo-dev is kept after hippo: by name prefix and time it would be "hippo's newest".
    for name in ["hippo", "hippo-dev"] {
        home.ok(&["delete", name, "--keep-backups", "--wait"]);
    }
    // hippo's database and user, as restored.
    let clone = manifest("clone", 1, "  users: [{name: hippo, databases: [hippo]}]\n")
        + "  dataSource:\n    postgresCluster:\n      clusterName: hippo\n      repoName: repo1\n";
    home.apply_ready(&clone, "240s");
    let uri = home.ok(&["uri", "clone"]);
    reachable(&uri);
    assert_eq!(home.psql(&uri, "SELECT name FROM whose"), "hippo");
}

/// Wait until `uri` takes connections: Ready comes before the users and databases are made.
fn reachable(uri: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::process::Command::new("psql")
        .args([uri.trim(), "-XAtqc", "SELECT 1"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "{uri} takes no connections");
        std::thread::sleep(Duration::from_millis(500));
    }
}
