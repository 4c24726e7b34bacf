//! Standby clusters on the local platform, with real processes: a cluster follows another of the
//! same home by streaming from its leader over TLS, refuses writes, receives the source's new
//! rows (across the source's switchover), outlives its deletion, and takes writes once promoted;
//! it streams through a slot its source keeps for it until it is deleted.

use crate::common;

use std::time::{Duration, Instant};

use common::local::{LocalHome, manifest};

/// The `Standby` condition's reason and message.
fn standby_condition(status: &serde_json::Value) -> Option<(String, String)> {
    condition(status, "Standby")
}

/// The reason and message of the condition of type `kind`.
fn condition(status: &serde_json::Value, kind: &str) -> Option<(String, String)> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("reason"), text("message"))
        })
}

/// The instances' roles.
fn roles(status: &serde_json::Value) -> Vec<String> {
    status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| Some(i["role"].as_str()?.to_string()))
        .collect()
}

/// Poll `f` until it gives `Some`, or panic naming `what` and the last error.
fn within<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: not within {limit:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

#[test]
fn a_standby_follows_refuses_writes_outlives_its_source_and_takes_writes_once_promoted() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("hippo", 2, "", "", ""), "180s");
    home.settle("hippo", 2, "hippo's primary and replica");
    home.superuser(
        "hippo",
        "postgres",
        "CREATE TABLE t (n int); INSERT INTO t VALUES (1)",
    );

    // The source's first backup, for the standby to restore from.
    home.wait_for(
        "hippo",
        Duration::from_secs(120),
        "hippo's first backup",
        |s| {
            s["repos"][0]["backups"]
                .as_array()
                .is_some_and(|b| !b.is_empty())
        },
    );

    let follow = "  standby: {enabled: true, host: hippo-primary, repoName: repo1}\n";
    home.apply_ready(&manifest("copy", 2, "", follow, ""), "240s");
    let status = home.settle("copy", 2, "a standby leader and a cascading replica");
    let found = roles(&status);
    assert!(found.iter().any(|r| r == "standby_leader"), "{found:?}");
    assert!(found.iter().any(|r| r == "replica"), "{found:?}");
    // Its leader was restored from hippo's repository, and replays WAL archived there.
    let leader = status["primary"].as_str().unwrap();
    let log = std::fs::read_to_string(
        home.path()
            .join("namespaces/default/copy/instances")
            .join(leader)
            .join("patroni.log"),
    )
    .unwrap();
    assert!(
        log.contains("replica has been created using pgbackrest"),
        "{log}"
    );
    let restore = home.superuser("copy", "postgres", "SHOW restore_command");
    assert!(restore.contains("standby-pgbackrest.conf"), "{restore}");
    let (reason, message) = standby_condition(&home.wait_for(
        "copy",
        Duration::from_secs(60),
        "the Standby condition",
        |s| standby_condition(s).is_some_and(|(r, m)| r == "Following" && m.contains("behind")),
    ))
    .unwrap();
    assert_eq!(reason, "Following");
    assert!(message.starts_with("standby of default/hippo"), "{message}");

    // The source's rows, the old one and a new one within seconds.
    assert_eq!(
        home.superuser("copy", "postgres", "SELECT count(*) FROM t"),
        "1"
    );
    home.superuser("hippo", "postgres", "INSERT INTO t VALUES (2)");
    within(
        Duration::from_secs(20),
        "the source's new row",
        || match home
            .try_superuser("copy", "postgres", "SELECT count(*) FROM t")?
            .as_str()
        {
            "2" => Ok(()),
            n => Err(format!("{n} rows")),
        },
    );

    // The source switches over: the standby leader streams from the new leader within
    // seconds (the source's worker wakes the standby's as it records the move, not at the
    // standby's next settled pass), and keeps receiving its rows.
    home.ok(&["switchover", "hippo", "--wait"]);
    let moved = Instant::now();
    within(
        Duration::from_secs(8),
        "copy's standby leader streaming from hippo's new leader",
        || {
            let hippo = home.status("hippo");
            let primary = hippo["primary"].as_str().ok_or("no primary")?;
            let port = hippo["instances"]
                .as_array()
                .and_then(|i| i.iter().find(|i| i["name"] == primary))
                .ok_or("no primary instance")?["port"]
                .to_string();
            let from = home.try_superuser(
                "copy",
                "postgres",
                "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'",
            )?;
            (from == port).then_some(()).ok_or(format!(
                "streams from port {from:?}, hippo's leader is at {port}"
            ))
        },
    );
    eprintln!(
        "the standby followed the source's new leader in {:?}",
        moved.elapsed()
    );
    within(
        Duration::from_secs(30),
        "a write to hippo's new primary",
        || home.try_superuser("hippo", "postgres", "INSERT INTO t VALUES (3)"),
    );
    within(
        Duration::from_secs(60),
        "the row written after the source's switchover",
        || match home
            .try_superuser("copy", "postgres", "SELECT count(*) FROM t")?
            .as_str()
        {
            "3" => Ok(()),
            n => Err(format!("{n} rows")),
        },
    );

    // Read-only until promoted, even for the superuser.
    let refused = home
        .try_superuser("copy", "postgres", "INSERT INTO t VALUES (4)")
        .expect_err("a write to a standby");
    assert!(refused.contains("read-only"), "{refused}");

    // The source goes away: the standby stays as it is, and says why it gets nothing new.
    home.ok(&["delete", "hippo", "--wait"]);
    let s = home.wait_for("copy", Duration::from_secs(60), "the lost source", |s| {
        standby_condition(s).is_some_and(|(r, _)| r == "StandbyProblem")
    });
    let (_, message) = standby_condition(&s).unwrap();
    assert!(
        message.contains("spec.standby.host") && message.contains("default/hippo"),
        "{message}"
    );
    assert_eq!(
        home.superuser("copy", "postgres", "SELECT count(*) FROM t"),
        "3"
    );

    let promote = "  standby: {enabled: false, host: hippo-primary}\n";
    let out = home.apply_text(&manifest("copy", 2, "", promote, ""), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    home.wait_for("copy", Duration::from_secs(120), "promotion", |s| {
        standby_condition(s).is_some_and(|(r, _)| r == "Promoted")
    });
    within(Duration::from_secs(60), "a write after promotion", || {
        home.try_superuser("copy", "postgres", "INSERT INTO t VALUES (5)")
    });
    assert_eq!(
        home.superuser("copy", "postgres", "SELECT count(*) FROM t"),
        "4"
    );
    home.settle("copy", 2, "the promoted cluster's replica streaming");
    // Status reads roles from Patroni's view in the DCS, which its next loop (10 s) updates:
    // the promoted leader is seen as a primary within a few.
    home.wait_for(
        "copy",
        Duration::from_secs(60),
        "the promoted leader's role",
        |s| roles(s).iter().any(|r| r == "primary"),
    );
}

