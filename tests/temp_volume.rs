//! `volumes.temp` on Kubernetes points PostgreSQL's temporary files at a volume of their own
//! with a link the pod's start and Patroni's callbacks make (`plan::temp_volume`). Those
//! scripts run here, as the `postgres` account, on a real PostgreSQL 15, at test paths: a
//! spilled sort writes to the volume, whatever stood in the link's place is replaced (never
//! followed), and a base backup leaves the link out, as the design relies on.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::pod_postgres::account;
use pgdeck::plan::temp_volume;

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(program: &str, args: &[&str]) -> Output {
    let (uid, gid) = account();
    let out = Command::new(program)
        .args(args)
        .uid(uid)
        .gid(gid)
        .env("HOME", "/tmp")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn bash(script: &str) {
    as_postgres("bash", &["-c", script]);
}

/// What PostgreSQL has at `base/pgsql_tmp`: the link's target, or `None` for anything else.
fn link_of(data: &Path) -> Option<String> {
    let link = std::fs::read_link(data.join("base/pgsql_tmp")).ok()?;
    Some(link.display().to_string())
}

fn pg_ctl(data: &Path, root: &Path, action: &str) {
    let data = data.to_str().unwrap();
    let log = root.join("log");
    let options = format!(
        "-c unix_socket_directories={} -c listen_addresses=",
        root.display()
    );
    let mut args = vec![
        "-D",
        data,
        "-l",
        log.to_str().unwrap(),
        "-w",
        "-o",
        &options,
    ];
    args.push(action);
    as_postgres(&format!("{BIN}/pg_ctl"), &args);
}

/// Stops the PostgreSQL on `0` however the test ends.
struct Stopped<'a>(&'a Path);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{BIN}/pg_ctl"), "-D"])
            .arg(self.0)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

