//! pgBouncer on the local platform, with real processes: clients reach the primary through it
//! over TLS only, authenticated with their own PostgreSQL passwords (`auth_query`), and keep
//! writing through the same URI across a switchover, which pauses the pools instead of
//! failing them, and after a failover; a pgBouncer that dies comes back; removing the field
//! removes it.

use crate::common;

use std::time::Duration;

use common::local::LocalHome;
use common::writer;
use serde_json::Value;

const POOLED: &str = "  proxy:\n    pgBouncer:\n      replicas: 1\n      config:\n        global: {pool_mode: transaction}\n";

fn manifest(spec_extra: &str) -> String {
    common::local::manifest("pooled", 2, "", spec_extra, "")
}

fn pooler(status: &Value) -> &Value {
    &status["proxy"]["pgBouncer"]
}

fn pooler_ready(s: &Value) -> bool {
    pooler(s)["readyReplicas"] == 1 && pooler(s)["replicas"] == 1 && pooler(s)["paused"].is_null()
}

#[test]
fn pgbouncer_takes_tls_only_follows_the_primary_and_clients_only_wait_through_a_switchover() {
    let home = LocalHome::new();
    home.apply_ready(&manifest(POOLED), "180s");
    home.settle("pooled", 2, "two instances");
    home.wait_for(
        "pooled",
        Duration::from_secs(60),
        "pgBouncer ready",
        pooler_ready,
    );
    let uri = home.ok(&["uri", "pooled", "--pgbouncer"]);
    let uri = uri.trim().to_string();
    assert!(uri.contains("sslmode=verify-full"), "{uri}");

    // The pooler answers for the user with its own password, from the primary.
    assert_eq!(home.psql(&uri, "SELECT pg_is_in_recovery()"), "f");
    // Plain text is refused, by the pooler itself.
    let plain = uri.replace("sslmode=verify-full", "sslmode=disable");
    let out = std::process::Command::new("psql")
        .args([plain.as_str(), "-XAtq", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a plain-text connection was accepted"
    );
    // The pooler's lookup answers for the user but for no superuser nor itself.
    for (role, rows) in [
        ("pooled", "1"),
        ("postgres", "0"),
        ("_crunchypgbouncer", "0"),
        ("replicator", "0"),
    ] {
        let sql = format!("SELECT count(*) FROM pgbouncer.get_auth('{role}')");
        assert_eq!(home.superuser("pooled", "pooled", &sql), rows, "{role}");
    }
    let denied = home.try_superuser(
        "pooled",
        "pooled",
        "SET ROLE _crunchypgbouncer; SELECT rolpassword FROM pg_authid",
    );
    assert!(
        denied.is_err(),
        "the pooler's role reads pg_authid: {denied:?}"
    );

    // Settled, pgdeck leaves it alone: nothing rewritten, nothing reloaded, connections kept.
    let log = home
        .path()
        .join("namespaces/default/pooled/pgbouncer/0/pgbouncer.log");
    let reloads = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("RELOAD command issued")
            .count()
    };
    let before = reloads();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        reloads(),
        before,
        "pgBouncer reloaded while nothing changed"
    );

    // Write through the pooler, switch over, keep writing through the same URI.
    let writing = writer::Writing::through(&home, &uri, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let before = home.status("pooled")["primary"]
        .as_str()
        .unwrap()
        .to_string();
    home.ok(&["switchover", "pooled", "--wait", "--timeout", "120s"]);
    let after = home.wait_for(
        "pooled",
        Duration::from_secs(60),
        "the pools to resume",
        |s| pooler_ready(s) && s["primary"].as_str().is_some_and(|p| p != before),
    );
    std::thread::sleep(Duration::from_secs(3));
    let outcomes = writing.finish(&home, "pooled");
    let o = &outcomes[0];
    let switched = o
        .acked_at
        .iter()
        .filter(|t| t.elapsed() < Duration::from_secs(3))
        .count();
    assert!(switched > 0, "no write went through after the switchover");
    // Paused pools make clients wait: no error at all.
    assert_eq!(
        o.failed, 0,
        "clients saw errors, not a pause: {:?}",
        o.errors
    );
    println!(
        "{} writes, longest wait {:?}, new primary {}",
        o.acked.len(),
        o.longest_gap,
        after["primary"]
    );

    // A failover too: the primary frozen, Patroni promotes the other; the pooler follows.
    let old = after["primary"].as_str().unwrap().to_string();
    let mut pids = home.patroni_pids("pooled", &old);
    pids.extend(home.postgres_pids("pooled", &old));
    let frozen = common::local::Frozen::freeze(pids);
    home.wait_for("pooled", Duration::from_secs(120), "a failover", |s| {
        s["primary"].as_str().is_some_and(|p| p != old) && pooler_ready(s)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let written = loop {
        let out = std::process::Command::new("psql")
            .args([
                uri.as_str(),
                "-XAtq",
                "-c",
                "INSERT INTO probe VALUES (-1, now()) RETURNING id",
            ])
            .output()
            .unwrap();
        if out.status.success() || std::time::Instant::now() > deadline {
            break String::from_utf8_lossy(&out.stdout).trim().to_string()
                + &String::from_utf8_lossy(&out.stderr);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        written, "-1",
        "a write through the pooler after the failover"
    );
    drop(frozen);

    // A pgBouncer that dies is started again.
    let pids = home.pids_matching(&["pgbouncer", "/pooled/pgbouncer/0/"]);
    assert_eq!(pids.len(), 1, "one pgBouncer: {pids:?}");
    common::local::signal(&[pids[0] as i32], nix::sys::signal::Signal::SIGKILL);
    home.wait_for(
        "pooled",
        Duration::from_secs(30),
        "pgBouncer restarted",
        |_| {
            home.pids_matching(&["pgbouncer", "/pooled/pgbouncer/0/"])
                .iter()
                .any(|p| *p != pids[0])
        },
    );
    home.wait_for(
        "pooled",
        Duration::from_secs(30),
        "pgBouncer ready",
        pooler_ready,
    );
    assert_eq!(home.psql(&uri, "SELECT 1"), "1");

    // Without spec.proxy.pgBouncer, the poolers stop and their files go.
    home.apply_ready(&manifest(""), "120s");
    home.wait_for("pooled", Duration::from_secs(60), "the pooler gone", |s| {
        s["proxy"].is_null()
            && home
                .pids_matching(&["pgbouncer", "/pooled/pgbouncer/"])
                .is_empty()
            && !home
                .path()
                .join("namespaces/default/pooled/pgbouncer")
                .exists()
    });
    let login = home.superuser(
        "pooled",
        "postgres",
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = '_crunchypgbouncer'",
    );
    assert_eq!(login, "f", "the pooler's role can no longer log in");
}
