//! The local platform against a hostile neighbour: control planes that refuse strangers, and a
//! tenant (the database account, which any SQL superuser can run programs as) who plants links
//! and forged records where pgdeck, as root, works. Real etcd, Patroni and PostgreSQL.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::local::{LocalHome, b64, etcd};
use pgdeck::platform::local::home::InstanceDir;
use serde_json::{Value, json};

/// The tenant's tricks need two accounts: pgdeck as root, the database as `postgres`.
fn skip_unless_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    eprintln!("skipping {test}: pgdeck must run as root for the database account to differ");
    true
}

/// `curl` as a stranger (or with `user`): the HTTP status and body.
fn curl(method: &str, url: &str, body: &str, user: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-m", "10", "-w", "\n%{http_code}", "-X", method, url]);
    if !body.is_empty() {
        c.args(["-H", "Content-Type: application/json", "-d", body]);
    }
    if let Some(u) = user {
        c.args(["-u", u]);
    }
    let out = String::from_utf8(c.output().unwrap().stdout).unwrap();
    let (text, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), text.to_string())
}

/// Run `script` as the database account; says whether it succeeded.
fn as_postgres(script: &str) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "sh", "-c", script])
        .status()
        .unwrap()
        .success()
}

fn all_ready(status: &Value, n: usize) -> bool {
    let list = status["instances"].as_array().cloned().unwrap_or_default();
    list.len() == n && list.iter().all(|i| i["ready"] == true) && status["primary"].is_string()
}

fn instance<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap()
}

fn api(status: &Value, name: &str) -> String {
    format!(
        "http://127.0.0.1:{}",
        instance(status, name)["patroniPort"].as_i64().unwrap()
    )
}

fn cluster_dir(home: &LocalHome, name: &str) -> PathBuf {
    home.path().join("namespaces/default").join(name)
}

fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn control_planes_refuse_strangers_and_pgdeck_still_switches_over() {
    if skip_unless_root("control_planes_refuse_strangers") {
        return;
    }
    let home = LocalHome::new();
    home.apply_ready(&common::local::manifest("guarded", 2, "", "", ""), "180s");
    let s = home.wait_for("guarded", Duration::from_secs(60), "two ready", |s| {
        all_ready(s, 2)
    });
    let primary = s["primary"].as_str().unwrap().to_string();
    let replica = s["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .find(|n| *n != primary)
        .unwrap();

    // Patroni: reading stays open, changing anything asks for the cluster's credentials.
    let (code, before) = curl("GET", &format!("{}/config", api(&s, &primary)), "", None);
    assert_eq!(code, 200, "{before}");
    let evil_patch =
        r#"{"ttl": 99, "postgresql": {"parameters": {"archive_command": "touch /tmp/pwned"}}}"#;
    let switchover = json!({ "leader": primary, "candidate": replica }).to_string();
    let failover = json!({ "candidate": replica }).to_string();
    for member in [&primary, &replica] {
        let base = api(&s, member);
        for (method, path, body) in [
            ("PATCH", "/config", evil_patch),
            ("PUT", "/config", evil_patch),
            ("POST", "/switchover", switchover.as_str()),
            ("POST", "/failover", failover.as_str()),
            ("POST", "/reinitialize", "{}"),
            ("POST", "/restart", "{}"),
            ("POST", "/reload", ""),
        ] {
            for user in [None, Some("pgdeck:wrong"), Some("postgres:postgres")] {
                let (code, text) = curl(method, &format!("{base}{path}"), body, user);
                assert_eq!(code, 401, "{method} {path} as {user:?} on {member}: {text}");
            }
        }
    }
    let (_, after) = curl("GET", &format!("{}/config", api(&s, &primary)), "", None);
    assert_eq!(
        serde_json::from_str::<Value>(&before).unwrap(),
        serde_json::from_str::<Value>(&after).unwrap(),
        "the dynamic configuration changed"
    );

    // etcd: nobody writes or reads the DCS without a user; a cluster's user only its own keys.
    let port = home.etcd_port();
    let leader_key = "/pgdeck/default/guarded/leader";
    let put = |key: &str, token: Option<&str>| {
        etcd(
            port,
            "/v3/kv/put",
            &json!({ "key": b64(key), "value": b64("evil") }),
            token,
        )
    };
    let refused = put(leader_key, None);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("user name is empty")),
        "an unauthenticated put was not refused: {refused}"
    );
    let read = etcd(
        port,
        "/v3/kv/range",
        &json!({ "key": b64(leader_key) }),
        None,
    );
    assert!(read["error"].is_string(), "an unauthenticated read: {read}");
    let password = common::read(&cluster_dir(&home, "guarded").join("secrets/etcd"));
    let token = etcd(
        port,
        "/v3/auth/authenticate",
        &json!({ "name": "default/guarded", "password": password.trim() }),
        None,
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let foreign = put("/pgdeck/default/another/leader", Some(&token));
    assert!(
        foreign["error"]
            .as_str()
            .is_some_and(|e| e.contains("permission denied")),
        "a cluster's user wrote another cluster's keys: {foreign}"
    );
    let leader = etcd(
        port,
        "/v3/kv/range",
        &json!({ "key": b64(leader_key) }),
        Some(&token),
    );
    assert_eq!(
        leader["kvs"][0]["value"],
        b64(&primary),
        "the leader key is the primary's"
    );

    // pgdeck itself has the credentials.
    home.ok(&["switchover", "guarded", "--wait"]);
    home.wait_for(
        "guarded",
        Duration::from_secs(60),
        "the replica promoted",
        |s| all_ready(s, 2) && s["primary"] == replica.as_str(),
    );
}

