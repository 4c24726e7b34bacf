//! Write availability during a rolling memory change, under pgbench load, with synchronous
//! replication on: the longest window in which no write succeeded, the writes that failed, and
//! whether every acknowledged write survived.
//!
//! Run: `cargo bench --bench rolling_availability`. Target: ≤ 3 s of failed writes, none lost
//! once acknowledged.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::local::LocalHome;
use common::writer;

fn manifest(memory: &str) -> String {
    common::local::manifest(
        "avail",
        2,
        &format!("      resources: {{limits: {{memory: {memory}}}}}\n"),
        "  patroni:\n    dynamicConfiguration:\n      synchronous_mode: true\n",
        "",
    )
}

/// pgbench as background load, started again whenever a switchover ends its clients.
fn pgbench(uri: &str) -> Child {
    Command::new("/usr/lib/postgresql/15/bin/pgbench")
        .args(["-n", "-c", "2", "-T", "600", uri])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pgbench (postgresql-contrib)")
}

fn main() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("512Mi"), "180s");
    let uri = home.ok(&["uri", "avail"]);
    home.psql(&uri, writer::TABLE);
    let init = Command::new("/usr/lib/postgresql/15/bin/pgbench")
        .args(["-i", "-q", "-s", "5", uri.trim()])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writing = runtime.spawn(writer::write(
        uri.trim().to_string(),
        0,
        Duration::from_secs(2),
        stop_rx,
    ));
    let mut load = pgbench(uri.trim());
    std::thread::sleep(Duration::from_secs(3));

    let started = Instant::now();
    let rolling = std::thread::spawn({
        let text = manifest("1Gi");
        let path = home.path().join("avail-1g.yaml");
        std::fs::write(&path, text).unwrap();
        let mut cmd = home.command();
        cmd.args(["apply", "-f"])
            .arg(path)
            .args(["--wait", "--timeout", "300s"]);
        move || cmd.output().unwrap()
    });
    while !rolling.is_finished() {
        if load.try_wait().unwrap().is_some() {
            load = pgbench(uri.trim());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = rolling.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop_tx.send(true).unwrap();
    let _ = load.kill();
    let _ = load.wait();
    let outcome = runtime.block_on(writing).unwrap();

    let lost = outcome
        .lost(&writer::present(&home.ok(&["uri", "avail"])))
        .len();

    println!("rolling memory change, 2 instances, synchronous_mode on, pgbench -c 2 beside");
    println!(
        "  rollout took                      {:.1} s",
        took.as_secs_f64()
    );
    println!(
        "  longest window of failed writes   {:.2} s   (target <= 3 s)",
        outcome.longest_gap.as_secs_f64()
    );
    println!("  failed write attempts             {}", outcome.failed);
    println!(
        "  acknowledged writes               {}",
        outcome.acked.len()
    );
    println!("  acknowledged writes lost          {lost}   (target 0)");
}
