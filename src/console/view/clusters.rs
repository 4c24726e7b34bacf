//! The Clusters view: every cluster with readiness, primary, sync mode, lag and backups.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, TableState};

use super::{col, column_table, fit, level_style, widest, window_start};
use crate::console::app::{App, Column};
use crate::console::health;
use crate::display;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let title = Line::from(vec![
        Span::styled(" Clusters ", t.title),
        Span::styled(format!("[{}] ", app.visible_len()), t.muted),
        Span::styled(
            if app.filter.is_empty() {
                String::new()
            } else {
                format!("/{} ", app.filter)
            },
            t.accent,
        ),
    ]);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    if !app.loaded {
        frame.render_widget(
            Paragraph::new(Span::styled("loading clusters…", t.muted)),
            inner,
        );
        return;
    }
    if app.visible_len() == 0 {
        let why = if app.clusters.is_empty() {
            "No clusters yet. Create one with: pgdeck apply -f assets/examples/ha.yaml".to_string()
        } else {
            "No cluster matches the namespace or filter (esc clears the filter, :ns all shows every namespace)".to_string()
        };
        frame.render_widget(Paragraph::new(Span::styled(why, t.muted)), inner);
        return;
    }

    let one_namespace = app.namespace.is_some();
    let names: Vec<String> = app.visible().map(|c| name(app, c)).collect();
    let name_w = widest("NAME", names.iter().map(String::as_str));
    let ns_w = widest("NAMESPACE", app.visible().map(|c| c.namespace()));
    let primaries: Vec<String> = app.visible().filter_map(primary).collect();
    let primary_w = widest("PRIMARY", primaries.iter().map(String::as_str));
    let syncs: Vec<String> = app.visible().map(|c| health::sync(c).0).collect();
    let sync_w = widest("strict", syncs.iter().map(String::as_str));
    let cols: Vec<_> = Column::ALL
        .iter()
        .map(|c| {
            let arrow = if *c == app.sort {
                if app.descending { "▼" } else { "▲" }
            } else {
                ""
            };
            let title = format!("{}{arrow}", c.title());
            match c {
                Column::Name => col(title, name_w + 1, 9),
                Column::Namespace => col(title, ns_w + 1, if one_namespace { 0 } else { 4 }),
                Column::Ready => col(title, 5, 8),
                Column::Primary => col(title, primary_w + 1, 6),
                Column::Sync => col(title, sync_w, 5),
                Column::MaxLag => col(title, 9, 3),
                Column::LastBackup => col(title, 12, 2),
                Column::Age => col(title, 5, 1),
                Column::Status => col(title, 11, 7),
            }
        })
        .collect();
    let shown = fit(&cols, inner.width);

    let height = inner.height.saturating_sub(1) as usize;
    let start = window_start(app.selected, height, app.visible_len());
    let rows: Vec<Row> = app
        .visible()
        .skip(start)
        .take(height)
        .map(|c| {
            let s = c.status.clone().unwrap_or_default();
            let h = health::of(c);
            let cell = |column: Column| -> Cell {
                match column {
                    Column::Name if app.is_pgo(c) => Cell::from(Line::from(vec![
                        Span::raw(c.name().to_string()),
                        Span::styled(PGO_BADGE, t.accent),
                    ])),
                    Column::Name => Cell::from(c.name().to_string()),
                    Column::Namespace => Cell::from(c.namespace().to_string()),
                    Column::Ready => Cell::from(
                        s.ready
                            .clone()
                            .unwrap_or_else(|| format!("0/{}", c.desired_instances())),
                    ),
                    Column::Primary => Cell::from(primary(c).unwrap_or_else(|| "-".into())),
                    Column::Sync => {
                        let (text, level) = health::sync(c);
                        match level {
                            Some(l) => Cell::from(Span::styled(text, level_style(t, l))),
                            None => Cell::from(text),
                        }
                    }
                    Column::MaxLag => Cell::from(
                        health::max_lag(c)
                            .map(display::bytes)
                            .unwrap_or_else(|| "-".into()),
                    ),
                    Column::LastBackup => Cell::from(
                        health::last_backup(c)
                            .map(|at| {
                                format!(
                                    "{} ago",
                                    display::duration(app.now.as_second() - at.as_second())
                                )
                            })
                            .unwrap_or_else(|| "-".into()),
                    ),
                    Column::Age => Cell::from(
                        c.metadata
                            .creation_timestamp
                            .as_ref()
                            .map(|at| display::age(at, app.now))
                            .unwrap_or_default(),
                    ),
                    Column::Status => Cell::from(Span::styled(h.label, level_style(t, h.level))),
                }
            };
            Row::new(shown.iter().map(|&i| cell(Column::ALL[i]))).style(t.text)
        })
        .collect();
    let table = column_table(rows, &cols, &shown, t);
    let mut state = TableState::default().with_selected(Some(app.selected - start));
    frame.render_stateful_widget(table, inner, &mut state);
}

/// The PRIMARY cell: the primary's name, or for a standby cluster whom it follows (`⇠`).
fn primary(c: &crate::api::PostgresCluster) -> Option<String> {
    match health::standby(c) {
        Some(m) => Some(format!("⇠ {}", m.strip_prefix("standby of ").unwrap_or(m))),
        None => c.status.as_ref()?.primary.clone(),
    }
}

/// After the name of a cluster that Crunchy PGO, not pgdeck, reconciles.
const PGO_BADGE: &str = " PGO";

/// The NAME cell's text.
fn name(app: &App, c: &crate::api::PostgresCluster) -> String {
    if app.is_pgo(c) {
        format!("{}{PGO_BADGE}", c.name())
    } else {
        c.name().to_string()
    }
}