#[test]
fn a_standby_streams_through_a_slot_on_its_source_which_goes_with_the_standby() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("hippo", 1, "", "", ""), "180s");
    let follow = "  standby: {enabled: true, host: hippo-primary}\n";
    home.apply_ready(&manifest("copy", 1, "", follow, ""), "240s");
    home.apply_ready(&manifest("twin", 1, "", follow, ""), "240s");
    home.settle("copy", 1, "a standby leader");

    // The source says whom it keeps WAL for, and through which slot.
    let s = home.wait_for(
        "hippo",
        Duration::from_secs(60),
        "hippo's StandbySlots condition for both",
        |s| {
            condition(s, "StandbySlots")
                .is_some_and(|(r, m)| r == "Reserved" && m.contains("default/twin"))
        },
    );
    let (_, message) = condition(&s, "StandbySlots").unwrap();
    let slot_of = |standby: &str| {
        message
            .split(&format!("{standby} (slot "))
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no slot named for {standby}: {message}"))
            .to_string()
    };
    let (slot, twins) = (slot_of("default/copy"), slot_of("default/twin"));
    assert!(
        message.starts_with("WAL is kept for standbys default/copy")
            && slot.starts_with("pgdeck_standby_default_copy_")
            && twins.starts_with("pgdeck_standby_default_twin_"),
        "{message}"
    );
    // The standby leader asks for it, and the source's walsender for it streams.
    assert_eq!(
        home.superuser("copy", "postgres", "SHOW primary_slot_name"),
        slot
    );
    within(
        Duration::from_secs(60),
        "the standby streaming through its slot",
        || {
            let n = home.try_superuser(
                "hippo",
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_replication r \
                     ON r.pid = s.active_pid WHERE s.slot_name = '{slot}' AND s.slot_type = \
                     'physical' AND r.state = 'streaming'"
                ),
            )?;
            (n == "1")
                .then_some(())
                .ok_or(format!("{n} streaming through {slot}"))
        },
    );
    home.superuser("hippo", "postgres", "CREATE TABLE t AS SELECT 1 AS n");
    within(Duration::from_secs(20), "the source's new table", || {
        home.try_superuser("copy", "postgres", "SELECT count(*) FROM t")
    });

    // A slot goes with its standby, promoted or deleted: it would keep the source's WAL
    // forever. The other's stays.
    let dropped = |slot: &str| {
        within(Duration::from_secs(60), "the slot dropped", || {
            let n = home.try_superuser(
                "hippo",
                "postgres",
                &format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"),
            )?;
            (n == "0")
                .then_some(())
                .ok_or(format!("{slot} still there"))
        })
    };
    let promote = "  standby: {enabled: false, host: hippo-primary}\n";
    let out = home.apply_text(&manifest("twin", 1, "", promote, ""), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dropped(&twins);
    let s = home.wait_for(
        "hippo",
        Duration::from_secs(30),
        "the StandbySlots condition without twin",
        |s| condition(s, "StandbySlots").is_some_and(|(_, m)| !m.contains("default/twin")),
    );
    assert_eq!(
        condition(&s, "StandbySlots").unwrap(),
        (
            "Reserved".to_string(),
            format!("WAL is kept for standbys default/copy (slot {slot})")
        )
    );
    home.ok(&["delete", "copy", "--wait"]);
    dropped(&slot);
    home.wait_for(
        "hippo",
        Duration::from_secs(30),
        "no StandbySlots condition",
        |s| condition(s, "StandbySlots").is_none(),
    );
}

