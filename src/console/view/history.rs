//! The History tab: the cluster's timeline switches (Patroni's `/history`) beside pgdeck's own
//! records of switchovers and failovers, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, TableState};

use super::{col, column_table, fit, poll_state, window_start};
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

    let entries = app.history_entries();
    if entries.is_empty() {
        let why = if h.last_ok.is_some() {
            "no timeline switch yet: the cluster has run on its first timeline since it was made"
        } else {
            ""
        };
        frame.render_widget(Paragraph::new(Span::styled(why, t.muted)), body);
        return;
    }
    let cols = [
        col("TIME", 19, 8),
        col("AGE", 5, 4),
        col("TIMELINE", 8, 9),
        col("LSN", 11, 6),
        col("BY", 7, 5),
        col("WHAT", 30, 7),
        col("DETAIL", 20, 9),
    ];
    let shown = fit(&cols, body.width);
    let height = body.height.saturating_sub(1) as usize;
    let start = window_start(app.row, height, entries.len());
    let rows: Vec<Row> = entries
        .iter()
        .skip(start)
        .take(height)
        .map(|e| {
            let cells = [
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
                e.timeline.clone(),
                e.lsn.clone(),
                e.by.to_string(),
                e.what.clone(),
                e.detail.clone(),
            ];
            let style = if e.warning {
                t.warn
            } else if e.by == "Patroni" {
                t.text
            } else {
                t.muted
            };
            Row::new(
                shown
                    .iter()
                    .map(|&n| Cell::from(Span::styled(cells[n].clone(), style))),
            )
        })
        .collect();
    let table = column_table(rows, &cols, &shown, t);
    let mut state =
        TableState::default().with_selected(Some(app.row.min(entries.len() - 1) - start));
    frame.render_stateful_widget(table, body, &mut state);
}
