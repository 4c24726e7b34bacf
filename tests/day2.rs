//! Day-2 operations on the local platform, with real processes: rolling changes, volume sizes,
//! scheduled backups, and point-in-time restores into new clusters.

use crate::common;

use std::time::Duration;

use common::local::{LocalHome, all_ready, manifest};
use serde_json::Value;

fn wait_first_backup(home: &LocalHome, cluster: &str) {
    home.wait_for(cluster, Duration::from_secs(90), "the first backup", |s| {
        s["repos"][0]["backups"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    });
}

#[test]
fn a_memory_change_rolls_out_replica_first_and_loses_nothing() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("roll", 2, "", "", ""), "180s");
    let before = home.status("roll");
    let first_primary = before["primary"].as_str().unwrap().to_string();
    let uri = home.ok(&["uri", "roll"]);
    home.psql(
        &uri,
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 1000)",
    );

    // A memory limit: shared_buffers and effective_cache_size follow, and every instance
    // restarts, replica first.
    let limited = manifest(
        "roll",
        2,
        "      resources: {limits: {memory: 1Gi}}\n",
        "",
        "",
    );
    home.apply_ready(&limited, "180s");
    let s = home.status("roll");
    assert!(
        s["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["pendingRestart"] == false),
        "{s}"
    );
    let reasons: Vec<(String, String)> = home
        .events("roll")
        .iter()
        .filter(|e| {
            ["InstanceRestarted", "RollingSwitchover", "Switchover"]
                .contains(&e["reason"].as_str().unwrap())
        })
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        [
            "InstanceRestarted",
            "RollingSwitchover",
            "Switchover",
            "InstanceRestarted"
        ],
        "{reasons:?}"
    );
    assert!(
        !reasons[0].1.contains(&first_primary),
        "the replica restarts first: {reasons:?}"
    );
    assert!(
        reasons[3].1.contains(&first_primary),
        "the old primary restarts last: {reasons:?}"
    );
    assert_ne!(
        s["primary"],
        first_primary.as_str(),
        "a switchover to an updated replica came between"
    );
    for replica in [false, true] {
        let uri = home.ok(if replica {
            &["uri", "roll", "--replica"][..]
        } else {
            &["uri", "roll"][..]
        });
        assert_eq!(home.psql(&uri, "SHOW shared_buffers"), "256MB");
        assert_eq!(home.psql(&uri, "SHOW effective_cache_size"), "768MB");
    }
    assert_eq!(
        home.psql(&home.ok(&["uri", "roll"]), "SELECT count(*) FROM t"),
        "1000",
        "no row lost"
    );

    // A parameter that only needs a reload: applied without restarting anything. PGO 5.8's
    // `spec.config.parameters` ranks above the Patroni section's.
    let restarts = |home: &LocalHome| {
        home.events("roll")
            .iter()
            .filter(|e| e["reason"] == "InstanceRestarted")
            .count()
    };
    let before_reload = restarts(&home);
    let tuned = manifest(
        "roll",
        2,
        "      resources: {limits: {memory: 1Gi}}\n",
        "  patroni:\n    dynamicConfiguration:\n      postgresql:\n        parameters:\n          work_mem: 12MB\n          maintenance_work_mem: 70MB\n  config:\n    parameters:\n      work_mem: 13MB\n",
        "",
    );
    home.apply_ready(&tuned, "180s");
    let uri = home.ok(&["uri", "roll"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while home.psql(&uri, "SHOW work_mem") != "13MB" {
        assert!(
            std::time::Instant::now() < deadline,
            "work_mem was not applied"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(home.psql(&uri, "SHOW maintenance_work_mem"), "70MB");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        restarts(&home),
        before_reload,
        "a reload-only parameter restarts nothing"
    );
    assert!(
        home.status("roll")["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["pendingRestart"] == false)
    );

    // Volumes: usage is shown against the size, and a shrink is refused, changing nothing.
    let s = home.wait_for("roll", Duration::from_secs(40), "volume usage", |s| {
        s["instances"][0]["volume"]["usedBytes"]
            .as_i64()
            .is_some_and(|u| u > 0)
    });
    assert_eq!(
        s["instances"][0]["volume"]["capacityBytes"],
        1024 * 1024 * 1024
    );
    assert!(
        s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "VolumePressure" && c["status"] == "False")
    );
    let stored = std::fs::read_to_string(home.path().join("namespaces/default/roll.yaml")).unwrap();
    let shrunk = tuned.replace("dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}", "dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 512Mi}}}");
    let out = home.apply_text(&shrunk, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.instances[0].dataVolumeClaimSpec.resources.requests.storage: shrinking a volume is not possible"), "{err}");
    assert_eq!(
        std::fs::read_to_string(home.path().join("namespaces/default/roll.yaml")).unwrap(),
        stored
    );
}

#[test]
fn point_in_time_restores_and_clones_from_kept_backups() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("origin", 1, "", "", ""), "180s");
    wait_first_backup(&home, "origin");
    let uri = home.ok(&["uri", "origin"]);
    home.psql(
        &uri,
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 100)",
    );
    std::thread::sleep(Duration::from_millis(1100));
    let noted = home.psql(&uri, "SELECT now()");
    std::thread::sleep(Duration::from_millis(1100));
    home.psql(&uri, "INSERT INTO t SELECT generate_series(101, 200)");
    // Let the WAL that holds the rows reach the repository now, not at archive_timeout.
    home.superuser("origin", "postgres", "SELECT pg_switch_wal()");

    let pitr = manifest(
        "pitr",
        1,
        "",
        &format!(
            "  dataSource:\n    postgresCluster:\n      clusterName: origin\n      repoName: repo1\n      options: [\"--type=time\", '--target=\"{noted}\"']\n"
        ),
        "",
    );
    home.apply_ready(&pitr, "180s");
    let judged = condition(&home.status("pitr"), "DataSource");
    assert_eq!(
        (&judged["status"], &judged["reason"]),
        (&Value::from("True"), &Value::from("TargetReached")),
        "{judged}"
    );
    assert_eq!(
        home.superuser("pitr", "origin", "SELECT count(*), max(i) FROM t"),
        "100|100",
        "exactly the rows committed before the target"
    );
    assert_eq!(
        home.superuser("pitr", "postgres", "SELECT pg_is_in_recovery()"),
        "f",
        "promoted: a cluster of its own"
    );
    // Independent: its own repository, and writes of its own.
    wait_first_backup(&home, "pitr");
    home.superuser("pitr", "origin", "INSERT INTO t VALUES (999)");
    assert_eq!(
        home.superuser("origin", "origin", "SELECT count(*) FROM t WHERE i = 999"),
        "0"
    );

    // Deleted with its backups kept, origin can still be cloned: to its latest state.
    home.ok(&["delete", "origin", "--keep-backups", "--wait"]);
    home.apply_ready(
        &manifest(
            "again",
            1,
            "",
            "  dataSource:\n    postgresCluster:\n      clusterName: origin\n      repoName: repo1\n",
            "",
        ),
        "180s",
    );
    // Ready only once Patroni has finished with the restored instance (its post-bootstrap
    // restarts PostgreSQL): the first query is served, and the rows are there.
    assert_eq!(
        rows(&home, "again"),
        "200",
        "{}",
        recovery_log(&home, "again")
    );
}

