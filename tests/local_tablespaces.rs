//! Tablespace volumes on the local platform, with real processes: one LOCATION for every
//! instance, each instance's copy in its own directory, through base backups, replay and a
//! switchover.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::local::{LocalHome, all_ready};

const VOLUME: &str = "{accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}";

fn manifest(name: &str, replicas: u32, spec_extra: &str) -> String {
    let volumes = format!(
        "      tablespaceVolumes:\n        - {{name: fast, dataVolumeClaimSpec: {VOLUME}}}\n        - {{name: slow, dataVolumeClaimSpec: {VOLUME}}}\n"
    );
    common::local::manifest(name, replicas, &volumes, spec_extra, "")
}

/// PostgreSQL's version directory in an instance's copy of tablespace `name`.
fn version_dir(home: &LocalHome, instance: &str, name: &str) -> Option<PathBuf> {
    let cluster = instance.split('-').next().unwrap();
    let data = home
        .path()
        .join("namespaces/default")
        .join(cluster)
        .join("instances")
        .join(instance)
        .join("tablespaces")
        .join(name)
        .join("data");
    std::fs::read_dir(&data)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("PG_15_")
        })
}

/// The files under `dir`, counted.
fn files_under(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn names(status: &serde_json::Value) -> Vec<String> {
    status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn each_instance_keeps_its_tablespaces_in_its_own_directory_at_one_location() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: tablespace volumes need pgdeck to run as root (mount namespaces)");
        return;
    }
    let home = LocalHome::new();
    home.apply_ready(&manifest("tbs", 1, ""), "120s");
    let s = home.status("tbs");
    let first = s["primary"].as_str().unwrap().to_string();
    let root = home.path().join("tablespaces");
    let fast = root.join("fast/data").display().to_string();
    let slow = root.join("slow/data").display().to_string();
    let sql = |q: &str| home.superuser("tbs", "postgres", q);
    let location_of_fast =
        || sql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'fast'");

    // Created while the primary is alone: a replica gets it from a backup.
    sql(&format!("CREATE TABLESPACE fast LOCATION '{fast}'"));
    sql("CREATE TABLE t TABLESPACE fast AS SELECT g AS v FROM generate_series(1, 1000) g");
    assert_eq!(location_of_fast(), fast);
    let primary_copy = version_dir(&home, &first, "fast").expect("the primary's own copy");
    assert!(files_under(&primary_copy) > 0);
    assert!(
        std::fs::read_dir(&root).unwrap().next().is_none(),
        "nothing reached the home's tablespaces/ itself: {root:?}"
    );

    // A backup reads the tablespace through the primary's view (outside it the location
    // does not exist), and the new replica restores it into its own.
    home.wait_for("tbs", Duration::from_secs(90), "the first backup", |s| {
        s["repos"][0]["backups"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    });
    home.ok(&["backup", "tbs", "--type", "full", "--wait"]);
    let s = home.status("tbs");
    assert_eq!(s["manualBackup"]["succeeded"], true, "{s}");
    home.ok(&["scale", "tbs", "--replicas", "2", "--wait"]);
    let s = home.settle("tbs", 2, "a replica built after CREATE TABLESPACE");
    let replica = names(&s).into_iter().find(|n| *n != first).unwrap();
    let replica_copy = version_dir(&home, &replica, "fast").expect("the replica's own copy");
    assert_ne!(
        std::fs::metadata(&primary_copy).unwrap().ino(),
        std::fs::metadata(&replica_copy).unwrap().ino(),
        "two directories, not one"
    );
    assert!(files_under(&replica_copy) > 0, "{replica_copy:?} is empty");
    let count = |instance: &str| home.sql_on("tbs", instance, "postgres", "SELECT count(*) FROM t");
    assert_eq!(count(&replica).unwrap(), "1000");

    // Created while the replica runs: it replays CREATE TABLESPACE into its own directory.
    sql(&format!("CREATE TABLESPACE slow LOCATION '{slow}'"));
    sql("CREATE TABLE u (v int) TABLESPACE slow");
    sql("INSERT INTO u SELECT generate_series(1, 500)");
    let replayed = || home.sql_on("tbs", &replica, "postgres", "SELECT count(*) FROM u");
    home.wait_for("tbs", Duration::from_secs(60), "u on the replica", |_| {
        replayed().is_ok_and(|n| n == "500")
    });
    let (a, b) = (
        version_dir(&home, &first, "slow").expect("the primary's slow"),
        version_dir(&home, &replica, "slow").expect("the replica's slow"),
    );
    assert_ne!(
        std::fs::metadata(&a).unwrap().ino(),
        std::fs::metadata(&b).unwrap().ino()
    );
    assert!(files_under(&b) > 0);
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());

    // A switchover: the new primary writes to its own copy, the old one follows.
    home.ok(&["switchover", "tbs", "--to", &replica, "--wait"]);
    let s = home.settle("tbs", 2, "the old primary following");
    assert_eq!(s["primary"], replica.as_str(), "{s}");
    sql("INSERT INTO t SELECT generate_series(1, 1000)");
    home.wait_for(
        "tbs",
        Duration::from_secs(60),
        "t on the old primary",
        |_| count(&first).is_ok_and(|n| n == "2000"),
    );
    assert_eq!(location_of_fast(), fast);
    assert!(all_ready(&home.status("tbs"), 2));

    // Reinit: Patroni removes the old primary's copies (in its view: its own) and builds
    // them again from the new primary.
    let stale = version_dir(&home, &first, "fast").unwrap();
    std::fs::write(stale.join("pgdeck-marker"), "").unwrap();
    home.ok(&["reinit", "tbs", &first, "--wait", "--timeout", "120s"]);
    home.settle("tbs", 2, "the reinitialized replica");
    home.wait_for("tbs", Duration::from_secs(60), "t after reinit", |_| {
        count(&first).is_ok_and(|n| n == "2000")
    });
    let rebuilt = version_dir(&home, &first, "fast").expect("rebuilt in its own directory");
    assert!(!rebuilt.join("pgdeck-marker").exists() && files_under(&rebuilt) > 0);
    assert!(
        version_dir(&home, &replica, "fast").is_some(),
        "the primary's copy stays"
    );
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());

    // A clone restores the tablespaces from the source's backups into its own instance.
    sql("SELECT pg_switch_wal()");
    let source =
        "  dataSource:\n    postgresCluster:\n      clusterName: tbs\n      repoName: repo1\n";
    home.apply_ready(&manifest("tbsclone", 1, source), "180s");
    let clone = home.status("tbsclone")["primary"]
        .as_str()
        .unwrap()
        .to_string();
    let rows = home.sql_on("tbsclone", &clone, "postgres", "SELECT count(*) FROM t");
    assert!(
        rows.as_ref()
            .is_ok_and(|n| n.parse::<u32>().unwrap() >= 1000),
        "{rows:?}"
    );
    assert!(files_under(&version_dir(&home, &clone, "fast").expect("the clone's own copy")) > 0);
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());

    // Status accounts for each volume against its size, as for the data volume.
    let s = home.status("tbs");
    for i in s["instances"].as_array().unwrap() {
        let volumes = i["tablespaceVolumes"]
            .as_array()
            .expect("tablespace volumes");
        assert_eq!(volumes.len(), 2, "{i}");
        assert_eq!(volumes[0]["name"], "fast");
        assert_eq!(volumes[0]["location"], fast.as_str());
        assert_eq!(volumes[0]["volume"]["capacityBytes"], 1i64 << 30);
    }
}
