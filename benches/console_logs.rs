//! The Logs tab with 10,000 lines (its cap): the time to draw a frame while following, and
//! paused mid-log with a search whose matches are on screen; the time to take a chunk of 1,000
//! new lines into the full buffer (what the follow does when a busy instance logs); and the
//! local platform's first read of a log file's tail (256 KiB).
//!
//! Run: `cargo bench --bench console_logs`. Target: a frame ≤ 2 ms. BENCHMARKS.md records
//! results.

mod support;

use std::time::{Duration, Instant};

use pgdeck::console::app::{App, Data};
use pgdeck::console::logs::MAX_LINES;
use pgdeck::observe::logs::{Chunk, Lines};
use pgdeck::platform::local::log_tail::InstanceLogs;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use support::ms;

fn main() {
    println!("Logs tab, {MAX_LINES} lines");
    println!("| measure | result | target |");
    println!("| --- | --- | --- |");
    frames();
    tail();
}

/// `n` lines as an instance logs them: PostgreSQL's mostly, Patroni's every tenth.
fn log(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| match i % 10 {
            0 => format!(
                "2026-12-01 21:03:02,{:03} INFO: no action. I am (bench-instance1-a), the leader with the lock\n",
                i % 1000
            ),
            _ => format!(
                "2026-12-01 21:03:02.{:03} UTC [{}] LOG:  duration: {}.{:03} ms  statement: SELECT * FROM orders WHERE id = {i}\n",
                i % 1000,
                4000 + i % 300,
                i % 97,
                i % 1000
            ),
        })
        .collect()
}

fn frames() {
    let mut app = support::console(1);
    let key = |app: &mut App, code| app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    key(&mut app, KeyCode::Enter);
    for _ in 0..5 {
        key(&mut app, KeyCode::Tab);
    }
    let target = app.logs.target.clone().expect("the Logs tab is open");
    let feed = |app: &mut App, text: &str, reset| {
        app.on_data(Data::Logs {
            key: target.key.clone(),
            instance: target.instance.clone(),
            result: Ok(Chunk {
                lines: Lines::default().push(text.as_bytes()),
                reset,
            }),
        })
    };
    feed(&mut app, &log(0, MAX_LINES), true);
    assert_eq!(app.logs.len(), MAX_LINES);
    app.page = 44;
    draw_frames(&app, "following");
    key(&mut app, KeyCode::Char('/'));
    for c in "orders".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    for _ in 0..MAX_LINES / 2 / 44 {
        key(&mut app, KeyCode::PageUp);
    }
    assert!(!app.logs.follow);
    draw_frames(&app, "paused mid-log, a search matching 9 lines in 10");

    let chunks: Vec<String> = (0..100).map(|i| log(MAX_LINES + i * 1000, 1000)).collect();
    let t = Instant::now();
    for c in &chunks {
        feed(&mut app, c, false);
    }
    println!(
        "| 1,000 new lines into the full buffer (parsed, classified, oldest dropped; mean of 100) | {:.2} ms | |",
        ms(t.elapsed()) / 100.0
    );
}

fn draw_frames(app: &App, what: &str) {
    let (median, p99) = support::frame_times(app, 160, 50);
    println!(
        "| frame, 160×50, {what} (median of 1,000; p99 {:.2} ms) | {:.2} ms | ≤ 2 ms |",
        ms(p99),
        ms(median)
    );
}

fn tail() {
    let dir = tempfile::tempdir().unwrap();
    let inst = dir.path().join("bench-instance1-a");
    std::fs::create_dir(&inst).unwrap();
    std::fs::write(inst.join("patroni.log"), log(0, 200_000)).unwrap();
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let mut logs = InstanceLogs::new(dir.path(), "bench-instance1-a", false);
            let t = Instant::now();
            let chunk = logs.poll();
            let took = t.elapsed();
            assert!(chunk.lines.len() > 1000);
            took
        })
        .collect();
    times.sort();
    println!(
        "| first read of a 20 MB log: its last 256 KiB (median of 20) | {:.2} ms | |",
        ms(times[10])
    );
}
