//! Write outage after the primary fails, with synchronous replication on and 3 instances:
//! kill -9 of the primary's postmaster, and a freeze (SIGSTOP of its Patroni and PostgreSQL)
//! until another member took over. For each: the window without an acknowledged write (median
//! and max), and the acknowledged writes lost (target 0).
//!
//! Run: `cargo bench --bench failover` (PGDECK_BENCH_ROUNDS=10 rounds of each by default).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::local::{Frozen, LocalHome, signal};
use common::writer::Writing;
use nix::sys::signal::Signal;

const NAME: &str = "failover";

/// The primary, once the three members run and a standby is synchronous: a failure before
/// then has no replica that Patroni may promote without losing commits.
fn primary(home: &LocalHome) -> String {
    let s = home.protected(NAME, 3);
    s["primary"].as_str().unwrap().to_string()
}

fn summary(what: &str, mut windows: Vec<Duration>) {
    windows.sort();
    let median = windows[windows.len() / 2];
    let max = windows.last().copied().unwrap_or_default();
    println!(
        "  {what:<32} median {:.2} s   max {:.2} s   ({} rounds)",
        median.as_secs_f64(),
        max.as_secs_f64(),
        windows.len()
    );
}

fn main() {
    let rounds: usize = std::env::var("PGDECK_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let home = LocalHome::new();
    let manifest = common::local::manifest(
        NAME,
        3,
        "",
        "  patroni:\n    dynamicConfiguration:\n      synchronous_mode: true\n",
        "",
    );
    home.apply_ready(&manifest, "240s");
    let writing = Writing::start(&home, NAME);
    std::thread::sleep(Duration::from_secs(2));

    let mut killed = Vec::new();
    for _ in 0..rounds {
        let p = primary(&home);
        let postmaster = home.postgres_pids(NAME, &p)[..1].to_vec();
        killed.push(Instant::now());
        signal(&postmaster, Signal::SIGKILL);
        std::thread::sleep(Duration::from_secs(3));
        primary(&home);
        std::thread::sleep(Duration::from_secs(2));
    }

    let mut frozen = Vec::new();
    for _ in 0..rounds {
        let old = primary(&home);
        let mut pids = home.patroni_pids(NAME, &old);
        pids.extend(home.postgres_pids(NAME, &old));
        frozen.push(Instant::now());
        let ice = Frozen::freeze(pids);
        home.wait_for(NAME, Duration::from_secs(120), "a new primary", |s| {
            s["primary"].is_string() && s["primary"] != old.as_str()
        });
        drop(ice);
        primary(&home);
        std::thread::sleep(Duration::from_secs(2));
    }

    // Asserts that no acknowledged write was lost.
    let outcomes = writing.finish(&home, NAME);
    let o = &outcomes[0];
    let windows = |events: &[Instant]| -> Vec<Duration> {
        events.iter().filter_map(|e| o.outage_around(*e)).collect()
    };
    println!("primary failure, 3 instances, synchronous_mode on, one writer (10 ms between rows)");
    summary("kill -9 of the postmaster", windows(&killed));
    summary("freeze past the TTL", windows(&frozen));
    println!("  acknowledged writes              {}", o.acked.len());
    println!("  failed write attempts            {}", o.failed);
    println!("  acknowledged writes lost         0   (checked: every acknowledged id is present)");
}
