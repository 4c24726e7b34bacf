//! Local platform figures, with real processes: apply → Ready for 1 and 3 instances; switchover
//! time (request → the new primary accepts a write) for pgdeck and for `patronictl switchover
//! --force` on the same cluster; `pgdeck status -o json` latency against `patronictl list`.
//!
//! Run: `cargo bench --bench local_platform` (prints a table; BENCHMARKS.md records results).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::local::LocalHome;

const ROUNDS: usize = 3;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// apply --wait from nothing to Ready.
fn time_to_ready(home: &LocalHome, name: &str, replicas: u32) -> Duration {
    let start = Instant::now();
    home.apply_ready(&common::local::manifest(name, replicas, "", "", ""), "120s");
    start.elapsed()
}

fn primary(home: &LocalHome, name: &str) -> String {
    home.status(name)["primary"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Time from `start` until a write succeeds on an instance other than `old`.
fn until_new_primary_writes(home: &LocalHome, name: &str, old: &str, start: Instant) -> Duration {
    let uri = home.ok(&["uri", name]);
    loop {
        let out = Command::new("psql")
            .args([
                uri.trim(),
                "-XAtq",
                "-c",
                "INSERT INTO probe VALUES (now()) RETURNING inet_server_port()",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            let port: i64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("inet_server_port() is a number");
            let s = home.status(name);
            let on_old = s["instances"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["name"] == old && i["port"] == port);
            if !on_old {
                return start.elapsed();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no new primary accepted writes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn candidate(home: &LocalHome, name: &str) -> String {
    let s = home.status(name);
    s["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["role"] != "primary" && i["ready"] == true)
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string()
}

fn wait_all_ready(home: &LocalHome, name: &str, n: usize) {
    home.wait_for(name, Duration::from_secs(60), "all instances ready", |s| {
        s["instances"]
            .as_array()
            .is_some_and(|l| l.len() == n && l.iter().all(|i| i["ready"] == true))
    });
}

fn patroni_config(home: &LocalHome, name: &str, instance: &str) -> String {
    home.path()
        .join("namespaces/default")
        .join(name)
        .join("instances")
        .join(instance)
        .join("patroni.yml")
        .display()
        .to_string()
}

fn main() {
    let home = LocalHome::new();

    let mut ready1 = vec![];
    let mut ready3 = vec![];
    for round in 0..ROUNDS {
        ready1.push(time_to_ready(&home, &format!("one{round}"), 1));
        home.ok(&["delete", &format!("one{round}"), "--wait"]);
        ready3.push(time_to_ready(&home, &format!("three{round}"), 3));
        if round + 1 < ROUNDS {
            home.ok(&["delete", &format!("three{round}"), "--wait"]);
        }
    }
    let name = format!("three{}", ROUNDS - 1);
    let uri = home.ok(&["uri", &name]);
    home.psql(&uri, "CREATE TABLE probe (at timestamptz)");

    let mut ours = vec![];
    let mut theirs = vec![];
    for _ in 0..ROUNDS {
        wait_all_ready(&home, &name, 3);
        let old = primary(&home, &name);
        let start = Instant::now();
        home.ok(&["switchover", &name]);
        ours.push(until_new_primary_writes(&home, &name, &old, start));
        home.wait_for(
            &name,
            Duration::from_secs(30),
            "status to show the switchover",
            |s| s["primary"] != old.as_str(),
        );

        wait_all_ready(&home, &name, 3);
        let old = primary(&home, &name);
        let target = candidate(&home, &name);
        let start = Instant::now();
        let out = Command::new("patronictl")
            .args([
                "-c",
                &patroni_config(&home, &name, &old),
                "switchover",
                "--leader",
                &old,
                "--candidate",
                &target,
                "--force",
                &name,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "patronictl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        theirs.push(until_new_primary_writes(&home, &name, &old, start));
        home.wait_for(
            &name,
            Duration::from_secs(30),
            "status to show the switchover",
            |s| s["primary"] != old.as_str(),
        );
    }

    let config = patroni_config(&home, &name, &primary(&home, &name));
    let time = |cmd: &mut dyn FnMut() -> std::process::Output| {
        median(
            (0..20)
                .map(|_| {
                    let start = Instant::now();
                    assert!(cmd().status.success());
                    start.elapsed()
                })
                .collect(),
        )
    };
    let status = time(&mut || {
        home.command()
            .args(["status", &name, "-o", "json"])
            .output()
            .unwrap()
    });
    let list = time(&mut || {
        Command::new("patronictl")
            .args(["-c", &config, "list"])
            .output()
            .unwrap()
    });

    let (ours, theirs) = (median(ours), median(theirs));
    println!("local platform, medians of {ROUNDS} rounds (status: of 20 calls)");
    println!(
        "  apply -> Ready, 1 instance      {}   (target <= 20 s for 3)",
        ms(median(ready1))
    );
    println!("  apply -> Ready, 3 instances     {}", ms(median(ready3)));
    println!(
        "  switchover, pgdeck              {}   (target <= 3 s)",
        ms(ours)
    );
    println!("  switchover, patronictl --force  {}", ms(theirs));
    println!(
        "  switchover ratio pgdeck/patronictl  {:.2}",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
    println!(
        "  pgdeck status -o json           {}   (target <= 50 ms)",
        ms(status)
    );
    println!("  patronictl list                 {}", ms(list));
}
