//! The Events tab: the reconciler's conditions and the cluster's events, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::window_start;
use crate::console::app::App;
use crate::display;

struct Entry {
    at: jiff::Timestamp,
    kind: String,
    warning: bool,
    reason: String,
    message: String,
    source: String,
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut entries: Vec<Entry> = app
        .open_cluster()
        .and_then(|c| c.status.as_ref())
        .map(|s| {
            s.conditions
                .iter()
                .map(|c| Entry {
                    at: c.last_transition_time.0,
                    kind: format!("{}={}", c.type_, c.status),
                    // A condition reads as a warning when it is in its bad state.
                    warning: (c.type_ == "Degraded") == (c.status == "True"),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    source: "condition".into(),
                })
                .collect()
        })
        .unwrap_or_default();
    entries.extend(app.events.iter().map(|e| Entry {
        at: e.time,
        kind: e.type_.clone(),
        warning: e.is_warning(),
        reason: e.reason.clone(),
        message: e.message.clone(),
        source: e.source.clone(),
    }));
    if entries.is_empty() {
        frame.render_widget(Paragraph::new(Span::styled("no events yet", t.muted)), area);
        return;
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.at));
    let height = area.height.saturating_sub(1) as usize;
    let start = window_start(app.row, height, entries.len());
    let rows = entries.iter().skip(start).take(height).map(|e| {
        Row::new(vec![
            Cell::from(display::duration(app.now.as_second() - e.at.as_second())),
            Cell::from(Span::styled(
                e.kind.clone(),
                if e.warning { t.warn } else { t.text },
            )),
            Cell::from(e.reason.clone()),
            Cell::from(e.message.clone()),
            Cell::from(Span::styled(e.source.clone(), t.muted)),
        ])
        .style(t.text)
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Length(18),
        Constraint::Length(18),
        Constraint::Fill(3),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(["AGE", "TYPE", "REASON", "MESSAGE", "SOURCE"]).style(t.title))
        .row_highlight_style(t.selection)
        .column_spacing(1);
    let mut state =
        TableState::default().with_selected(Some(app.row.min(entries.len() - 1) - start));
    frame.render_stateful_widget(table, area, &mut state);
}
