//! Frame render time of the console with 1,000 clusters of 3 instances (criterion).
//! Run: `cargo bench --bench console_render`. Target: ≤ 2 ms per frame.

mod support;
use support as fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pgdeck::console::app::{App, Data, View};
use pgdeck::console::samples::KEPT;
use pgdeck::console::view;
use pgdeck::observe::vitals::{Connections, Vitals};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn app() -> App {
    fixtures::console(1000)
}

fn frames(c: &mut Criterion) {
    let mut list = app();
    // Somewhere in the middle, as a DBA scrolling would be.
    for _ in 0..500 {
        list.on_key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
    }
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();
    c.bench_function("frame: 1000 clusters, list view, 160x50", |b| {
        b.iter(|| {
            terminal.draw(|f| view::draw(f, &list)).unwrap();
        })
    });

    let mut open = app();
    open.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    c.bench_function("frame: 1000 clusters, cluster view, 160x50", |b| {
        b.iter(|| {
            terminal.draw(|f| view::draw(f, &open)).unwrap();
        })
    });

    // The same, open for minutes: every column filled, every sparkline full.
    let mut dense = app();
    dense.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    fill_live(&mut dense);
    c.bench_function(
        "frame: 1000 clusters, cluster view, live columns and sparklines, 160x50",
        |b| {
            b.iter(|| {
                terminal.draw(|f| view::draw(f, &dense)).unwrap();
            })
        },
    );

    let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap();
    c.bench_function("frame: 1000 clusters, list view, 80x24", |b| {
        b.iter(|| {
            small.draw(|f| view::draw(f, &list)).unwrap();
        })
    });
}

/// What the open cluster's source sends over minutes: polls with lag, and vitals with WAL
/// positions, connections and commits, until every sample ring is full.
fn fill_live(app: &mut App) {
    let key = match &app.view {
        View::Cluster { key, .. } => key.clone(),
        View::Clusters => unreachable!("a cluster is open"),
    };
    let mut instances = app.instances();
    for i in &mut instances {
        i.postgres_version = Some("15.10".into());
        i.started_at = Some(Time(jiff::Timestamp::now()));
        i.tags = vec!["nofailover".into()];
    }
    let start = jiff::Timestamp::now();
    for n in 0..2 * KEPT as i64 {
        let at = start + jiff::SignedDuration::from_secs(n);
        for i in instances.iter_mut().skip(1) {
            i.lag_bytes = Some(n * 512 % 100_000);
        }
        app.on_data(Data::Live {
            key: key.clone(),
            result: Ok(instances.clone()),
            at,
        });
        let vitals = instances
            .iter()
            .map(|i| {
                let v = Vitals {
                    wal_lsn: Some(0x3000_0000 + n * 8192),
                    received_lsn: Some(0x3000_0000 + n * 8000),
                    replayed_lsn: Some(0x3000_0000 + n * 7000),
                    connections: Some(Connections { used: 12, max: 100 }),
                    commits: Some(n * n * 10),
                };
                (i.name.clone(), v)
            })
            .collect();
        app.on_data(Data::Vitals {
            key: key.clone(),
            vitals,
            at,
        });
    }
}

criterion_group!(benches, frames);
criterion_main!(benches);
