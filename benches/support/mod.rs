//! Fixed data for the console benchmarks: `n` clusters of three instances with status; and
//! what a process costs.
#![allow(dead_code)] // each bench uses its own subset

use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pgdeck::api::status::{InstanceStatus, PostgresClusterStatus};
use pgdeck::api::support::Platform;
use pgdeck::api::{PostgresCluster, manifest};
use pgdeck::console::app::{App, Data};
use pgdeck::console::theme::Theme;
use pgdeck::console::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub fn manifest_text(name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: pgdeck.dev/v1
kind: PostgresCluster
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  postgresVersion: 15
  paused: true
  instances:
    - name: instance1
      replicas: 3
      dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"
    )
}

pub fn status(name: &str, i: usize) -> PostgresClusterStatus {
    let member = |n: usize, role: &str| InstanceStatus {
        name: format!("{name}-instance1-{n:04}"),
        set: "instance1".into(),
        role: Some(role.into()),
        state: Some(
            if role == "primary" {
                "running"
            } else {
                "streaming"
            }
            .into(),
        ),
        timeline: Some(1),
        lag_bytes: (role != "primary").then_some((i * 4096 + n) as i64),
        replay_lag_seconds: (role != "primary").then_some(0.1),
        ready: true,
        host: Some("127.0.0.1".into()),
        port: Some(20000 + n as i32),
        patroni_port: Some(21000 + n as i32),
        ..Default::default()
    };
    PostgresClusterStatus {
        ready: Some("3/3".into()),
        primary: Some(format!("{name}-instance1-0000")),
        instance_count: Some(3),
        sync: Some("off".into()),
        instances: vec![
            member(0, "primary"),
            member(1, "sync_standby"),
            member(2, "replica"),
        ],
        ..Default::default()
    }
}

pub fn clusters(n: usize) -> Vec<PostgresCluster> {
    (0..n)
        .map(|i| {
            let name = format!("cluster-{i:04}");
            let mut c =
                manifest::parse(&manifest_text(&name, &format!("team-{}", i % 10))).unwrap();
            c.metadata.creation_timestamp = Some(Time(jiff::Timestamp::now()));
            c.status = Some(status(&name, i));
            c
        })
        .collect()
}

/// The console as the benchmarks drive it: local, `n` clusters listed.
pub fn console(n: usize) -> App {
    let mut app = App::new(
        Platform::Local,
        "local /bench".into(),
        None,
        false,
        Theme::default_theme(),
        Duration::from_secs(2),
    );
    app.on_data(Data::Clusters(clusters(n)));
    app
}

/// The median and 99th percentile of 1,000 frames of `app` drawn at `w`×`h`, after 100 to warm
/// up.
pub fn frame_times(app: &App, w: u16, h: u16) -> (Duration, Duration) {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    for _ in 0..100 {
        terminal.draw(|f| view::draw(f, app)).unwrap();
    }
    let mut times: Vec<Duration> = (0..1000)
        .map(|_| {
            let t = Instant::now();
            terminal.draw(|f| view::draw(f, app)).unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[500], times[989])
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU seconds (user + system) the process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks
        / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .unwrap()
            .unwrap() as f64
}
