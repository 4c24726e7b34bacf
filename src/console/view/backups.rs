//! The Backups tab: per repository its stanza, the last backup of each type, the WAL archive,
//! schedules and retention, then every backup.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::window_start;
use crate::console::app::App;
use crate::display;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let Some(cluster) = app.open_cluster() else {
        return;
    };
    let repos = cluster
        .status
        .as_ref()
        .map(|s| s.repos.clone())
        .unwrap_or_default();
    if cluster.repos().is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "no backup repository: spec.backups is not set",
                t.muted,
            )),
            area,
        );
        return;
    }
    let global = cluster
        .spec
        .backups
        .as_ref()
        .and_then(|b| b.pgbackrest.global.clone())
        .unwrap_or_default();
    let ago = |at: &jiff::Timestamp| display::duration(app.now.as_second() - at.as_second());
    let mut lines: Vec<Line> = Vec::new();
    for spec in cluster.repos() {
        let r = repos
            .iter()
            .find(|r| r.name == spec.name)
            .cloned()
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", spec.name), t.title),
            Span::styled(format!("({}) ", spec.kind()), t.muted),
            Span::styled("stanza: ", t.muted),
            Span::styled(
                r.stanza_status.clone().unwrap_or_else(|| {
                    if r.stanza_created {
                        "ok".into()
                    } else {
                        "not created yet".into()
                    }
                }),
                if r.stanza_created { t.ok } else { t.warn },
            ),
        ]));
        let mut last = vec![Span::styled("  last ", t.muted)];
        for kind in ["full", "diff", "incr"] {
            let b = r.backups.iter().rev().find(|b| b.type_ == kind);
            let text = match b {
                Some(b) => format!(
                    "{kind} {} ago ({})   ",
                    b.stop
                        .as_ref()
                        .map(|s| ago(&s.0))
                        .unwrap_or_else(|| "?".into()),
                    b.size_bytes.map(display::bytes).unwrap_or_default()
                ),
                None => format!("{kind} none   "),
            };
            last.push(Span::styled(text, t.text));
        }
        lines.push(Line::from(last));
        lines.push(Line::from(vec![
            Span::styled("  WAL archive ", t.muted),
            Span::styled(
                match (&r.wal_min, &r.wal_max) {
                    (Some(a), Some(b)) => format!("{a} .. {b}"),
                    _ => "empty".into(),
                },
                t.text,
            ),
        ]));
        let schedules: Vec<String> = spec
            .schedules
            .iter()
            .flat_map(|s| s.entries())
            .map(|(k, c)| format!("{k} \"{c}\""))
            .collect();
        let retention: Vec<String> = global
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{}-retention", spec.name)))
            .map(|(k, v)| format!("{}={v}", k.trim_start_matches(&format!("{}-", spec.name))))
            .collect();
        lines.push(Line::from(vec![
            Span::styled("  schedules ", t.muted),
            Span::styled(
                if schedules.is_empty() {
                    "none".into()
                } else {
                    schedules.join(", ")
                },
                t.text,
            ),
            Span::styled("   retention ", t.muted),
            Span::styled(
                if retention.is_empty() {
                    "keep all".into()
                } else {
                    retention.join(", ")
                },
                t.text,
            ),
        ]));
    }
    let [summary, list] = Layout::vertical([
        Constraint::Length(lines.len() as u16 + 1),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(lines), summary);

    let backups: Vec<(String, crate::api::status::BackupStatus)> = repos
        .iter()
        .flat_map(|r| {
            r.backups
                .iter()
                .rev()
                .map(move |b| (r.name.clone(), b.clone()))
        })
        .collect();
    if backups.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("no backups yet", t.muted)),
            list,
        );
        return;
    }
    let height = list.height.saturating_sub(1) as usize;
    let start = window_start(app.row, height, backups.len());
    let rows = backups.iter().skip(start).take(height).map(|(repo, b)| {
        let took = match (&b.start, &b.stop) {
            (Some(a), Some(z)) => display::duration(z.0.as_second() - a.0.as_second()),
            _ => String::new(),
        };
        Row::new(vec![
            Cell::from(b.label.clone()),
            Cell::from(repo.clone()),
            Cell::from(b.type_.clone()),
            Cell::from(
                b.stop
                    .as_ref()
                    .map(|s| format!("{} ago", ago(&s.0)))
                    .unwrap_or_default(),
            ),
            Cell::from(took),
            Cell::from(b.size_bytes.map(display::bytes).unwrap_or_default()),
            Cell::from(b.repo_size_bytes.map(display::bytes).unwrap_or_default()),
            Cell::from(match (&b.wal_start, &b.wal_stop) {
                (Some(a), Some(z)) => format!("{a}..{}", &z[z.len().saturating_sub(8)..]),
                _ => String::new(),
            }),
        ])
        .style(t.text)
    });
    let header = Row::new([
        "LABEL", "REPO", "TYPE", "FINISHED", "TOOK", "SIZE", "STORED", "WAL",
    ])
    .style(t.title);
    let widths = [
        Constraint::Length(33),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(t.selection)
        .column_spacing(1);
    let mut state =
        TableState::default().with_selected(Some(app.row.min(backups.len() - 1) - start));
    frame.render_stateful_widget(table, list, &mut state);
}