#[test]
fn a_source_that_is_not_a_cluster_of_this_home_is_refused_naming_the_field() {
    let home = LocalHome::new();
    for (standby, why) in [
        (
            "{enabled: true, host: db.example.com}",
            "not a cluster of this home",
        ),
        (
            "{enabled: true, host: copy-primary}",
            "cannot follow itself",
        ),
        (
            "{enabled: true, host: hippo-primary, port: 5432}",
            "spec.standby.port",
        ),
        ("{enabled: true, repoName: repo1}", "spec.standby.repoName"),
    ] {
        let out = home.apply_text(
            &manifest("copy", 1, "", &format!("  standby: {standby}\n"), ""),
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{standby} was accepted");
        assert!(
            err.contains("spec.standby") && err.contains(why),
            "{standby}: {err}"
        );
    }
    assert!(
        !home.run(&["get", "copy"]).status.success(),
        "nothing was stored"
    );
}

#[test]
fn a_source_without_the_repository_named_stops_the_standby_with_a_condition_naming_the_field() {
    let home = LocalHome::new();
    // The source need not run: its manifest says which repositories it has (only repo1). Which
    // it has may change after the standby's is applied, so this is a condition, not a refusal.
    let out = home.apply_text(&manifest("hippo", 1, "", "  shutdown: true\n", ""), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let follow = "  standby: {enabled: true, host: hippo-primary, repoName: repo2}\n";
    let out = home.apply_text(&manifest("copy", 1, "", follow, ""), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = home.wait_for(
        "copy",
        Duration::from_secs(60),
        "the Standby condition",
        |s| standby_condition(s).is_some(),
    );
    let (reason, message) = standby_condition(&s).unwrap();
    assert_eq!(reason, "StandbyProblem", "{message}");
    assert!(
        message.contains("spec.standby.repoName")
            && message.contains("default/hippo")
            && message.contains("repo2"),
        "{message}"
    );
    assert!(
        s["instances"].as_array().is_none_or(|i| i.is_empty()),
        "nothing started: {s}"
    );
}
