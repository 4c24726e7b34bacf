//! A steady writer for availability and durability checks: one row after another through a
//! URI, reconnecting whenever the server goes away, remembering every acknowledged row. After
//! the chaos, every acknowledged row must still be there.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::local::LocalHome;

pub const TABLE: &str = "CREATE TABLE IF NOT EXISTS probe (id bigint PRIMARY KEY, at timestamptz)";

#[derive(Debug, Default)]
pub struct Outcome {
    pub acked: Vec<i64>,
    /// When each of `acked` was acknowledged.
    pub acked_at: Vec<Instant>,
    pub failed: usize,
    /// Why each failure failed, in order.
    pub errors: Vec<String>,
    /// The longest time between two acknowledged writes.
    pub longest_gap: Duration,
    /// Every gap longer than a second: (when it began, how long), in order.
    pub outages: Vec<(Instant, Duration)>,
}

impl Outcome {
    /// How long no write succeeded around `event`: from the last acknowledgement before it
    /// to the first after it.
    pub fn outage_around(&self, event: Instant) -> Option<Duration> {
        let before = self.acked_at.iter().rev().find(|t| **t <= event)?;
        let after = self.acked_at.iter().find(|t| **t > event)?;
        Some(*after - *before)
    }

    /// Acknowledged rows missing from `present`.
    pub fn lost(&self, present: &HashSet<i64>) -> Vec<i64> {
        self.acked
            .iter()
            .filter(|id| !present.contains(id))
            .copied()
            .collect()
    }
}

/// Insert rows with ids from `first` on until `stop`; each statement may take `patience`.
pub async fn write(
    uri: String,
    first: i64,
    patience: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut last_ok = Instant::now();
    let mut client: Option<tokio_postgres::Client> = None;
    let mut id = first;
    while !*stop.borrow() {
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            let (mut config, tls) = super::tls::config(&uri);
            config.connect_timeout(Duration::from_millis(500));
            client = match config.connect(tls).await {
                Ok((c, conn)) => {
                    tokio::spawn(conn);
                    Some(c)
                }
                Err(e) => {
                    out.failed += 1;
                    out.errors.push(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
        }
        id += 1;
        let c = client.as_ref().expect("connected");
        // One simple-protocol statement: a prepared one is a Parse and then a Bind, which a
        // pooler in transaction mode may send to two servers (pgBouncer before 1.21 does not
        // carry prepared statements across), so a pause between them fails the statement.
        let sql = format!("INSERT INTO probe VALUES ({id}, now())");
        let insert = c.batch_execute(&sql);
        match tokio::time::timeout(patience, insert).await {
            Ok(Ok(_)) => {
                let gap = last_ok.elapsed();
                if gap > Duration::from_secs(1) {
                    out.outages.push((last_ok, gap));
                }
                out.longest_gap = out.longest_gap.max(gap);
                last_ok = Instant::now();
                out.acked.push(id);
                out.acked_at.push(last_ok);
            }
            Ok(Err(e)) => {
                out.failed += 1;
                out.errors.push(e.to_string());
                client = None;
            }
            Err(_) => {
                out.failed += 1;
                out.errors.push(format!("no answer within {patience:?}"));
                client = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    out
}

/// The ids in `probe`, read through `uri` with psql; waits up to a minute for a primary that
/// takes connections (after a failover the status may say ready a moment before it does).
pub fn present(uri: &str) -> HashSet<i64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = std::process::Command::new("psql")
            .args([
                uri.trim(),
                "-XAtq",
                "-c",
                "SELECT string_agg(id::text, ',') FROM probe",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout)
                .trim()
                .split(',')
                .filter_map(|s| s.parse().ok())
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A writer through the cluster's read-write URI, running on its own runtime until stopped.
pub struct Writing {
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
}

impl Writing {
    pub fn start(home: &LocalHome, name: &str) -> Writing {
        Writing::through(home, &home.ok(&["uri", name]), Duration::from_secs(2))
    }

    /// A writer through `uri` (a pooler's, say), each statement waiting up to `patience`.
    pub fn through(home: &LocalHome, uri: &str, patience: Duration) -> Writing {
        home.psql(uri, TABLE);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = runtime.spawn(write(uri.trim().to_string(), 0, patience, rx));
        Writing {
            runtime,
            stop,
            tasks: vec![task],
        }
    }

    /// Another writer, through `uri`, with ids of its own.
    pub fn also(&mut self, uri: String, first: i64, patience: Duration) {
        let task = self
            .runtime
            .spawn(write(uri, first, patience, self.stop.subscribe()));
        self.tasks.push(task);
    }

    /// Stop, and check that every acknowledged row is in the cluster now.
    pub fn finish(self, home: &LocalHome, name: &str) -> Vec<Outcome> {
        self.stop.send(true).unwrap();
        let outcomes: Vec<Outcome> = self
            .tasks
            .into_iter()
            .map(|t| self.runtime.block_on(t).unwrap())
            .collect();
        let present: HashSet<i64> = present(&home.ok(&["uri", name]));
        for o in &outcomes {
            let lost = o.lost(&present);
            assert!(
                lost.is_empty(),
                "{} of {} acknowledged writes lost: {lost:?}",
                lost.len(),
                o.acked.len()
            );
        }
        assert!(!outcomes[0].acked.is_empty(), "the writer wrote nothing");
        outcomes
    }
}

/// `uri` with its hosts replaced by 127.0.0.1:`port` and no session attribute: one server,
/// still over TLS as `uri` asks.
pub fn pin_to_port(uri: &str, port: i64) -> String {
    let (head, rest) = uri.split_once('@').unwrap();
    let path = &rest[rest.find('/').unwrap()..];
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let query: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("target_session_attrs="))
        .collect();
    format!("{head}@127.0.0.1:{port}{path}?{}", query.join("&"))
}
