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
use tokio_postgres::NoTls;

fn manifest(memory: &str) -> String {
    common::local::manifest(
        "avail",
        2,
        &format!("      resources: {{limits: {{memory: {memory}}}}}\n"),
        "  patroni:\n    dynamicConfiguration:\n      synchronous_mode: true\n",
        "",
    )
}

struct Outcome {
    acked: Vec<i64>,
    failed: usize,
    longest_gap: Duration,
}

/// Insert rows one after another until `stop`, reconnecting whenever the primary goes away.
async fn writer(uri: String, stop: tokio::sync::watch::Receiver<bool>) -> Outcome {
    let mut acked = Vec::new();
    let mut failed = 0;
    let mut last_ok = Instant::now();
    let mut longest_gap = Duration::ZERO;
    let mut client: Option<tokio_postgres::Client> = None;
    let mut id = 0i64;
    while !*stop.borrow() {
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            let mut config: tokio_postgres::Config = uri.parse().expect("a URI");
            config.connect_timeout(Duration::from_millis(500));
            client = match config.connect(NoTls).await {
                Ok((c, conn)) => {
                    tokio::spawn(conn);
                    Some(c)
                }
                Err(_) => {
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
        }
        id += 1;
        let c = client.as_ref().expect("connected");
        match tokio::time::timeout(
            Duration::from_secs(2),
            c.execute("INSERT INTO probe VALUES ($1, now())", &[&id]),
        )
        .await
        {
            Ok(Ok(_)) => {
                longest_gap = longest_gap.max(last_ok.elapsed());
                last_ok = Instant::now();
                acked.push(id);
            }
            _ => {
                failed += 1;
                client = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Outcome {
        acked,
        failed,
        longest_gap,
    }
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
    home.psql(
        &uri,
        "CREATE TABLE probe (id bigint PRIMARY KEY, at timestamptz)",
    );
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
    let writing = runtime.spawn(writer(uri.trim().to_string(), stop_rx));
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

    let present = home.psql(
        &home.ok(&["uri", "avail"]),
        "SELECT string_agg(id::text, ',') FROM probe",
    );
    let present: std::collections::HashSet<i64> =
        present.split(',').filter_map(|s| s.parse().ok()).collect();
    let lost = outcome
        .acked
        .iter()
        .filter(|id| !present.contains(id))
        .count();

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
