//! The local platform with real etcd, Patroni, PostgreSQL and pgBackRest processes.

use crate::common;

use std::time::Duration;

use common::local::LocalHome;
use serde_json::Value;

/// A cluster with `extra` lines in its spec.
fn manifest(name: &str, replicas: u32, extra: &str) -> String {
    common::local::manifest(name, replicas, "", extra, "")
}

fn instances(status: &Value) -> Vec<Value> {
    status["instances"].as_array().cloned().unwrap_or_default()
}

fn with_role<'a>(status: &'a Value, role: &str) -> Vec<&'a Value> {
    status["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["role"] == role)
        .collect()
}

fn primary(status: &Value) -> String {
    status["primary"].as_str().unwrap_or_default().to_string()
}

fn all_ready(status: &Value, n: usize) -> bool {
    let list = instances(status);
    list.len() == n && list.iter().all(|i| i["ready"] == true) && status["primary"].is_string()
}

/// Instances on disk: a record and its directory.
fn instance_dirs(home: &LocalHome, cluster: &str) -> usize {
    let dir = home.path().join("namespaces/default").join(cluster);
    std::fs::read_dir(dir.join("records"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|f| f.strip_suffix(".json").map(String::from))
                .filter(|name| dir.join("instances").join(name).is_dir())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn sync_cluster_replicates_switches_over_and_fails_over() {
    let home = LocalHome::new();
    let spec = manifest(
        "sync3",
        3,
        "  patroni:\n    dynamicConfiguration:\n      synchronous_mode: true\n",
    );
    home.apply_ready(&spec, "120s");

    // One primary, one sync standby, one replica, all streaming.
    let s = home.wait_for(
        "sync3",
        Duration::from_secs(40),
        "roles primary + sync_standby + replica",
        |s| {
            all_ready(s, 3)
                && with_role(s, "primary").len() == 1
                && with_role(s, "sync_standby").len() == 1
                && with_role(s, "replica").len() == 1
        },
    );
    for standby in with_role(&s, "sync_standby")
        .into_iter()
        .chain(with_role(&s, "replica"))
    {
        assert_eq!(standby["state"], "streaming", "{standby}");
        assert!(
            standby["lagBytes"].is_number() && standby["replayLagSeconds"].is_number(),
            "{standby}"
        );
    }
    assert_eq!(s["sync"], "on");
    let timeline = s["instances"][0]["timeline"].as_i64().unwrap();

    // 1,000 rows through `pgdeck uri`, read back on a replica.
    let uri = home.ok(&["uri", "sync3"]);
    home.psql(
        &uri,
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 1000)",
    );
    let replica_uri = home.ok(&["uri", "sync3", "--replica"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while home.psql(&replica_uri, "SELECT count(*) FROM t") != "1000" {
        assert!(
            std::time::Instant::now() < deadline,
            "rows never reached the replica"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        home.psql(&replica_uri, "SELECT pg_is_in_recovery()"),
        "t",
        "--replica must reach a standby"
    );

    // Switchover: the roles swap, the timeline moves on, every row is there.
    let old_primary = primary(&s);
    let out = home.ok(&["switchover", "sync3", "--wait"]);
    assert!(out.contains("switched over"), "{out}");
    let s = home.wait_for(
        "sync3",
        Duration::from_secs(40),
        "the old primary to rejoin",
        // The old primary reports ready while it still replays its way onto the new
        // timeline, so the timeline is part of what is waited for, not asserted after.
        |s| {
            all_ready(s, 3)
                && primary(s) != old_primary
                && s["patroni"]["switchover"].is_string()
                && instances(s).iter().all(|i| i["timeline"] == timeline + 1)
        },
    );
    let new_primary = primary(&s);
    assert_ne!(new_primary, old_primary);
    assert_eq!(s["patroni"]["switchoverTimeline"], timeline + 1);
    assert_eq!(home.psql(&uri, "SELECT count(*) FROM t"), "1000");
    assert_eq!(
        home.psql(&uri, "SELECT pg_is_in_recovery()"),
        "f",
        "the URI follows the primary"
    );

    // kill -9 the primary's postmaster: a new primary within Patroni's TTL (30 s); the old
    // one comes back as a replica. In synchronous mode Patroni fails over only to the standby
    // its sync key names, so first wait for the new primary to have one.
    home.wait_for(
        "sync3",
        Duration::from_secs(40),
        "a sync standby for the new primary",
        |s| primary(s) == new_primary && with_role(s, "sync_standby").len() == 1,
    );
    let pid_file = home
        .path()
        .join("namespaces/default/sync3/instances")
        .join(&new_primary)
        .join("data/postmaster.pid");
    let pid: i32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    home.wait_for("sync3", Duration::from_secs(35), "a failover", |s| {
        !primary(s).is_empty() && primary(s) != new_primary
    });
    let failed = new_primary;
    let s = home.wait_for(
        "sync3",
        Duration::from_secs(60),
        "the failed primary to rejoin as a replica",
        |s| {
            all_ready(s, 3)
                && instances(s)
                    .iter()
                    .any(|i| i["name"] == failed.as_str() && i["role"] != "primary")
        },
    );
    assert_ne!(primary(&s), failed);
    assert_eq!(home.psql(&uri, "SELECT count(*) FROM t"), "1000");
}

#[test]
fn scales_three_one_two_and_deletes_keeping_only_backups() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("scaler", 3, ""), "120s");
    let s = home.status("scaler");
    let first_primary = primary(&s);
    assert!(all_ready(&s, 3), "{s}");

    home.ok(&["scale", "scaler", "--replicas", "1", "--wait"]);
    let s = home.wait_for("scaler", Duration::from_secs(60), "scale-down to 1", |s| {
        all_ready(s, 1)
    });
    assert_eq!(
        primary(&s),
        first_primary,
        "scale-down never removes the primary"
    );
    home.wait_for(
        "scaler",
        Duration::from_secs(30),
        "removals to finish",
        |_| instance_dirs(&home, "scaler") == 1,
    );
    assert_eq!(
        home.pids_matching(&["patroni", "/scaler/instances/"]).len(),
        1
    );

    home.ok(&["scale", "scaler", "--replicas", "2", "--wait"]);
    let s = home.status("scaler");
    assert!(all_ready(&s, 2), "{s}");
    assert_eq!(with_role(&s, "replica")[0]["state"], "streaming");

    // Wait for the first backup, so the kept repository holds one.
    home.wait_for("scaler", Duration::from_secs(60), "the first backup", |s| {
        s["repos"][0]["backups"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    });
    let out = home.ok(&["delete", "scaler", "--keep-backups", "--wait"]);
    assert!(out.contains("deleted (keeping backups)"), "{out}");
    assert!(
        home.pids_matching(&["/scaler/instances/"]).is_empty(),
        "every instance stopped"
    );
    assert!(
        !home.path().join("namespaces/default/scaler").exists(),
        "data and state removed"
    );
    assert!(!home.path().join("namespaces/default/scaler.yaml").exists());
    let kept: Vec<_> = std::fs::read_dir(home.path().join("kept/default"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let mut entries: Vec<String> = std::fs::read_dir(&kept[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["kept.json", "repos"],
        "only the repository is kept, with whose it is"
    );
    assert!(
        kept[0].join("repos/repo1/backup/db/backup.info").exists(),
        "the kept repository holds the backup"
    );
    let out = home.run(&["get", "scaler"]);
    assert!(!out.status.success());
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let home = LocalHome::new();
    let bad = manifest("bad", 0, "");
    let out = home.apply_text(&bad, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.instances[0].replicas: must be at least 1"),
        "{err}"
    );
    assert!(
        !home.path().join("namespaces/default/bad.yaml").exists(),
        "nothing written"
    );
    assert!(
        home.processes().is_empty(),
        "no reconciler started for a refused manifest"
    );

    // PostgreSQL versions this machine lacks, the oldest and the newest PGO has: the package and
    // the command to install it.
    for major in [11, 18] {
        let old = manifest("old", 1, "")
            .replace("postgresVersion: 15", &format!("postgresVersion: {major}"));
        let out = home.apply_text(&old, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(&format!("postgresql-{major} is not installed"))
                && err.contains(&format!("apt-get install postgresql-{major}")),
            "{err}"
        );
        assert!(!home.path().join("namespaces/default/old.yaml").exists());
    }

    let out = home.run(&["scale", "nothere", "--replicas", "2"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("postgrescluster default/nothere not found")
    );
}

#[test]
fn a_killed_reconciler_converges_without_twins() {
    let home = LocalHome::new();
    let out = home.apply_text(&manifest("sturdy", 2, ""), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Kill the reconciler at a few moments while it builds the cluster; each command that
    // changes something after a kill starts a new one (looking starts nothing).
    for pause in [300, 700, 1500] {
        std::thread::sleep(Duration::from_millis(pause));
        home.kill_operator();
        home.ok(&["get", "sturdy"]);
        assert!(
            home.ok(&["status", "sturdy"])
                .contains("Reconciler: not running")
        );
        let again = home.apply_text(&manifest("sturdy", 2, ""), &[]);
        assert!(again.status.success());
        assert!(
            home.ok(&["status", "sturdy"])
                .contains("Reconciler: running (pid")
        );
    }
    home.wait_for(
        "sturdy",
        Duration::from_secs(90),
        "the cluster to converge",
        |s| all_ready(s, 2),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(instance_dirs(&home, "sturdy"), 2, "no duplicate instances");
    assert_eq!(
        home.pids_matching(&["patroni", "/sturdy/instances/"]).len(),
        2,
        "one Patroni per instance"
    );
    assert_eq!(
        home.pids_matching(&["postgres -D", "/sturdy/instances/"])
            .len(),
        2,
        "one postmaster per instance"
    );
    assert_eq!(
        home.pids_matching(&["etcd", "--data-dir"]).len(),
        1,
        "one etcd per home"
    );
}

/// The longest name validation allows (46 with the set's): its socket path would not fit
/// beneath the home, so the test also shows sockets living in short directories.
const MOVING: &str = "moving-and-named-as-long-as-it-may-be";

#[test]
fn an_instance_whose_port_was_taken_moves_to_another() {
    let home = LocalHome::new();
    // The same cheap instance shows Patroni's own log files (spec.patroni.logging).
    let logged = |level: &str| {
        let logging = format!("  patroni:\n    logging: {{storageLimit: 25M{level}}}\n");
        manifest(MOVING, 1, &logging)
    };
    home.apply_ready(&logged(""), "90s");
    let before = home.status(MOVING)["instances"][0].clone();
    let port = before["port"].as_u64().unwrap() as u16;
    patroni_logs_to_its_files_at_the_level_asked(&home, before["name"].as_str().unwrap(), || {
        home.apply_ready(&logged(", level: DEBUG"), "60s")
    });

    // Stop everything, and let another program take the instance's port meanwhile.
    home.kill_operator();
    for pid in home.pids_matching(&["patroni", &format!("/{MOVING}/instances/")]) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !home
        .pids_matching(&[&format!("/{MOVING}/instances/")])
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the instance did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port))
        .expect("the stopped instance's port is free");
    // `status` starts nothing: an apply brings the reconciler back.
    assert!(
        home.apply_text(&logged(", level: DEBUG"), &[])
            .status
            .success()
    );

    let s = home.wait_for(
        MOVING,
        Duration::from_secs(60),
        "the instance to come back on another port",
        |s| all_ready(s, 1) && s["instances"][0]["port"] != before["port"],
    );
    assert_eq!(
        s["instances"][0]["name"], before["name"],
        "the same instance, with its data"
    );
    drop(squatter);
}

/// A settled cluster costs the reconciler a look at its processes a second, and a pass now and
/// then: no walk of `/proc`, no Patroni call a second, no status rewritten. A pass asks one
/// member for Patroni's `/cluster` (the primary), never the others, and finds the same status
/// as asking each. A Patroni that dies meanwhile is still started again at once.
#[test]
fn a_settled_cluster_is_left_alone_yet_watched() {
    use std::os::unix::fs::MetadataExt;
    let home = LocalHome::new();
    home.apply_ready(&manifest("quiet", 2, ""), "120s");
    let status_file = home.path().join("namespaces/default/quiet.status.yaml");
    let written = || {
        let m = std::fs::metadata(&status_file).unwrap();
        (m.ino(), m.mtime_nsec(), m.mtime())
    };
    // Settled: the first backup is listed and the status has stopped changing.
    home.wait_for("quiet", Duration::from_secs(120), "the first backup", |s| {
        s["repos"][0]["backups"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut last = written();
    let mut since = std::time::Instant::now();
    while since.elapsed() < Duration::from_secs(6) {
        assert!(
            std::time::Instant::now() < deadline,
            "the status kept changing"
        );
        std::thread::sleep(Duration::from_millis(200));
        if written() != last {
            (last, since) = (written(), std::time::Instant::now());
        }
    }

    let status = home.status("quiet");
    let api_port = |primary: bool| {
        let i = instances(&status)
            .into_iter()
            .find(|i| (i["role"] == "primary") == primary);
        i.unwrap()["patroniPort"].as_u64().unwrap()
    };
    let (api_port, replica_port) = (api_port(true), api_port(false));
    let operator = std::fs::read_to_string(home.path().join("operator.lock")).unwrap();
    let trace = home.path().join("reconciler.strace");
    let mut strace = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat,connect", "-o"])
        .arg(&trace)
        .args(["-p", operator.trim()])
        .spawn()
        .expect("strace runs (apt-get install strace)");
    // What the status said meanwhile (the replica's replay lag in time among it, which
    // pg_stat_replication moves by microseconds as WAL trickles in: rounded, it stays).
    let read_status = || std::fs::read_to_string(&status_file).unwrap();
    let mut versions = vec![read_status()];
    // A touched manifest brings a pass at once (it may have changed): three passes in 12 s.
    let manifest_file = home.path().join("namespaces/default/quiet.yaml");
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..3 {
        let f = std::fs::File::options().append(true).open(&manifest_file);
        f.unwrap()
            .set_modified(std::time::SystemTime::now())
            .unwrap();
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(100));
            let now = read_status();
            if versions.last() != Some(&now) {
                versions.push(now);
            }
        }
    }
    common::local::signal(&[strace.id() as i32], nix::sys::signal::Signal::SIGINT);
    strace.wait().unwrap();
    let calls = std::fs::read_to_string(&trace).unwrap();
    assert!(
        calls.contains("/proc/"),
        "the trace saw the reconciler's own looks at its processes:\n{calls}"
    );
    assert!(
        !calls.contains("\"/proc\","),
        "the reconciler walked /proc:\n{calls}"
    );
    let patroni_calls = calls.matches(&format!("htons({api_port})")).count();
    assert!(
        patroni_calls <= 8,
        "{patroni_calls} calls to Patroni in 12 s: a settled cluster is not polled every second"
    );
    assert!(
        patroni_calls >= 3,
        "{patroni_calls} calls to the primary's Patroni: each pass asks it for /cluster"
    );
    // A pass after a status write looks at every member, so the replica may be asked then;
    // a /cluster look that saw other than the full look would show here as a change.
    let writes = calls.matches("namespaces/default/.tmp-").count();
    assert!(
        versions.len() == 1,
        "a settled cluster's status changed: {versions:#?}"
    );
    let replica_calls = calls.matches(&format!("htons({replica_port})")).count();
    assert!(
        replica_calls <= writes,
        "the replica's Patroni was asked {replica_calls} times: /cluster from the primary tells all"
    );

    // Patroni's configuration changed behind pgdeck's back: the DCS watch sees the key written
    // and the settled cluster's next pass puts it back (no timer asks Patroni for it).
    tamper_with_config(&home, "quiet");
    let config = format!("http://127.0.0.1:{api_port}/config");
    let since = std::time::Instant::now();
    loop {
        let out = std::process::Command::new("curl")
            .args(["-s", "-m", "5", &config])
            .output()
            .unwrap();
        let now: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if now.is_object() && now.get("tampered").is_none() {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the changed configuration was not put back within 10 s: {now}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Its Patroni killed, it runs again within a few seconds, not at the next settled pass.
    let primary = primary(&home.status("quiet"));
    let patroni = home.patroni_pids("quiet", &primary);
    assert_eq!(patroni.len(), 1);
    common::local::signal(&patroni, nix::sys::signal::Signal::SIGKILL);
    let killed = std::time::Instant::now();
    loop {
        let now = home.patroni_pids("quiet", &primary);
        if now.len() == 1 && now != patroni {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(8),
            "Patroni was not started again within 8 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Patroni writes its log to files of its own in the instance's `patroni-log/` (the account's,
/// private), not to its output; at INFO until `to_debug` asks for DEBUG, which a reload applies.
fn patroni_logs_to_its_files_at_the_level_asked(
    home: &LocalHome,
    instance: &str,
    to_debug: impl FnOnce(),
) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let inst = home
        .path()
        .join("namespaces/default")
        .join(MOVING)
        .join("instances")
        .join(instance);
    let dir = inst.join("patroni-log");
    let read = || std::fs::read_to_string(dir.join("patroni.log")).unwrap_or_default();
    let wait_for = |what: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !read().contains(what) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {what:?} in Patroni's log file:\n{}",
                read()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait_for(" INFO: ");
    assert!(!read().contains(" DEBUG: "), "INFO by default:\n{}", read());
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    let account = std::fs::symlink_metadata(&inst).unwrap().uid();
    assert!(meta.is_dir() && meta.uid() == account);
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let output = std::fs::read_to_string(inst.join("patroni.log")).unwrap_or_default();
    assert!(
        !output.contains("the leader with the lock"),
        "Patroni's log goes to its files, not its output:\n{output}"
    );

    to_debug();
    wait_for(" DEBUG: ");
}

/// A manifest stored with a field the local platform does not support (by an older pgdeck, or
/// by hand): the reconciler starts nothing and status names the field and why; once an apply
/// drops the field the cluster is made.
#[test]
fn a_stored_field_the_platform_does_not_support_starts_nothing_and_says_why() {
    let home = LocalHome::new();
    let pooled = manifest("pooled", 1, "  proxy:\n    pgBouncer: {image: pgbouncer}\n");
    let refused = home.apply_text(&pooled, &[]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(
            "spec.proxy.pgBouncer.image: not supported on the local platform: pgBouncer runs from Debian's package"
        ),
        "{refused:?}"
    );
    let dir = home.path().join("namespaces/default");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pooled.yaml"), &pooled).unwrap();
    let mut operator = home
        .command()
        .arg("operator")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let s = home.wait_for(
        "pooled",
        Duration::from_secs(60),
        "Degraded: UnsupportedFields",
        |s| {
            s["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Degraded" && c["reason"] == "UnsupportedFields")
            })
        },
    );
    let degraded = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap();
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("spec.proxy.pgBouncer.image: not supported on the local platform"),
        "{degraded}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        home.pids_matching(&["/pooled/instances/"]).is_empty(),
        "no instance started"
    );
    assert_eq!(instances(&home.status("pooled")).len(), 0);

    home.apply_ready(&manifest("pooled", 1, ""), "180s");
    let _ = operator.kill();
    let _ = operator.wait();
}

/// A new cluster's `initialize` key taken, empty, while nobody bootstraps (Patroni 3.0.2 lost
/// the answer to its own take so): every member waits "for leader to bootstrap" forever unless
/// the reconciler, seeing no data, no leader and every member waiting for longer than two HA
/// loops, releases the key. Reproduced by writing the key before the cluster's Patroni first
/// starts (the cluster applied paused: etcd and the cluster's etcd user exist, no Patroni runs).
#[test]
fn a_bootstrap_nobody_runs_is_released_and_the_cluster_starts() {
    use common::local::{b64, etcd};
    let home = LocalHome::new();
    // loop_wait 5 s: the stall is released after 10 s (two loops, at least 10 s).
    let spec = "  patroni: {syncPeriodSeconds: 5}\n";
    let paused = home.apply_text(
        &manifest("stalled", 1, &format!("  paused: true\n{spec}")),
        &[],
    );
    assert!(paused.status.success(), "{paused:?}");
    home.wait_for("stalled", Duration::from_secs(60), "Paused", |s| {
        progressing(s) == "Paused"
    });
    let put = etcd(
        home.etcd_port(),
        "/v3/kv/put",
        &serde_json::json!({ "key": b64("/pgdeck/default/stalled/initialize"), "value": "" }),
        Some(&home.etcd_root_token()),
    );
    assert!(put["header"]["revision"].is_string(), "{put}");

    let resumed = home.apply_text(&manifest("stalled", 1, spec), &[]);
    assert!(resumed.status.success(), "{resumed:?}");
    let started = std::time::Instant::now();
    let stuck = home.wait_for(
        "stalled",
        Duration::from_secs(30),
        "BootstrapStalled",
        |s| progressing(s) == "BootstrapStalled",
    );
    assert!(
        with_role(&stuck, "uninitialized").len() == 1,
        "the member waits, uninitialized: {stuck}"
    );
    home.wait_for("stalled", Duration::from_secs(60), "Ready", |s| {
        all_ready(s, 1)
    });
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "released before the stall outlasted its bound"
    );
    let released: Vec<Value> = home
        .events("stalled")
        .into_iter()
        .filter(|e| e["reason"] == "BootstrapStalled")
        .collect();
    assert!(
        released.len() == 1 && released[0]["type"] == "Warning",
        "one Warning event for the released key: {released:?}"
    );
}

fn progressing(status: &Value) -> String {
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let c = conditions.iter().find(|c| c["type"] == "Progressing");
    c.and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .into()
}

/// Add a key of no meaning to `cluster`'s Patroni configuration, written in etcd as root.
fn tamper_with_config(home: &LocalHome, cluster: &str) {
    use common::local::{b64, etcd};
    let (port, token) = (home.etcd_port(), home.etcd_root_token());
    let key = b64(&format!("/pgdeck/default/{cluster}/config"));
    let read = etcd(
        port,
        "/v3/kv/range",
        &serde_json::json!({ "key": key }),
        Some(&token),
    );
    use base64::Engine;
    let value = read["kvs"][0]["value"].as_str().unwrap();
    let value = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap();
    let mut config: Value = serde_json::from_slice(&value).unwrap();
    config["tampered"] = Value::Bool(true);
    let body = serde_json::json!({ "key": key, "value": b64(&config.to_string()) });
    let put = etcd(port, "/v3/kv/put", &body, Some(&token));
    assert!(put["header"]["revision"].is_string(), "{put}");
}
