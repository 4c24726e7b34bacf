//! The console as a person uses it: the real binary in tmux against a real local cluster,
//! typing with `send-keys` and reading the screen with `capture-pane`.

use crate::common;

use std::time::{Duration, Instant};

use common::local::LocalHome;
use common::tmux::{Tmux, row};

#[test]
fn browse_a_live_cluster_see_a_switchover_and_quit_cleanly() {
    let home = LocalHome::new();
    let manifest =
        std::fs::read_to_string(common::repo_root().join("assets/examples/ha.yaml")).unwrap();
    home.apply_ready(&manifest, "120s");

    let tmux = Tmux::start(120, 32);
    tmux.keys(&[&home.console_command(), "Enter"]);
    // The first screen lists the cluster, healthy.
    tmux.wait(Duration::from_secs(10), "the cluster list", |s| {
        row(s, "hippo").contains("2/2") && row(s, "hippo").contains("● OK")
    });

    // Enter shows its instances with roles and lag.
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(10), "the instances", |s| {
        s.contains("Instances")
            && s.lines()
                .filter(|l| l.starts_with("│hippo-instance1-"))
                .count()
                == 2
            && s.contains(" replica ")
            && s.contains("streaming")
            && s.contains(" 0 B ")
    });
    // The dense columns show what PostgreSQL says: its version, when it started, connections
    // of max_connections, WAL positions; the header's commits/s once two polls were read.
    let max = home.superuser("hippo", "postgres", "SHOW max_connections");
    let max = max.trim();
    let version = home.superuser("hippo", "postgres", "SHOW server_version");
    let version = version.split_whitespace().next().unwrap().to_string();
    home.wait_for(
        "hippo",
        Duration::from_secs(10),
        "versions in status",
        |s| {
            s["instances"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["postgresVersion"] == version.as_str() && i["startedAt"].is_string())
        },
    );
    let s = tmux.wait(
        Duration::from_secs(10),
        "versions, connections, LSNs",
        |s| {
            let rows = instance_rows(s);
            rows.len() == 2
                && rows.iter().all(|r| {
                    let words: Vec<&str> = r.split_whitespace().collect();
                    let conn = words
                        .iter()
                        .find(|w| w.ends_with(&format!("/{max}")) && is_count(w));
                    words.contains(&version.as_str())
                        && conn.is_some()
                        && words.iter().any(|w| Some(w) != conn && is_lsn(w))
                })
                && commits_per_second(s).is_some()
        },
    );
    assert!(
        s.contains("VERSION") && s.contains("STARTED") && s.contains("CONN"),
        "{s}"
    );
    let primary_row = s
        .lines()
        .find(|l| l.starts_with("│hippo-instance1-") && l.contains(" primary "))
        .expect("a primary row")
        .to_string();
    let old_primary = primary_row
        .trim_start_matches('│')
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    // A switchover made from the CLI shows on screen within 3 s.
    let out = home.ok(&["switchover", "hippo", "--wait"]);
    assert!(out.contains("switched over"), "{out}");
    let done = Instant::now();
    tmux.wait(Duration::from_secs(3), "the new primary on screen", |s| {
        !row(s, &old_primary).contains(" primary ")
            && s.lines().any(|l| {
                l.starts_with("│hippo-instance1-")
                    && !l.contains(&old_primary)
                    && l.contains(" primary ")
            })
    });
    assert!(done.elapsed() <= Duration::from_secs(3));

    // q exits and the terminal is restored.
    tmux.keys(&["q"]);
    tmux.wait(Duration::from_secs(5), "the console to exit", |s| {
        s.trim_end().ends_with('$')
    });
    tmux.assert_terminal_restored();
}

#[test]
fn sigterm_restores_the_terminal() {
    let home = LocalHome::new();
    let tmux = Tmux::start(100, 24);
    tmux.keys(&[&home.console_command(), "Enter"]);
    tmux.wait(Duration::from_secs(10), "the console", |s| {
        s.contains("Clusters [0]")
    });
    assert!(tmux.alternate_screen());
    let console = home
        .pids_matching(&["pgdeck", "--platform local"])
        .into_iter()
        .find(|pid| {
            !String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(),
            )
            .contains("operator")
        });
    let pid = console.expect("the console's process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tmux.wait(Duration::from_secs(5), "the console to exit", |s| {
        s.trim_end().ends_with('$')
    });
    tmux.assert_terminal_restored();
}

