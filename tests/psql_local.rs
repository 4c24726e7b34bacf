//! psql on a real local cluster: `pgdeck psql` from the command line, and `p` in the console
//! (tmux), which steps out of the terminal to psql and comes back intact.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::local::LocalHome;
use common::tmux::{Tmux, row};

fn minimal(home: &LocalHome) {
    let manifest =
        std::fs::read_to_string(common::repo_root().join("assets/examples/minimal.yaml")).unwrap();
    home.apply_ready(&manifest, "120s");
    // The user's database comes just after the cluster is ready (which may restart once).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let exists = "SELECT count(*) FROM pg_database WHERE datname = 'minimal'";
    loop {
        let seen = home.try_superuser("minimal", "postgres", exists);
        if seen.as_deref() == Ok("1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no database minimal: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A private TMPDIR for pgdeck, where its passfiles go.
fn tmp(home: &LocalHome) -> PathBuf {
    let dir = home.path().join("tmp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// The password of the cluster's default user, as the reconciler stored it.
fn password(home: &LocalHome) -> String {
    let file = home
        .path()
        .join("namespaces/default/minimal/secrets/user-minimal");
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

#[test]
fn pgdeck_psql_connects_over_tls_as_the_chosen_user_and_passes_arguments_through() {
    let home = LocalHome::new();
    minimal(&home);
    let tmp = tmp(&home);
    let psql = |args: &[&str]| {
        let mut c = home.command();
        // Inherited libpq settings must not bend the connection: a wrong password, an
        // unreachable address.
        c.env("TMPDIR", &tmp)
            .env("PGPASSWORD", "wrong")
            .env("PGHOSTADDR", "192.0.2.1")
            .env("PGSSLMODE", "disable")
            .arg("psql")
            .args(args);
        c.output().unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();

    let out = psql(&[
        "minimal",
        "--",
        "-XAt",
        "-c",
        "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "minimal true",
        "the default user, over TLS"
    );

    let out = psql(&[
        "minimal",
        "--user",
        "postgres",
        "--",
        "-XAt",
        "-c",
        "SELECT current_user || ' ' || rolsuper FROM pg_roles WHERE rolname = current_user",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "postgres true", "the superuser");

    // psql's own failure keeps its exit code and message.
    let out = psql(&["minimal", "--", "-X", "-c", "SELECT 1/0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("division by zero"), "{out:?}");
    assert!(!text(&out.stderr).contains("error: \n"), "{out:?}");

    for (args, says) in [
        (
            &["minimal", "--user", "nobody"][..],
            "has no user nobody; its users: minimal, postgres",
        ),
        (
            &["minimal", "--instance", "nope"][..],
            "has no instance nope",
        ),
        (&["absent"][..], "postgrescluster default/absent not found"),
    ] {
        let out = psql(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains(says), "{args:?}: {out:?}");
    }
    assert!(entries(&tmp).is_empty(), "a passfile was left behind");
}

/// The psql processes started with a passfile in `tmp`, with their command line and passfile.
fn psql_processes(tmp: &Path) -> Vec<(String, PathBuf)> {
    let marker = format!("PGPASSFILE={}/", tmp.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let environ = String::from_utf8_lossy(&environ).into_owned();
        let Some(passfile) = environ
            .split('\0')
            .find_map(|v| v.strip_prefix("PGPASSFILE="))
            .filter(|_| environ.contains(&marker))
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        found.push((
            String::from_utf8_lossy(&cmdline).replace('\0', " "),
            PathBuf::from(passfile),
        ));
    }
    found
}

#[test]
fn p_opens_psql_and_quitting_it_returns_to_the_console_intact() {
    use std::os::unix::fs::PermissionsExt;
    let home = LocalHome::new();
    minimal(&home);
    let tmp = tmp(&home);
    let password = password(&home);

    let tmux = Tmux::start(140, 32);
    tmux.keys(&[
        &format!("TMPDIR={} {}", tmp.display(), home.console_command()),
        "Enter",
    ]);
    tmux.wait(Duration::from_secs(10), "the cluster list", |s| {
        row(s, "minimal").contains("● OK")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(10), "the instances", |s| {
        s.contains("│minimal-instance1-")
    });
    tmux.keys(&["p"]);
    let s = tmux.wait(Duration::from_secs(5), "the user dialog", |s| {
        s.contains("psql on minimal-instance1-") && s.contains("postgres  superuser")
    });
    assert!(s.contains("(primary) as:"), "{s}");
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(15), "psql's prompt", |s| {
        s.contains("minimal=>")
    });
    assert!(!tmux.alternate_screen(), "psql runs on the normal screen");
    let s = tmux.screen();
    assert!(s.contains("SSL connection"), "not over TLS:\n{s}");

    // The password is in a private passfile, not on psql's command line.
    let running = psql_processes(&tmp);
    assert_eq!(running.len(), 1, "{running:?}");
    let (cmdline, passfile) = &running[0];
    assert!(!cmdline.contains(&password), "{cmdline}");
    let mode = std::fs::metadata(passfile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    tmux.text("SELECT 'pgdeck-psql-' || 1");
    // A lone `;` separates tmux commands: `\;` is the character.
    tmux.keys(&["\\;", "Enter"]);
    tmux.wait(Duration::from_secs(5), "the query's output", |s| {
        s.lines().any(|l| l.trim() == "pgdeck-psql-1")
    });
    // ctrl-c cancels psql's query; the console, which the terminal signals too, stays.
    tmux.text("SELECT pg_sleep(60)");
    tmux.keys(&["\\;", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["C-c"]);
    tmux.wait(Duration::from_secs(10), "the query cancelled", |s| {
        s.contains("canceling statement due to user request")
    });
    tmux.text("\\q");
    tmux.keys(&["Enter"]);
    let s = tmux.wait(Duration::from_secs(10), "the console again", |s| {
        s.contains("│minimal-instance1-") && s.contains("psql on minimal-instance1-")
    });
    assert!(s.contains("ended"), "{s}");
    assert!(tmux.alternate_screen(), "the console is back on its screen");
    assert!(entries(&tmp).is_empty(), "the passfile is removed");

    // Keys work again: the next tab, then quit with the terminal restored.
    tmux.keys(&["Tab"]);
    tmux.wait(Duration::from_secs(5), "the Backups tab", |s| {
        s.contains("repo1")
    });
    tmux.keys(&["q"]);
    tmux.wait(Duration::from_secs(5), "the console to exit", |s| {
        s.trim_end().ends_with('$')
    });
    tmux.assert_terminal_restored();
}
