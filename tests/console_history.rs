//! The console's History and Settings tabs as a person uses them: the real binary in tmux
//! against a real local cluster.

use crate::common;

use std::time::Duration;

use common::local::LocalHome;
use common::tmux::{Tmux, row};

#[test]
fn history_shows_a_switchover_and_settings_the_specs_work_mem() {
    let home = LocalHome::new();
    let manifest =
        std::fs::read_to_string(common::repo_root().join("assets/examples/ha.yaml")).unwrap();
    let manifest = format!(
        "{manifest}  patroni:\n    dynamicConfiguration:\n      postgresql:\n        parameters:\n          work_mem: 12MB\n"
    );
    home.apply_ready(&manifest, "120s");

    let tmux = Tmux::start(160, 36);
    tmux.keys(&[&home.console_command(), "Enter"]);
    tmux.wait(Duration::from_secs(10), "the cluster list", |s| {
        row(s, "hippo").contains("● OK")
    });
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(10), "the instances", |s| {
        s.contains("│hippo-instance1-")
    });
    tmux.keys(&["Tab", "Tab", "Tab", "Tab", "Tab"]);
    // A new cluster has run on its first timeline only: Patroni lists no switch yet.
    tmux.wait(Duration::from_secs(10), "the empty history", |s| {
        s.contains("0 timeline switches (Patroni /history)") && s.contains("no timeline switch yet")
    });

    // A switchover made meanwhile shows as timeline 1 → 2, led by another member than the
    // primary before it, beside pgdeck's own record of it.
    let before = home.status("hippo")["primary"]
        .as_str()
        .expect("a primary")
        .to_string();
    let out = home.ok(&["switchover", "hippo", "--wait"]);
    assert!(out.contains("switched over"), "{out}");
    let s = tmux.wait(Duration::from_secs(15), "the switch in the history", |s| {
        s.lines().any(|l| {
            l.contains("1 → 2")
                && l.contains("Patroni")
                && l.contains("new leader hippo-instance1-")
                && !l.contains(&format!("new leader {before}"))
        }) && s
            .lines()
            .any(|l| l.contains("pgdeck") && l.contains("Switchover"))
    });
    let patroni_row = s.lines().position(|l| l.contains("1 → 2")).unwrap();
    let request_row = s
        .lines()
        .position(|l| l.contains("SwitchoverRequested"))
        .expect("the CLI's request is among the records");
    assert!(
        patroni_row < request_row,
        "newest first: the switch came after its request\n{s}"
    );

    // Settings: what pgdeck derives, and (filtered to the manifest's own) work_mem as the spec
    // sets it.
    tmux.keys(&["Tab"]);
    let s = tmux.wait(Duration::from_secs(15), "the parameters", |s| {
        row(s, "archive_mode").contains("pgdeck")
    });
    assert!(
        s.contains("parameters not at their defaults"),
        "the head counts them\n{s}"
    );
    tmux.keys(&["/"]);
    tmux.text("spec");
    tmux.keys(&["Enter"]);
    tmux.wait(Duration::from_secs(5), "work_mem from the spec", |s| {
        s.contains("filter /spec")
            && row(s, "archive_mode").is_empty()
            && row(s, "work_mem").contains("12MB")
            && row(s, "work_mem").contains("spec.patroni")
    });

    tmux.keys(&["q"]);
    tmux.wait(Duration::from_secs(5), "the console to exit", |s| {
        s.trim_end().ends_with('$')
    });
    tmux.assert_terminal_restored();
}