#[test]
fn a_bad_config_is_refused_naming_the_key() {
    let home = LocalHome::new();
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config/config.yaml"),
        "refreshInterval: soon\n",
    )
    .unwrap();
    let out = home
        .command()
        .env("PGDECK_CONFIG_DIR", home.path().join("config"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.yaml: refreshInterval:"), "{err}");
}

fn manifest_file(home: &LocalHome) -> String {
    std::fs::read_to_string(home.path().join("namespaces/default/hippo.yaml")).unwrap()
}

/// Rows of the Instances tab.
fn instance_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| l.starts_with("│hippo-instance1-"))
        .collect()
}

/// `12/100`.
fn is_count(word: &str) -> bool {
    word.split_once('/').is_some_and(|(a, b)| {
        [a, b]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    })
}

/// `0/3000148`.
fn is_lsn(word: &str) -> bool {
    word.split_once('/').is_some_and(|(a, b)| {
        [a, b]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit()))
    })
}

/// The header's newest commits/s, once there is one.
fn commits_per_second(screen: &str) -> Option<u64> {
    let (_, after) = screen.split_once("commits/s ")?;
    after.split_whitespace().next()?.parse().ok()
}

/// In the YAML editor: put the cursor on the first line containing `text`.
fn find(tmux: &Tmux, text: &str) {
    tmux.keys(&["C-f"]);
    tmux.text(text);
    tmux.keys(&["Enter", "Escape"]);
}

