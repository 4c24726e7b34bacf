//! Frame render time of the console with 1,000 clusters of 3 instances (criterion).
//! Run: `cargo bench --bench console_render`. Target: ≤ 2 ms per frame.

mod support;
use support as fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use pgdeck::console::app::App;
use pgdeck::console::view;
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

    let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap();
    c.bench_function("frame: 1000 clusters, list view, 80x24", |b| {
        b.iter(|| {
            small.draw(|f| view::draw(f, &list)).unwrap();
        })
    });
}

criterion_group!(benches, frames);
criterion_main!(benches);
