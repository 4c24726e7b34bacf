//! The console as a process, measured in tmux: start to first frame, idle CPU over 30 s with a
//! real cluster open, and resident memory with 1,000 clusters.
//! Run: `cargo bench --bench console_process`. Targets: ≤ 100 ms to the first frame, ≤ 1 % of
//! one core idle, ≤ 50 MB RSS.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use common::local::LocalHome;
use pgdeck::platform::local::home::Home;
use pgdeck::platform::local::lock::OperatorLock;
use pgdeck::platform::local::store::Store;

struct Tmux(String);

impl Tmux {
    fn start() -> Tmux {
        let name = format!("pgdeck-bench-{}", std::process::id());
        Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "160",
                "-y",
                "50",
                "bash",
                "--norc",
                "--noprofile",
            ])
            .status()
            .unwrap();
        let t = Tmux(name);
        t.keys(&["PS1='$ '", "Enter"]);
        t
    }
    fn keys(&self, keys: &[&str]) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .unwrap();
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(
            &Command::new("tmux")
                .args(["capture-pane", "-p", "-t", &self.0])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    }
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok(&self.screen()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    fn quit(&self) {
        self.keys(&["q"]);
        self.wait("the shell", |s| s.trim_end().ends_with('$'));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

fn console(home: &std::path::Path) -> String {
    format!(
        "PGDECK_HOME={} {} --platform local",
        home.display(),
        env!("CARGO_BIN_EXE_pgdeck")
    )
}

fn console_pid(home: &LocalHome) -> u32 {
    home.pids_matching(&["pgdeck", "--platform local"])
        .into_iter()
        .find(|p| {
            !String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default(),
            )
            .contains("operator")
        })
        .expect("the console runs")
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let tmux = Tmux::start();

    // 1,000 clusters in a home whose lock the bench holds, so no reconciler runs beside.
    let big = LocalHome::new();
    let home = Home::at(big.path().to_path_buf());
    let _lock = OperatorLock::acquire(&home)
        .unwrap()
        .ok()
        .expect("the lock is free");
    let store = Store::new(home.clone());
    for (i, c) in support::clusters(1000).into_iter().enumerate() {
        let status = c.status.clone().unwrap();
        store.apply(c.clone()).unwrap();
        store
            .write_status(c.namespace(), c.name(), &status)
            .unwrap();
        let _ = i;
    }

    let mut first = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        tmux.keys(&[&console(big.path()), "Enter"]);
        tmux.wait("the first frame", |s| s.contains(" pgdeck "));
        first.push(start.elapsed());
        tmux.wait("the list", |s| s.contains("Clusters [1000]"));
        tmux.quit();
    }
    first.sort();

    tmux.keys(&[&console(big.path()), "Enter"]);
    tmux.wait("the list", |s| s.contains("Clusters [1000]"));
    for _ in 0..200 {
        tmux.keys(&["j"]);
    }
    tmux.keys(&["G"]);
    std::thread::sleep(Duration::from_secs(2));
    let (rss, peak) = rss_kib(console_pid(&big));
    tmux.quit();
    drop(big);

    // Idle with one real cluster open: the Patroni poll runs, nothing else happens.
    let real = LocalHome::new();
    let manifest = support::manifest_text("idle", "default")
        .replace("  paused: true\n", "")
        .replace("replicas: 3", "replicas: 1");
    real.apply_ready(&manifest, "120s");
    tmux.keys(&[&console(real.path()), "Enter"]);
    tmux.wait("the list", |s| s.contains("Clusters [1]"));
    tmux.keys(&["Enter"]);
    tmux.wait("the cluster", |s| s.contains("live ·"));
    std::thread::sleep(Duration::from_secs(3));
    let pid = console_pid(&real);
    let before = support::cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(30));
    let idle = (support::cpu_seconds(pid) - before) / 30.0 * 100.0;
    tmux.quit();

    println!("console as a process (tmux 160x50)");
    println!(
        "  start to first frame, median of 10   {:.0} ms   (target <= 100 ms)",
        first[5].as_secs_f64() * 1000.0
    );
    println!(
        "  start to first frame, worst of 10    {:.0} ms",
        first[9].as_secs_f64() * 1000.0
    );
    println!("  idle CPU, one cluster open, 30 s     {idle:.2} % of one core   (target <= 1 %)");
    println!(
        "  RSS with 1,000 clusters              {:.1} MB (peak {:.1} MB)   (target <= 50 MB)",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
