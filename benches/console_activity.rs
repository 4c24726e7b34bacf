//! The Activity tab with 500 sessions: the time to draw a frame (500 sessions in the app, drawn
//! to ratatui's TestBackend), and what the poll costs the database: a real local cluster with
//! 500 client sessions (50 of them waiting on a lock, 20 running, 20 idle in a transaction), its
//! poll query run every second (the shortest refresh the tab uses) for 30 s, and the CPU of the
//! backend serving it (% of one core, from its `/proc/<pid>/stat`).
//!
//! Run: `cargo bench --bench console_activity`. Targets: a frame ≤ 2 ms; the poll under 1 % of
//! one core on the database side. BENCHMARKS.md records results.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::local::{LocalHome, manifest};
use pgdeck::console::app::{App, Data};
use pgdeck::observe::activity::{Backend, SESSIONS_SQL, Session};
use pgdeck::platform::local::cluster::superuser_conninfo;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use support::ms;
use tokio_postgres::NoTls;

const SESSIONS: usize = 500;
const WINDOW: Duration = Duration::from_secs(30);

fn main() {
    println!("Activity tab, {SESSIONS} sessions");
    println!("| measure | result | target |");
    println!("| --- | --- | --- |");
    frames();
    poll();
}

/// Sessions as a busy instance has them: most idle, some running, some in chains of waiters.
fn sessions(n: usize) -> Vec<Session> {
    (0..n)
        .map(|i| {
            let pid = 10_000 + i as i32;
            let (state, wait, blocked_by) = match i % 10 {
                0 => ("active", String::new(), Vec::new()),
                1 => ("idle in transaction", String::new(), Vec::new()),
                2 => ("active", "Lock: transactionid".into(), vec![pid - 1]),
                _ => ("idle", "Client: ClientRead".into(), Vec::new()),
            };
            Session {
                backend: Backend {
                    pid,
                    started_us: 1_763_700_000_000_000 + i as i64,
                },
                user: format!("app{}", i % 7),
                application: "orders-service".into(),
                state: state.into(),
                wait,
                seconds: (i * 37 % 5000) as f64,
                query: format!(
                    "SELECT * FROM orders WHERE id = {i} {}",
                    "AND x ".repeat(160)
                ),
                blocked_by,
            }
        })
        .collect()
}

fn frames() {
    let mut app = support::console(1);
    let key = |app: &mut App, code| app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    key(&mut app, KeyCode::Enter);
    for _ in 0..4 {
        key(&mut app, KeyCode::Tab);
    }
    let target = app
        .activity
        .target
        .clone()
        .expect("the Activity tab is open");
    app.on_data(Data::Activity {
        key: target.key,
        instance: target.instance,
        result: Ok(sessions(SESSIONS)),
        at: jiff::Timestamp::now(),
    });
    assert_eq!(app.activity.visible().len(), SESSIONS);
    for _ in 0..SESSIONS / 2 {
        key(&mut app, KeyCode::Char('j'));
    }
    for (w, h) in [(160, 50), (80, 24)] {
        let (median, p99) = support::frame_times(&app, w, h);
        println!(
            "| frame, {w}×{h}, cursor mid-list (median of 1,000; p99 {:.2} ms) | {:.2} ms | ≤ 2 ms |",
            ms(p99),
            ms(median)
        );
    }
}

fn poll() {
    let home = LocalHome::new();
    home.apply_ready(
        &manifest(
            "activity",
            1,
            "",
            "  patroni:\n    dynamicConfiguration:\n      postgresql:\n        parameters:\n          max_connections: 600\n",
            "",
        ),
        "180s",
    );
    let status = home.status("activity");
    let primary = status["primary"].as_str().unwrap().to_string();
    let port = status["instances"][0]["port"].as_u64().unwrap() as u16;
    let socket = pgdeck::platform::local::home::InstanceDir(
        home.path()
            .join("namespaces/default/activity/instances")
            .join(&primary),
    )
    .socket_dir();
    let conninfo = superuser_conninfo(&socket, port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let connect = || async {
            let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await.unwrap();
            tokio::spawn(connection);
            client
        };
        let mut clients = Vec::new();
        for _ in 0..SESSIONS / 50 {
            clients.extend(futures::future::join_all((0..50).map(|_| connect())).await);
        }
        clients[0]
            .batch_execute("CREATE TABLE held (i int)")
            .await
            .unwrap();
        let holder = clients.pop().unwrap();
        holder
            .batch_execute("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let mut busy = Vec::new();
        for (n, client) in clients.drain(..90).enumerate() {
            busy.push(tokio::spawn(async move {
                let sql = match n {
                    0..50 => "SELECT count(*) FROM held",
                    50..70 => "SELECT pg_sleep(600)",
                    _ => "BEGIN; SELECT 1",
                };
                let _ = client.batch_execute(sql).await;
                // Idle in a transaction until the bench ends.
                std::future::pending::<()>().await;
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;

        let poller = connect().await;
        let pid: i32 = poller
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let rows = poller.query(SESSIONS_SQL, &[]).await.unwrap();
        let waiting = rows
            .iter()
            .filter(|r| !r.get::<_, Vec<i32>>(8).is_empty())
            .count();
        assert!(rows.len() >= SESSIONS && waiting >= 50, "{} rows", rows.len());

        let cpu = support::cpu_seconds(pid as u32);
        let start = Instant::now();
        let mut latencies = Vec::new();
        while start.elapsed() < WINDOW {
            let t = Instant::now();
            poller.query(SESSIONS_SQL, &[]).await.unwrap();
            latencies.push(t.elapsed());
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(t.elapsed())).await;
        }
        let used = support::cpu_seconds(pid as u32) - cpu;
        latencies.sort();
        println!(
            "| poll query with {} sessions ({waiting} waiting on a lock), median of {} | {:.2} ms | |",
            rows.len(),
            latencies.len(),
            ms(latencies[latencies.len() / 2])
        );
        println!(
            "| database CPU of the poll, every 1 s for {} s | {:.2} % of one core | < 1 % |",
            WINDOW.as_secs(),
            used / start.elapsed().as_secs_f64() * 100.0
        );
        for task in busy {
            task.abort();
        }
        drop(holder);
    });
}