/// Owner, group, mode and content of everything under `root` (links not followed).
fn snapshot(root: &Path) -> Vec<(PathBuf, u32, u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let meta = std::fs::symlink_metadata(root).unwrap();
    let content = if meta.is_file() {
        std::fs::read(root).unwrap()
    } else {
        Vec::new()
    };
    out.push((
        root.to_path_buf(),
        meta.uid(),
        meta.gid(),
        meta.mode(),
        content,
    ));
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            out.extend(snapshot(&e));
        }
    }
    out
}

#[test]
fn links_and_forged_records_of_the_database_account_change_nothing_outside_the_home() {
    if skip_unless_root("links_and_forged_records") {
        return;
    }
    // Root's things outside the home, which the tenant points pgdeck at.
    let outside = tempfile::Builder::new()
        .prefix("pgdeck-outside-")
        .tempdir_in("/tmp")
        .unwrap();
    let out = outside.path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(out.join("sub")).unwrap();
    std::fs::write(out.join("victim"), "root's own\n").unwrap();
    std::fs::set_permissions(out.join("victim"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(out);

    let home = LocalHome::new();
    home.apply_ready(&common::local::manifest("tenant", 1, "", "", ""), "180s");
    let s = home.wait_for("tenant", Duration::from_secs(60), "ready", |s| {
        all_ready(s, 1)
    });
    let name = s["primary"].as_str().unwrap().to_string();
    let instances = cluster_dir(&home, "tenant").join("instances");
    let inst = instances.join(&name);
    let sh = |script: &str| format!("cd '{}' && {script}", inst.display());

    // Nothing beside the instances is the account's to make.
    assert!(
        !as_postgres(&format!("mkdir '{}/evil' 2>/dev/null", instances.display())),
        "the database account could write into instances/"
    );

    // The socket directory is root's to place, under /run/pgdeck where the account can make
    // nothing; a `run` link planted beside the data (where instances made before kept their
    // sockets) is not taken for it.
    let socket = InstanceDir(inst.clone()).socket_dir();
    assert!(socket.starts_with("/run/pgdeck/"), "{}", socket.display());
    assert!(
        !as_postgres("mkdir /run/pgdeck/evil 2>/dev/null"),
        "the database account could write into /run/pgdeck"
    );
    assert!(as_postgres(&sh(&format!(
        "ln -s '{}/sub' run",
        out.display()
    ))));
    assert_eq!(InstanceDir(inst.clone()).socket_dir(), socket);

    // The log swapped for a link to root's file, then Patroni killed: pgdeck starts it again
    // with a log of its own.
    assert!(as_postgres(&sh(&format!(
        "mv patroni.log patroni.log.moved && ln -s '{}/victim' patroni.log",
        out.display()
    ))));
    let patroni = home.pids_matching(&["patroni", &format!("{name}/patroni.yml")]);
    assert_eq!(patroni.len(), 1, "one Patroni runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(patroni[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("Patroni to run again", Duration::from_secs(30), || {
        home.pids_matching(&["patroni", &format!("{name}/patroni.yml")])
            .iter()
            .any(|p| *p != patroni[0])
    });
    let log = std::fs::symlink_metadata(inst.join("patroni.log")).unwrap();
    assert!(log.is_file(), "the log is a file of its own again");
    home.wait_for("tenant", Duration::from_secs(60), "ready again", |s| {
        all_ready(s, 1)
    });
    assert_eq!(snapshot(out), before, "something outside the home changed");

    // A forged record naming a path outside, where an earlier pgdeck kept records: never read,
    // the instance stays what pgdeck recorded, and nothing outside goes when the cluster does.
    let forged = format!("../../../../../../../../..{}", out.display());
    let record = json!({ "name": forged, "set": "instance1", "pgPort": 5432, "apiPort": 8008,
        "created": "2020-01-01T00:00:00Z" });
    assert!(as_postgres(&sh(&format!(
        "echo '{record}' > instance.json"
    ))));
    std::thread::sleep(Duration::from_secs(3));
    let s = home.wait_for("tenant", Duration::from_secs(30), "ready", |s| {
        all_ready(s, 1)
    });
    assert_eq!(
        s["primary"],
        name.as_str(),
        "the instance is still pgdeck's own"
    );
    assert_eq!(snapshot(out), before, "something outside the home changed");
    home.ok(&["delete", "tenant"]);
    wait_until(
        "the cluster to be torn down",
        Duration::from_secs(120),
        || !cluster_dir(&home, "tenant").exists(),
    );
    assert_eq!(snapshot(out), before, "something outside the home changed");
}

/// A home made by an earlier pgdeck: etcd without authentication, Patroni without credentials.
/// The reconciler gives each Patroni its credentials first, then turns etcd's authentication
/// on, and the primary never loses the DCS on the way.
#[test]
fn an_open_home_is_closed_on_adoption_without_losing_the_primary() {
    if skip_unless_root("an_open_home_is_closed_on_adoption") {
        return;
    }
    let home = LocalHome::new();
    home.apply_ready(&common::local::manifest("legacy", 2, "", "", ""), "180s");
    let s = home.wait_for("legacy", Duration::from_secs(60), "two ready", |s| {
        all_ready(s, 2)
    });
    let primary = s["primary"].as_str().unwrap().to_string();

    // Back to what an earlier pgdeck left: no reconciler, etcd open, Patroni without users.
    home.kill_operator();
    let port = home.etcd_port();
    let token = home.etcd_root_token();
    etcd(port, "/v3/auth/disable", &json!({}), Some(&token));
    let dir = cluster_dir(&home, "legacy");
    for i in s["instances"].as_array().unwrap() {
        let name = i["name"].as_str().unwrap();
        let path = dir.join("instances").join(name).join("patroni.yml");
        let mut config: Value = serde_json::from_str(&common::read(&path)).unwrap();
        let etcd3 = config["etcd3"].as_object_mut().unwrap();
        etcd3.remove("username");
        etcd3.remove("password");
        config["restapi"]
            .as_object_mut()
            .unwrap()
            .remove("authentication");
        std::fs::write(&path, config.to_string()).unwrap();
        for pid in home.pids_matching(&["patroni", &format!("{name}/patroni.yml")]) {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGHUP,
            )
            .unwrap();
        }
    }
    let base = api(&s, &primary);
    wait_until(
        "Patroni to run without credentials",
        Duration::from_secs(30),
        || curl("POST", &format!("{base}/reload"), "", None).0 == 202,
    );
    // An earlier pgdeck's layout: records inside the instances' directories, instances/
    // itself the account's.
    for i in s["instances"].as_array().unwrap() {
        let name = i["name"].as_str().unwrap();
        std::fs::rename(
            dir.join("records").join(format!("{name}.json")),
            dir.join("instances").join(name).join("instance.json"),
        )
        .unwrap();
    }
    // Nor did it record its Patronis' pids: they are found by their command line, once.
    std::fs::remove_dir_all(dir.join("records")).unwrap();
    let postgres = nix::unistd::User::from_name("postgres").unwrap().unwrap();
    std::os::unix::fs::chown(
        dir.join("instances"),
        Some(postgres.uid.as_raw()),
        Some(postgres.gid.as_raw()),
    )
    .unwrap();
    let state = dir.join("state.json");
    let mut recorded: Value = serde_json::from_str(&common::read(&state)).unwrap();
    recorded.as_object_mut().unwrap().remove("dcsCredentials");
    std::fs::write(&state, recorded.to_string()).unwrap();
    let open = etcd(
        port,
        "/v3/kv/put",
        &json!({ "key": b64("/pgdeck/default/legacy/probe"), "value": b64("x") }),
        None,
    );
    assert!(open["error"].is_null(), "etcd is open again: {open}");

    // Adoption: applying a manifest starts the reconciler.
    let again = home.apply_text(&common::local::manifest("legacy", 2, "", "", ""), &[]);
    assert!(again.status.success());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = home.status("legacy");
        assert_eq!(s["primary"], primary.as_str(), "the primary changed: {s}");
        let refused = etcd(
            port,
            "/v3/kv/put",
            &json!({ "key": b64("/pgdeck/default/legacy/probe"), "value": b64("x") }),
            None,
        );
        if refused["error"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "etcd stayed open");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        curl("PATCH", &format!("{base}/config"), r#"{"ttl": 99}"#, None).0,
        401
    );
    // Patroni keeps the DCS: a new reconciler pass sees both members and the same primary.
    std::thread::sleep(Duration::from_secs(15));
    let after = home.wait_for("legacy", Duration::from_secs(60), "two ready", |s| {
        all_ready(s, 2)
    });
    assert_eq!(after["primary"], primary.as_str());
    // The same instances, their records adopted, instances/ pgdeck's own again.
    let names = |s: &Value| {
        let mut n: Vec<String> = s["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&after), names(&s));
    for name in names(&s) {
        assert!(dir.join("records").join(format!("{name}.json")).is_file());
        assert!(
            !dir.join("instances")
                .join(&name)
                .join("instance.json")
                .exists()
        );
    }
    assert_eq!(
        std::fs::metadata(dir.join("instances")).unwrap().uid(),
        0,
        "instances/ is root's"
    );
}

/// Secrets applied with a manifest are the home's, not the tenant's: the database account can
/// neither read them nor put its own in their place; ConfigMaps it may read, not write.
#[test]
fn the_database_account_can_neither_read_nor_forge_secrets_and_config_maps() {
    if skip_unless_root("the_database_account_can_neither_read_nor_forge_secrets") {
        return;
    }
    let home = LocalHome::new();
    let documents = "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\nstringData: {tls.key: hush}\n---\n\
                     apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sql}\ndata: {init.sql: SELECT 1}\n";
    let out = home.apply_text(documents, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = home.path().join("secrets/default/tls.yaml");
    let config_map = home.path().join("configmaps/default/sql.yaml");
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    let s = secret.display();
    assert!(
        !as_postgres(&format!("cat {s}")),
        "the account read a Secret"
    );
    assert!(!as_postgres(&format!(
        "ls {}",
        home.path().join("secrets").display()
    )));
    let c = config_map.display();
    assert!(as_postgres(&format!("cat {c} >/dev/null")));
    assert!(
        !as_postgres(&format!("echo forged > {c}")),
        "the account wrote a ConfigMap"
    );
    let d = home.path().join("configmaps/default").display().to_string();
    assert!(
        !as_postgres(&format!("touch {d}/forged.yaml")),
        "the account added a ConfigMap"
    );
    let listed = home.ok(&["get", "secrets"]);
    assert!(
        listed.contains("tls") && listed.contains("Opaque"),
        "{listed}"
    );
    let shown = home.ok(&["get", "secret", "tls", "-o", "yaml"]);
    assert!(
        shown.contains(&b64("hush")),
        "data in base64, as Kubernetes shows it: {shown}"
    );
}