/// pgBackRest exits 42, not 1, when it cannot read a segment that is in the repository;
/// PostgreSQL took that for the end of the archive and promoted the clone without the rest.
/// A segment simply missing in the middle of the archive is "not found" (1): PostgreSQL ends
/// recovery there and promotes, and the clone must then say so rather than be Ready.
#[test]
fn a_clone_stops_at_an_unreadable_segment_and_is_never_ready_past_a_missing_one() {
    use std::os::unix::fs::PermissionsExt;
    let home = LocalHome::new();
    home.apply_ready(&manifest("origin", 1, "", "", ""), "180s");
    wait_first_backup(&home, "origin");
    home.psql(
        &home.ok(&["uri", "origin"]),
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 200)",
    );
    // The segment that holds the rows, in the repository before origin goes.
    let sql = |q: &str| home.superuser("origin", "postgres", q);
    let segment = sql("SELECT pg_walfile_name(pg_switch_wal())");
    // Two more segments of rows: the first goes missing later, the second stays behind it.
    let more = |from: i32| {
        home.superuser(
            "origin",
            "origin",
            &format!(
                "INSERT INTO t SELECT generate_series({from}, {})",
                from + 99
            ),
        );
        sql("SELECT pg_walfile_name(pg_switch_wal())")
    };
    let (missing, later) = (more(201), more(301));
    home.wait_for(
        "origin",
        Duration::from_secs(60),
        "the rows archived",
        |_| sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= later,
    );
    home.ok(&["delete", "origin", "--keep-backups", "--wait"]);
    let archived: Vec<_> = glob_kept_segment(&home, &segment);
    assert_eq!(archived.len(), 1, "{segment} in the kept repository");
    let set_mode = |mode| {
        std::fs::set_permissions(&archived[0], std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_mode(0o000);

    let clone = manifest(
        "again",
        1,
        "",
        "  dataSource:\n    postgresCluster:\n      clusterName: origin\n      repoName: repo1\n",
        "",
    );
    let out = home.apply_text(&clone, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // PostgreSQL stops at the segment it cannot read, and the clone is not Ready meanwhile.
    let stopped = format!("could not restore file \"{segment}\" from archive");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !instance_logs(&home, "again").contains(&stopped) {
        let s = home.status("again");
        assert!(
            !all_ready(&s, 1),
            "Ready without {segment}: {}",
            recovery_log(&home, "again")
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no stop at {segment}: {}",
            recovery_log(&home, "again")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!all_ready(&home.status("again"), 1));
    // Status says why, and where Patroni put the failed attempt's data directory.
    let s = home.wait_for("again", Duration::from_secs(60), "why in status", |s| {
        condition(s, "DataSource")["reason"] == "BootstrapFailed"
    });
    let why = condition(&s, "DataSource")["message"].clone();
    let why = why.as_str().unwrap_or_default();
    assert!(
        why.contains(&stopped) && why.contains("data.failed"),
        "{why}"
    );
    assert!(
        home.events("again")
            .iter()
            .any(|e| e["reason"] == "BootstrapFailed" && e["type"] == "Warning")
    );

    // Readable again: the bootstrap is retried and the clone comes up with every row.
    set_mode(0o644);
    home.wait_for("again", Duration::from_secs(240), "the clone Ready", |s| {
        all_ready(s, 1)
    });
    assert_eq!(
        rows(&home, "again"),
        "400",
        "{}",
        recovery_log(&home, "again")
    );
    let s = home.wait_for("again", Duration::from_secs(60), "replay judged", judged);
    let done = condition(&s, "DataSource");
    assert_eq!(done["reason"], "ReplayComplete", "{s}");
    assert!(
        done["message"].as_str().unwrap().contains("data.failed"),
        "the failed attempt's directory is still reported: {done}"
    );
    assert_eq!(condition(&s, "Ready")["status"], "True", "{s}");

    // A segment gone from the middle of the archive, later ones still there: the clone
    // promotes where it ends, and is told, not Ready.
    let gone: Vec<_> = glob_kept_segment(&home, &missing);
    assert_eq!(gone.len(), 1, "{missing} in the kept repository");
    let aside = home.path().join("set-aside");
    std::fs::rename(&gone[0], &aside).unwrap();
    assert_eq!(glob_kept_segment(&home, &later).len(), 1, "{later} stays");
    let out = home.apply_text(&clone.replace("name: again", "name: gap"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = home.wait_for("gap", Duration::from_secs(240), "replay judged", judged);
    let judged = condition(&s, "DataSource");
    assert_eq!(
        (&judged["status"], &judged["reason"]),
        (&Value::from("False"), &Value::from("WALGap")),
        "{s}\n{}",
        recovery_log(&home, "gap")
    );
    let message = judged["message"].as_str().unwrap();
    let archived_to = message
        .split("archive holds up to ")
        .nth(1)
        .map(|rest| &rest[..24.min(rest.len())]);
    assert!(
        message.contains(&format!("segment {missing} is missing"))
            && archived_to >= Some(later.as_str())
            && message.contains("replay ended at "),
        "{message}"
    );
    let ready = condition(&s, "Ready");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&Value::from("False"), &Value::from("WALGap")),
        "{s}"
    );
    assert_eq!(condition(&s, "Degraded")["status"], "True", "{s}");
    assert!(
        home.events("gap")
            .iter()
            .any(|e| e["reason"] == "WALGap" && e["type"] == "Warning"),
        "{:?}",
        home.events("gap")
    );
    // Kept running for the DBA to inspect: everything before the gap is there, nothing after.
    assert_eq!(rows(&home, "gap"), "200", "{}", recovery_log(&home, "gap"));
    // Still not Ready a settled pass later.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(condition(&home.status("gap"), "Ready")["status"], "False");

    // The DBA accepts what replay reached by asking for exactly that LSN.
    let ended = message
        .split("replay ended at ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    let accepted = clone.replace("name: again", "name: gap").replace(
        "repoName: repo1\n",
        &format!("repoName: repo1\n      options: [\"--type=lsn\", \"--target={ended}\"]\n"),
    );
    let out = home.apply_text(&accepted, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = home.wait_for("gap", Duration::from_secs(60), "accepted", |s| {
        condition(s, "Ready")["status"] == "True"
    });
    assert_eq!(
        condition(&s, "DataSource")["reason"],
        "TargetReached",
        "{s}"
    );
}

/// The DataSource condition says how replay went (not that it is still under way).
fn judged(status: &Value) -> bool {
    condition(status, "DataSource")["reason"]
        .as_str()
        .is_some_and(|r| !["Replaying", "BootstrapFailed"].contains(&r))
}

/// Condition `type_` of a cluster's status (`Null` when absent).
fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The rows of table `t` in the database `origin` of the restored `cluster`, asked once.
fn rows(home: &LocalHome, cluster: &str) -> String {
    home.try_superuser(cluster, "origin", "SELECT count(*) FROM t")
        .unwrap_or_else(|e| panic!("{e}\n{}", recovery_log(home, cluster)))
}

/// The file that holds WAL `segment` in the kept repositories of `home`.
fn glob_kept_segment(home: &LocalHome, segment: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![home.path().join("kept")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{segment}-"))
            {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_scheduled_incremental_backup_runs_on_time() {
    let home = LocalHome::new();
    home.apply_ready(
        &manifest(
            "sched",
            1,
            "",
            "",
            "          schedules:\n            incremental: \"* * * * *\"\n",
        ),
        "180s",
    );
    wait_first_backup(&home, "sched");
    // Due at the next minute: in status within a minute of it.
    let s = home.wait_for(
        "sched",
        Duration::from_secs(135),
        "a scheduled incremental backup",
        |s| {
            s["repos"][0]["backups"]
                .as_array()
                .is_some_and(|b| b.iter().any(|b| b["type"] == "incr"))
        },
    );
    let incr = s["repos"][0]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "incr")
        .unwrap()
        .clone();
    let stop: jiff::Timestamp = incr["stop"].as_str().unwrap().parse().unwrap();
    let start: jiff::Timestamp = incr["start"].as_str().unwrap().parse().unwrap();
    // "* * * * *" is due at each minute's start: the run begins within seconds of one.
    assert!(
        start.as_second() % 60 <= 10,
        "started {}s after the minute: {incr}",
        start.as_second() % 60
    );
    assert!(stop.as_second() - start.as_second() < 60, "{incr}");
    assert!(
        incr["sizeBytes"].as_i64().unwrap() > 0 && incr["walStart"].is_string(),
        "{incr}"
    );
    assert!(home.events("sched").iter().any(|e| {
        e["reason"] == "BackupCompleted"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("scheduled incr backup")
    }));
    assert!(
        s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Backup" && c["status"] == "True")
    );
}

/// A ConfigMap document of `init.sql` keys, for a multi-document manifest.
fn init_sql_config_map(name: &str, keys: &[(&str, &str)]) -> String {
    let data: String = keys
        .iter()
        .map(|(k, sql)| format!("  {k}: {}\n", serde_json::to_string(sql).unwrap()))
        .collect();
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{data}---\n")
}

fn init_sql_condition(s: &Value) -> (String, String) {
    let c = s["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "DatabaseInitSQL"))
        .cloned()
        .unwrap_or_default();
    (
        c["reason"].as_str().unwrap_or_default().to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn init_sql_runs_once_and_a_failure_waits_for_new_sql() {
    let home = LocalHome::new();
    let insert = "CREATE TABLE IF NOT EXISTS runs (at timestamptz DEFAULT now());\nINSERT INTO runs DEFAULT VALUES;\n";
    let with_init = |name: &str, key: &str| {
        manifest(
            "sql",
            1,
            "",
            &format!("  databaseInitSQL: {{name: {name}, key: {key}}}\n"),
            "",
        )
    };
    let runs = |home: &LocalHome| home.superuser("sql", "postgres", "SELECT count(*) FROM runs");

    // One file: the ConfigMap and the cluster that runs its SQL.
    let text =
        init_sql_config_map("init", &[("init.sql", insert)]) + &with_init("init", "init.sql");
    let out = home.apply_text(&text, &["--wait", "--timeout", "180s"]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("configmap/init created"), "{printed}");
    let s = home.wait_for("sql", Duration::from_secs(60), "the init SQL", |s| {
        s["databaseInitSQL"] == "init"
    });
    assert_eq!(init_sql_condition(&s).0, "Succeeded", "{s}");
    assert_eq!(runs(&home), "1");
    let listed = home.ok(&["get", "configmaps"]);
    assert!(
        listed.contains("init") && listed.contains("DATA"),
        "{listed}"
    );

    // Once: not again after the reconciler and PostgreSQL restart, nor when the ConfigMap
    // changes afterwards.
    home.kill_operator();
    let primary = s["primary"].as_str().unwrap().to_string();
    common::local::signal(
        &home.postgres_pids("sql", &primary),
        nix::sys::signal::Signal::SIGKILL,
    );
    let changed = init_sql_config_map("init", &[("init.sql", &format!("{insert}{insert}"))]);
    assert!(home.apply_text(&changed, &[]).status.success());
    home.ok(&["operator", "stop"]);
    home.apply_ready(&with_init("init", "init.sql"), "180s");
    // Patroni starts PostgreSQL again within its loop; the reconciler then has a few passes.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while let Err(e) = home.try_superuser("sql", "postgres", "SELECT 1") {
        assert!(
            std::time::Instant::now() < deadline,
            "PostgreSQL is not back: {e}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(runs(&home), "1", "the init SQL ran again");

    // Without the field the record goes (PGO's way to run init SQL again) ...
    home.apply_ready(&manifest("sql", 1, "", "", ""), "180s");
    home.wait_for("sql", Duration::from_secs(30), "the record to go", |s| {
        s["databaseInitSQL"].is_null() && init_sql_condition(s).0.is_empty()
    });
    // ... a ConfigMap that is not there is named and waited for ...
    home.apply_ready(&with_init("fix", "fix.sql"), "180s");
    let s = home.wait_for("sql", Duration::from_secs(30), "a missing ConfigMap", |s| {
        init_sql_condition(s).0 == "ConfigMapNotFound"
    });
    assert!(init_sql_condition(&s).1.contains("default/fix"), "{s}");
    // ... failing SQL reports PostgreSQL's message, once, and is not run again ...
    let failing = format!("{insert}SELECT * FROM nope;\n");
    let out = home.apply_text(&init_sql_config_map("fix", &[("fix.sql", &failing)]), &[]);
    assert!(out.status.success());
    let s = home.wait_for("sql", Duration::from_secs(60), "the failure", |s| {
        init_sql_condition(s).0 == "DatabaseInitSQLFailed"
    });
    let message = init_sql_condition(&s).1;
    assert!(
        message.contains("relation \"nope\" does not exist"),
        "{message}"
    );
    assert!(s["databaseInitSQL"].is_null(), "{s}");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        runs(&home),
        "2",
        "the failing SQL ran once, up to its error"
    );
    let failures = home
        .events("sql")
        .iter()
        .filter(|e| e["reason"] == "DatabaseInitSQLFailed" && e["type"] == "Warning")
        .count();
    assert_eq!(failures, 1);
    // ... until the SQL changes.
    let fixed = init_sql_config_map("fix", &[("fix.sql", insert)]);
    assert!(home.apply_text(&fixed, &[]).status.success());
    home.wait_for("sql", Duration::from_secs(60), "the fixed SQL", |s| {
        s["databaseInitSQL"] == "fix"
    });
    assert_eq!(runs(&home), "3");
    home.ok(&["delete", "configmap", "fix"]);
    assert!(!home.ok(&["get", "configmaps"]).contains("fix"));
}

/// What every instance of `cluster` logged (Patroni's log holds PostgreSQL's too).
fn instance_logs(home: &LocalHome, cluster: &str) -> String {
    let dir = home
        .path()
        .join("namespaces/default")
        .join(cluster)
        .join("instances");
    let mut out = String::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let log = entry.path().join("patroni.log");
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| format!("{e}"));
        out += &format!("== {}\n{text}\n", log.display());
    }
    out
}

/// What the instances of `cluster` logged about their restore and recovery: seen under load, a
/// clone once came up without the rows its source's archive held.
fn recovery_log(home: &LocalHome, cluster: &str) -> String {
    let wanted = [
        "== ",
        "restore",
        "recovery",
        "redo",
        "archive",
        "promot",
        "ERROR",
        "FATAL",
        "bootstrap",
    ];
    let text = instance_logs(home, cluster);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| wanted.iter().any(|w| l.contains(w)))
        .collect();
    format!("status: {}\n{}", home.status(cluster), lines.join("\n"))
}
