//! `postgres` in `spec.users` (PGO's way to get the superuser's URI) on the local platform, with
//! real processes: it gets a password of its own, and HA keeps working, because Patroni and
//! pgdeck reach the superuser through the socket by peer authentication, never by password.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::local::LocalHome;
use serde_json::Value;

fn instances(s: &Value) -> Vec<Value> {
    s["instances"].as_array().cloned().unwrap_or_default()
}

fn primary(s: &Value) -> String {
    s["primary"].as_str().unwrap_or_default().to_string()
}

/// `n` instances, all ready, one primary and every other one streaming from it.
fn healthy(s: &Value, n: usize) -> bool {
    let list = instances(s);
    list.len() == n
        && list.iter().all(|i| i["ready"] == true)
        && list.iter().filter(|i| i["role"] == "primary").count() == 1
        && list
            .iter()
            .filter(|i| i["role"] != "primary")
            .all(|i| i["state"] == "streaming")
}

/// psql through `uri`, retried until it succeeds (the users task sets passwords shortly after
/// the cluster is up); returns its output.
fn psql_eventually(uri: &str, sql: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let out = Command::new("psql")
            .args([uri.trim(), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap().trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "psql {sql:?} kept failing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// psql through `uri` is turned away by a pg_hba rule.
fn refused_by_pg_hba(uri: &str) {
    let out = Command::new("psql")
        .args([uri.trim(), "-XAtq", "-c", "SELECT 1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("pg_hba.conf rejects connection"),
        "{uri}: {err}"
    );
}

#[test]
fn postgres_in_users_gets_a_uri_and_ha_survives_restarts_and_switchovers() {
    let home = LocalHome::new();
    let spec = common::local::manifest(
        "hippo",
        3,
        "",
        "  users:\n    - {name: hippo, databases: [hippo]}\n    - {name: postgres}\n    - {name: blocked, databases: [hippo]}\n  authentication:\n    rules:\n      - {connection: host, method: reject, users: [blocked]}\n      - {connection: host, method: scram-sha-256}\n",
        "",
    );
    home.apply_ready(&spec, "180s");
    home.wait_for(
        "hippo",
        Duration::from_secs(60),
        "3 instances, every replica streaming",
        |s| healthy(s, 3),
    );

    // The superuser's URI, PGO's way: its own password, and it is the superuser.
    let uri = home.ok(&["uri", "hippo", "--user", "postgres"]);
    assert!(uri.starts_with("postgresql://postgres:"), "{uri}");
    assert_eq!(
        psql_eventually(
            &uri,
            "SELECT current_user || ' ' || rolsuper FROM pg_roles WHERE rolname = current_user",
            Duration::from_secs(30)
        ),
        "postgres true"
    );
    let app = home.ok(&["uri", "hippo", "--user", "hippo"]);
    assert_eq!(
        psql_eventually(
            &app,
            "SELECT current_user || ' ' || current_database()",
            Duration::from_secs(30)
        ),
        "hippo hippo"
    );
    // The DBA's rules (PGO's spec.authentication) apply: the rejected user is turned away.
    refused_by_pg_hba(&home.ok(&["uri", "hippo", "--user", "blocked"]));
    // Passwords reached PostgreSQL as verifiers.
    assert_eq!(
        home.psql(
            &uri,
            "SELECT count(*) FROM pg_authid WHERE rolname IN ('postgres', 'hippo') \
             AND rolpassword LIKE 'SCRAM-SHA-256$4096:%'"
        ),
        "2"
    );

    // pg_rewind runs as the replication user: it signs in with its own password and reads what
    // pg_rewind reads from the leader.
    let cluster_dir = home.path().join("namespaces/default/hippo");
    let password = std::fs::read_to_string(cluster_dir.join("secrets/replication")).unwrap();
    let s = home.status("hippo");
    let leader = instances(&s)
        .into_iter()
        .find(|i| i["role"] == "primary")
        .unwrap();
    let rewind = format!(
        "postgresql://replicator:{}@127.0.0.1:{}/postgres",
        password.trim(),
        leader["port"]
    );
    assert_eq!(
        home.psql(
            &rewind,
            "SELECT length(pg_read_binary_file('global/pg_control', 0, 8, true)) \
             || ' ' || (SELECT count(*) > 0 FROM pg_ls_dir('global', true, false))"
        ),
        "8 true"
    );
    // ... and nowhere else: no DBA rule lets the replication user into other databases.
    refused_by_pg_hba(&rewind.replace("/postgres", "/hippo"));

    // Patroni is given no superuser password: nothing under secrets/ for it, none in its file.
    assert!(!cluster_dir.join("secrets/superuser").exists());
    let s = home.status("hippo");
    for i in instances(&s) {
        let name = i["name"].as_str().unwrap();
        let file = cluster_dir.join("instances").join(name).join("patroni.yml");
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let auth = &config["postgresql"]["authentication"];
        assert_eq!(
            auth["superuser"],
            serde_json::json!({"username": "postgres"})
        );
        assert_eq!(auth["rewind"]["username"], "replicator");
    }

    // A replica's Patroni restarted after `postgres` got its password comes back and streams.
    let replica = instances(&s)
        .into_iter()
        .find(|i| i["role"] != "primary")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let config = cluster_dir
        .join("instances")
        .join(&replica)
        .join("patroni.yml")
        .display()
        .to_string();
    let before = home.pids_matching(&["patroni", &config]);
    assert_eq!(before.len(), 1, "{before:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(before[0] as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = home.pids_matching(&["patroni", &config]);
        if now.len() == 1 && now != before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{replica}'s Patroni never came back"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    home.wait_for(
        "hippo",
        Duration::from_secs(90),
        "the restarted replica to stream again",
        |s| {
            healthy(s, 3)
                && instances(s)
                    .iter()
                    .any(|i| i["name"] == replica.as_str() && i["state"] == "streaming")
        },
    );

    // A switchover: the old primary rejoins as a replica, every instance streams.
    let old = primary(&home.status("hippo"));
    let out = home.ok(&["switchover", "hippo", "--wait"]);
    assert!(out.contains("switched over"), "{out}");
    let s = home.wait_for(
        "hippo",
        Duration::from_secs(90),
        "the old primary to rejoin and all to stream",
        |s| healthy(s, 3) && primary(s) != old,
    );
    assert_ne!(primary(&s), old);
    assert_eq!(
        psql_eventually(&uri, "SELECT pg_is_in_recovery()", Duration::from_secs(20)),
        "f"
    );
}
