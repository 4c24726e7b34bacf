//! The History tab: the cluster's timeline switches (Patroni's `/history`) beside pgdeck's own
//! records of switchovers and failovers, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{col, list_table, poll_state};
use crate::console::app::App;
use crate::display;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let h = &app.history;
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let mut spans: Vec<Span> = poll_state(
        t,
        h.error.as_ref(),
        h.last_ok,
        "reading Patroni's /history…",
    )
    .into_iter()
    .collect();
    if h.last_ok.is_some() {
        spans.push(Span::styled(
            format!(
                "{} timeline switches (Patroni /history) beside pgdeck's switchover records, newest first",
                h.switches.len()
            ),
            t.muted,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), head);

    let cols = [
        col("TIME", 19, 8),
        col("AGE", 5, 4),
        col("TIMELINE", 8, 9),
        col("LSN", 11, 6),
        col("BY", 7, 5),
        col("WHAT", 30, 7),
        col("DETAIL", 20, 9),
    ];
    let empty = h.last_ok.map(
        |_| "no timeline switch yet: the cluster has run on its first timeline since it was made",
    );
    let entries = app.history_entries();
    list_table(frame, body, app, &cols, entries.into_iter(), empty, |e| {
        let style = if e.warning {
            t.warn
        } else if e.by == "Patroni" {
            t.text
        } else {
            t.muted
        };
        [
            e.time
                .map(|at| {
                    at.to_zoned(app.tz.clone())
                        .strftime("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_else(|| "(not recorded)".into()),
            e.time
                .map(|at| display::duration(app.now.as_second() - at.as_second()))
                .unwrap_or_default(),
            e.timeline,
            e.lsn,
            e.by.to_string(),
            e.what,
            e.detail,
        ]
        .into_iter()
        .map(|cell| Span::styled(cell, style))
        .collect()
    });
}