#[test]
fn switch_over_scale_and_edit_from_the_console() {
    let home = LocalHome::new();
    let manifest =
        std::fs::read_to_string(common::repo_root().join("assets/examples/ha.yaml")).unwrap();
    home.apply_ready(&manifest, "120s");
    // The "editor" for `E`: it turns synchronous mode off, as a person would in vi.
    let editor = home.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/synchronous_mode: true/synchronous_mode: false/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tmux = Tmux::start(120, 40);
    tmux.keys(&[
        &format!("EDITOR={} {}", editor.display(), home.console_command()),
        "Enter",
    ]);
    tmux.wait(Duration::from_secs(10), "the cluster list", |s| {
        row(s, "hippo").contains("● OK")
    });
    tmux.keys(&["Enter"]);
    let s = tmux.wait(Duration::from_secs(10), "two streaming instances", |s| {
        instance_rows(s).len() == 2 && s.contains("streaming")
    });
    let old_primary = instance_rows(&s)
        .into_iter()
        .find(|l| l.contains(" primary "))
        .unwrap()
        .trim_start_matches('│')
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    // s + enter switches over.
    tmux.keys(&["s"]);
    tmux.wait(Duration::from_secs(5), "the switchover dialog", |s| {
        s.contains("Switchover") && s.contains("CANDIDATE")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(30), "the switchover to finish", |s| {
        s.contains("switched over:") && !row(s, &old_primary).contains(" primary ")
    });

    // + + enter scales 2 → 3; the new instance appears as a replica.
    tmux.keys(&["+"]);
    tmux.wait(Duration::from_secs(5), "the scale dialog", |s| {
        s.contains("instance1: 2 → 3")
    });
    tmux.keys(&["Enter"]);
    let s = tmux.wait(Duration::from_secs(60), "a third, streaming replica", |s| {
        let rows = instance_rows(s);
        rows.len() == 3
            && rows
                .iter()
                .filter(|r| r.contains(" replica ") && r.contains("streaming"))
                .count()
                == 2
    });
    assert!(
        s.contains("done: 3/3 ready"),
        "the footer reports the outcome:\n{s}"
    );

    // In the YAML editor: 2 replicas and synchronous mode; the cluster converges.
    tmux.keys(&["y"]);
    tmux.wait(Duration::from_secs(5), "the editor", |s| {
        s.contains("manifest") && s.contains("apiVersion: pgdeck.dev/v1")
    });
    find(&tmux, "replicas: 3");
    tmux.keys(&["End", "BSpace"]);
    tmux.text("2");
    find(&tmux, "  patroni:");
    tmux.keys(&["End", "Enter"]);
    tmux.text("    dynamicConfiguration:");
    tmux.keys(&["Enter"]);
    tmux.text("      synchronous_mode: true");
    tmux.wait(Duration::from_secs(5), "the edit to validate", |s| {
        s.contains("(changed)") && !s.contains("error(s)")
    });
    tmux.keys(&["C-s"]);
    tmux.wait(Duration::from_secs(5), "the diff", |s| {
        s.contains("Review")
            && s.contains("+    replicas: 2")
            && s.contains("synchronous_mode: true")
    });
    tmux.keys(&["Enter"]);
    let s = tmux.wait(
        Duration::from_secs(60),
        "two instances, one a sync standby",
        |s| {
            let rows = instance_rows(s);
            rows.len() == 2
                && rows.iter().any(|r| r.contains("sync_standby"))
                && s.contains("sync on")
        },
    );
    assert!(!s.contains("error"), "{s}");
    let stored = manifest_file(&home);
    assert!(
        stored.contains("replicas: 2") && stored.contains("synchronous_mode: true"),
        "{stored}"
    );

    // E: the manifest in $EDITOR; back in the console, the diff, then it applies.
    tmux.keys(&["E"]);
    tmux.wait(
        Duration::from_secs(10),
        "the diff of the external edit",
        |s| s.contains("Review") && s.contains("+      synchronous_mode: false"),
    );
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(30), "synchronous mode off", |s| {
        s.contains("sync off") && instance_rows(s).len() == 2
    });
    let stored = manifest_file(&home);
    assert!(stored.contains("synchronous_mode: false"), "{stored}");

    // Broken YAML and ctrl-s: an error with its line, and the stored manifest unchanged.
    tmux.keys(&["y"]);
    tmux.wait(Duration::from_secs(5), "the editor", |s| {
        s.contains("apiVersion: pgdeck.dev/v1")
    });
    find(&tmux, "postgresVersion");
    tmux.keys(&["End"]);
    tmux.text(" [broken");
    tmux.wait(Duration::from_secs(5), "the error", |s| {
        s.contains("error(s):") && s.contains("line ")
    });
    tmux.keys(&["C-s"]);
    tmux.wait(Duration::from_secs(5), "the refusal", |s| {
        s.contains("nothing is applied until they are fixed")
    });
    assert_eq!(
        manifest_file(&home),
        stored,
        "a broken edit changes nothing"
    );
    tmux.keys(&["Escape"]);
    tmux.wait(Duration::from_secs(5), "the discard question", |s| {
        s.contains("Discard your changes?")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(5), "the instances again", |s| {
        s.contains("REPLAY LAG")
    });
    tmux.keys(&["q"]);
    tmux.wait(Duration::from_secs(5), "the console to exit", |s| {
        s.trim_end().ends_with('$')
    });

    // Read-only: every mutating key only explains why it does nothing.
    tmux.keys(&[
        &format!("clear; {} --readonly", home.console_command()),
        "Enter",
    ]);
    tmux.wait(Duration::from_secs(10), "the read-only console", |s| {
        s.contains("READ-ONLY") && row(s, "hippo").contains("2/2")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(10), "the instances", |s| {
        instance_rows(s).len() == 2
    });
    for key in ["s", "+", "-", "e", "y", "b", "C-d"] {
        tmux.keys(&[key]);
        let s = tmux.wait(Duration::from_secs(5), "the explanation", |s| {
            s.contains("read-only:") && s.contains("is disabled")
        });
        assert!(
            !s.contains("Switchover") && !s.contains("┌ Scale") && !s.contains("┌ Edit"),
            "{key} opened a dialog:\n{s}"
        );
    }
    assert_eq!(manifest_file(&home), stored, "read-only changed nothing");
    tmux.keys(&["q"]);
}

/// A psql child that is killed if the test ends before it does.
struct Client(std::process::Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The console in a terminal `width` wide, open on the ready cluster `minimal`.
fn open_minimal(home: &LocalHome, width: u16) -> Tmux {
    let tmux = Tmux::start(width, 32);
    tmux.keys(&[&home.console_command(), "Enter"]);
    tmux.wait(Duration::from_secs(10), "the cluster list", |s| {
        row(s, "minimal").contains("● OK")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(10), "the instances", |s| {
        s.contains("│minimal-instance1-")
    });
    tmux
}

#[test]
fn activity_shows_a_long_query_and_x_cancels_it() {
    let home = LocalHome::new();
    let manifest =
        std::fs::read_to_string(common::repo_root().join("assets/examples/minimal.yaml")).unwrap();
    home.apply_ready(&manifest, "120s");
    let mut client = Client(
        home.superuser_psql("minimal", "postgres", "SELECT pg_sleep(600)")
            .unwrap()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );

    let tmux = open_minimal(&home, 140);
    tmux.keys(&["Tab", "Tab", "Tab", "Tab"]);
    tmux.wait(Duration::from_secs(10), "the sleeping session", |s| {
        s.lines()
            .any(|l| l.contains("pg_sleep(600)") && l.contains("active") && l.contains("psql"))
    });
    // Narrow to it, then x and enter.
    tmux.keys(&["/"]);
    tmux.text("pg_sleep");
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(5), "only the sleeping session", |s| {
        s.lines().filter(|l| l.contains("SELECT pg_sleep")).count() == 1
            && s.contains("filter /pg_sleep")
    });
    tmux.keys(&["x"]);
    tmux.wait(Duration::from_secs(5), "the cancel dialog", |s| {
        s.contains("Cancel query") && s.contains("query: SELECT pg_sleep(600)")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(10), "the outcome", |s| {
        s.contains("cancelled")
    });

    let started = Instant::now();
    let status = loop {
        if let Some(status) = client.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the query was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(client.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    // The session leaves the table, and the cancel is among the cluster's events.
    tmux.wait(Duration::from_secs(5), "the session gone", |s| {
        !s.contains("SELECT pg_sleep(600)")
    });
    let events =
        std::fs::read_to_string(home.path().join("namespaces/default/minimal.events.jsonl"))
            .unwrap();
    assert!(events.contains("SessionCancelled"), "{events}");

    tmux.keys(&["q"]);
    tmux.wait(Duration::from_secs(5), "the console to exit", |s| {
        s.trim_end().ends_with('$')
    });
    tmux.assert_terminal_restored();
}

#[test]
fn logs_show_a_line_a_query_logged_and_slash_finds_it() {
    let home = LocalHome::new();
    let manifest =
        std::fs::read_to_string(common::repo_root().join("assets/examples/minimal.yaml")).unwrap();
    home.apply_ready(&manifest, "120s");

    let tmux = open_minimal(&home, 160);
    // Logs is the last tab: one step back from the first.
    tmux.keys(&["BTab"]);
    tmux.wait(Duration::from_secs(10), "the primary's log", |s| {
        s.contains("PostgreSQL + Patroni log  ● following") && s.contains("│ pat ")
    });

    let marker = format!("pgdeck-logs-marker-{}", std::process::id());
    let sql = format!("DO $$ BEGIN RAISE LOG '{marker}'; END $$");
    let primary = home.status("minimal")["primary"]
        .as_str()
        .unwrap()
        .to_string();
    home.sql_on("minimal", &primary, "postgres", &sql).unwrap();
    tmux.wait(
        Duration::from_secs(10),
        "the logged line, followed live",
        |s| {
            s.lines()
                .any(|l| l.contains(" pg ") && l.contains(&format!("LOG:  {marker}")))
        },
    );

    // Scrolling up pauses; G follows again.
    tmux.keys(&["k"]);
    tmux.wait(Duration::from_secs(5), "paused", |s| s.contains("‖ paused"));
    tmux.keys(&["G"]);
    tmux.wait(Duration::from_secs(5), "following", |s| {
        s.contains("● following")
    });

    tmux.keys(&["/"]);
    tmux.text(&marker);
    tmux.keys(&["Enter"]);
    // The newest match shows as the search is typed; enter keeps it.
    tmux.wait(Duration::from_secs(5), "the match marked", |s| {
        s.lines().any(|l| l.contains('▶') && l.contains(&marker))
            && s.contains(&format!("search /{marker}"))
            && !s.contains("enter keep")
    });
    // The line PostgreSQL logged, and the statement it logs with a LOG message: n/N step
    // between them.
    tmux.keys(&["N"]);
    tmux.wait(Duration::from_secs(5), "the other match marked", |s| {
        s.lines()
            .any(|l| l.contains('▶') && l.contains(&format!("LOG:  {marker}")))
    });

    // PostgreSQL's log alone has no Patroni line.
    tmux.keys(&["w"]);
    tmux.wait(Duration::from_secs(5), "the PostgreSQL log", |s| {
        s.contains("PostgreSQL log  ") && !s.contains("│ pat ") && s.contains("│ pg ")
    });

    tmux.keys(&["q"]);
    tmux.wait(Duration::from_secs(5), "the console to exit", |s| {
        s.trim_end().ends_with('$')
    });
    tmux.assert_terminal_restored();
}