#[test]
fn temporary_files_go_to_the_volume_through_a_link_made_before_and_after_start() {
    let dir = tempfile::Builder::new()
        .prefix("pgdeck-test-tempvol-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let (uid, gid) = account();
    std::os::unix::fs::chown(root, Some(uid), Some(gid)).unwrap();
    let data = root.join("data");
    let volume = root.join("pgtmp");
    let (d, v) = (data.to_str().unwrap(), volume.to_str().unwrap());
    let target = temp_volume::directory(v);

    // Before the first start there is no data directory: the script only makes the volume's.
    bash(&temp_volume::before_start(d, v));
    assert!(Path::new(&target).is_dir() && !data.exists());

    as_postgres(&format!("{BIN}/initdb"), &["-D", d, "-U", "postgres"]);
    let _stopped = Stopped(&data);
    bash(&temp_volume::before_start(d, v));
    assert_eq!(link_of(&data).as_deref(), Some(target.as_str()));

    // A sort larger than work_mem spills, to the volume: seen while its cursor is open.
    pg_ctl(&data, root, "start");
    let session = format!(
        "SET work_mem = '64kB';\nBEGIN;\n\
         DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 300000) g ORDER BY g DESC;\n\
         FETCH 1 FROM c;\n\\! ls {target}\nCOMMIT;\n"
    );
    let socket = root.to_str().unwrap();
    let psql = |sql: &str| {
        let out = as_postgres(
            &format!("{BIN}/psql"),
            &["-X", "-h", socket, "-d", "postgres", "-At", "-c", sql],
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let script = root.join("spill.sql");
    std::fs::write(&script, session).unwrap();
    let out = as_postgres(
        &format!("{BIN}/psql"),
        &[
            "-X",
            "-h",
            socket,
            "-d",
            "postgres",
            "-At",
            "-f",
            script.to_str().unwrap(),
        ],
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains("pgsql_tmp"),
        "no temporary file on the volume: {listed}"
    );
    assert!(psql("SELECT 1").starts_with('1'));

    // A base backup (a new replica's) leaves the link out: each instance makes its own.
    let copy = root.join("copy");
    as_postgres(
        &format!("{BIN}/pg_basebackup"),
        &["-h", socket, "-D", copy.to_str().unwrap(), "-X", "fetch"],
    );
    let copied = copy.join("base/pgsql_tmp");
    assert!(
        copied.symlink_metadata().is_err(),
        "the base backup copied {copied:?}"
    );

    // Patroni's callback, as Patroni runs it: split as a shell would, three arguments added.
    // On a data directory with no link (that copy), it makes one; where something is there
    // already (PostgreSQL made the directory first), it leaves it.
    let callbacks = temp_volume::callbacks(copy.to_str().unwrap(), v);
    let mut command = shlex::split(callbacks["on_start"].as_str().unwrap()).unwrap();
    command.extend(["on_start", "replica", "c"].map(String::from));
    let run = |command: &[String]| {
        let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
        as_postgres(&command[0], &args);
    };
    run(&command);
    assert_eq!(link_of(&copy).as_deref(), Some(target.as_str()));
    std::fs::remove_file(copy.join("base/pgsql_tmp")).unwrap();
    bash(&format!("mkdir {}/base/pgsql_tmp", copy.display()));
    run(&command);
    assert_eq!(
        link_of(&copy),
        None,
        "the callback replaced a directory in use"
    );

    // Before the next start: a directory PostgreSQL made goes (its files are a stopped
    // PostgreSQL's temporary files), and a link elsewhere is replaced without being followed.
    pg_ctl(&data, root, "stop");
    std::fs::remove_file(data.join("base/pgsql_tmp")).unwrap();
    bash(&format!(
        "mkdir {d}/base/pgsql_tmp && touch {d}/base/pgsql_tmp/pgsql_tmp1.0"
    ));
    bash(&temp_volume::before_start(d, v));
    assert_eq!(link_of(&data).as_deref(), Some(target.as_str()));
    let elsewhere = root.join("elsewhere");
    bash(&format!("mkdir {0} && touch {0}/kept", elsewhere.display()));
    std::fs::remove_file(data.join("base/pgsql_tmp")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, data.join("base/pgsql_tmp")).unwrap();
    bash(&temp_volume::before_start(d, v));
    assert_eq!(link_of(&data).as_deref(), Some(target.as_str()));
    assert!(
        elsewhere.join("kept").exists(),
        "the script followed a link"
    );

    // And PostgreSQL starts on it again.
    pg_ctl(&data, root, "start");
    assert!(psql("SELECT 1").starts_with('1'));
    pg_ctl(&data, root, "stop");
}

/// On the local platform each instance's `temp/` takes its temporary files: the link is there
/// on the primary (made before Patroni started, or by its callback on the bootstrap) and on a
/// replica made by a base backup (which leaves the link out: the callback made it), and a
/// spilled sort on either writes into that instance's own `temp/`.
#[test]
fn a_local_clusters_instances_spill_to_their_own_temp_volume() {
    use crate::common::local::{LocalHome, manifest};
    let home = LocalHome::new();
    let temp = "      volumes: {temp: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}\n";
    home.apply_ready(&manifest("spill", 2, temp, "", ""), "180s");
    let status = home.settle("spill", 2, "a primary and a replica");
    let instances = status["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    for instance in instances {
        let name = instance["name"].as_str().unwrap();
        let dir = home
            .path()
            .join("namespaces/default/spill/instances")
            .join(name);
        let target = dir.join("temp/pgsql_tmp").display().to_string();
        let data = dir.join("data");
        home.wait_for(
            "spill",
            std::time::Duration::from_secs(30),
            "the link",
            |_| link_of(&data).as_deref() == Some(target.as_str()),
        );
        let mut psql = home
            .psql_on("spill", name, "postgres", "SET work_mem = '64kB'")
            .unwrap();
        psql.args([
            "-c",
            "BEGIN",
            "-c",
            "DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 300000) g ORDER BY g DESC",
            "-c",
            "FETCH 1 FROM c",
            "-c",
            &format!("\\! ls {target}"),
            "-c",
            "COMMIT",
        ]);
        let out = psql.output().unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && listed.lines().any(|l| l.starts_with("pgsql_tmp")),
            "{name}: no temporary file in {target}: {listed}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
