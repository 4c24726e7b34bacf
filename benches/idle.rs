//! What idle clusters cost the local reconciler: N clusters applied at once, the time until all
//! are Ready, then, once settled, the reconciler's CPU (% of one core over 60 s, from its
//! `/proc/<pid>/stat`), its RSS, and the status files it writes per minute. And what the home's
//! size costs a reader: `pgdeck get`, and the console's list (its refresh reads every cluster
//! of the home again, after each status write; a frame draws it).
//!
//! Run: `cargo bench --bench idle` (1 and 10 clusters of one instance);
//! `PGDECK_IDLE=1,10,50,10x3,10+90 cargo bench --bench idle` picks the shapes (`NxR`: N clusters
//! of R instances; `+S`: S more clusters applied with `spec.shutdown: true`, reconciled and
//! listed but running no process: a home of many clusters without the machine to run them).
//! BENCHMARKS.md records results.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::local::{LocalHome, manifest};
use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode, Watcher};
use pgdeck::api::support::Platform;
use pgdeck::console::app::{App, Data};
use pgdeck::console::theme::Theme;
use pgdeck::console::view;
use pgdeck::platform::local::home::Home;
use pgdeck::platform::local::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Long enough after Ready for first backups, repository reads and volume measures to finish.
const SETTLE: Duration = Duration::from_secs(60);
const WINDOW: Duration = Duration::from_secs(60);

struct Figures {
    ready: Duration,
    cpu_percent: f64,
    rss_mb: f64,
    /// Status files written during the window, by cluster.
    writes: BTreeMap<String, usize>,
    /// `pgdeck get`, median of 10.
    get: Duration,
    /// The console list's refresh (the store listed, as on every change), median of 10.
    list: Duration,
    /// A frame of the console's list of these clusters (160x50), median of 100.
    frame: Duration,
}

fn main() {
    let shapes = std::env::var("PGDECK_IDLE").unwrap_or_else(|_| "1,10".into());
    println!(
        "idle clusters on the local platform: the reconciler over {} s, {} s after all were Ready",
        WINDOW.as_secs(),
        SETTLE.as_secs()
    );
    println!(
        "| clusters × instances | apply → all Ready | reconciler CPU | RSS | status writes/min | `pgdeck get` | console list refresh | list frame |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for shape in shapes.split(',') {
        let (running, shut) = match shape.split_once('+') {
            Some((running, shut)) => (running, shut.parse().unwrap()),
            None => (shape, 0),
        };
        let (n, r) = match running.split_once('x') {
            Some((n, r)) => (n.parse().unwrap(), r.parse().unwrap()),
            None => (running.parse().unwrap(), 1),
        };
        let f = measure(n, r, shut);
        let total: usize = f.writes.values().sum();
        let shape = match shut {
            0 => format!("{n} × {r}"),
            _ => format!("{n} × {r} + {shut} shut down"),
        };
        println!(
            "| {shape} | {:.1} s | {:.2} % | {:.1} MB | {:.1} | {:.0} ms | {:.1} ms | {:.2} ms |",
            f.ready.as_secs_f64(),
            f.cpu_percent,
            f.rss_mb,
            total as f64 * 60.0 / WINDOW.as_secs_f64(),
            f.get.as_secs_f64() * 1000.0,
            f.list.as_secs_f64() * 1000.0,
            f.frame.as_secs_f64() * 1000.0,
        );
        if total > 0 {
            println!("  status written, by cluster: {:?}", f.writes);
        }
    }
}

fn measure(n: usize, replicas: u32, shut: usize) -> Figures {
    // Not `pgdeck-test-*`, which a long run may see cleaned away; no longer (sockets live in it).
    let home = LocalHome::named("pgdeck-idle-");
    let names = (0..n + shut).map(|i| format!("idle{i:03}"));
    let start = Instant::now();
    let applies: Vec<_> = names
        .enumerate()
        .map(|(i, name)| {
            let file = home.path().join(format!("{name}.yaml"));
            let spec = if i < n { "" } else { "  shutdown: true\n" };
            std::fs::write(&file, manifest(&name, replicas, "", spec, "")).unwrap();
            home.command()
                .args(["apply", "-f", file.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for apply in applies {
        let out = apply.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_all_ready(&home, n, n + shut, Duration::from_secs(60 * 20));
    let ready = start.elapsed();
    eprintln!(
        "{n} x {replicas}: all Ready after {:.1} s",
        ready.as_secs_f64()
    );

    std::thread::sleep(SETTLE);
    let pid: u32 = std::fs::read_to_string(home.path().join("operator.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        if let Ok(e) = e
            && matches!(
                e.kind,
                EventKind::Modify(ModifyKind::Name(_)) | EventKind::Create(_)
            )
        {
            for p in e.paths {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if let Some(cluster) = name.strip_suffix(".status.yaml") {
                    let _ = tx.send(cluster.to_string());
                }
            }
        }
    })
    .unwrap();
    watcher
        .watch(
            &home.path().join("namespaces/default"),
            RecursiveMode::NonRecursive,
        )
        .unwrap();
    let before = cpu_ticks(pid);
    std::thread::sleep(WINDOW);
    let used = cpu_ticks(pid) - before;
    drop(watcher);
    let mut writes = BTreeMap::new();
    for cluster in rx.try_iter() {
        *writes.entry(cluster).or_insert(0) += 1;
    }
    // `/proc` counts CPU time in USER_HZ, 100 a second on Linux.
    let hz = 100.0;
    let get = median(10, || {
        assert!(home.command().arg("get").output().unwrap().status.success());
    });
    let store = Store::new(Home::at(home.path().to_path_buf()));
    let list = median(10, || {
        assert_eq!(store.list(None).unwrap().len(), n + shut);
    });
    let mut app = App::new(
        Platform::Local,
        "local".into(),
        None,
        false,
        Theme::default_theme(),
        Duration::from_secs(2),
    );
    app.on_data(Data::Clusters(store.list(None).unwrap()));
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();
    let frame = median(100, || {
        terminal.draw(|f| view::draw(f, &app)).unwrap();
    });
    Figures {
        get,
        list,
        frame,
        ready,
        cpu_percent: used as f64 / hz / WINDOW.as_secs_f64() * 100.0,
        rss_mb: rss_kb(pid) as f64 / 1024.0,
        writes,
    }
}

/// The median time of `runs` runs of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// `n` clusters Ready, and every one of `all` with a status.
fn wait_all_ready(home: &LocalHome, n: usize, all: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let out = home.command().args(["get", "-o", "json"]).output().unwrap();
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let conditions = |c: &serde_json::Value| c["status"]["conditions"].as_array().cloned();
        let ready = (items.iter())
            .filter(|c| {
                conditions(c)
                    .into_iter()
                    .flatten()
                    .any(|k| k["type"] == "Ready" && k["status"] == "True")
            })
            .count();
        let seen = items.iter().filter(|c| conditions(c).is_some()).count();
        if ready == n && seen == all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready} of {n} Ready, {seen} of {all} with a status"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// User plus system time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of stat, counted from the state (field 3).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}
