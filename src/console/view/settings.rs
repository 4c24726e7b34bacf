//! The Settings tab: the followed instance's parameters that differ from the defaults, where
//! each comes from, and which wait for a restart.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{col, list_table, poll_state};
use crate::console::app::App;
use crate::observe::settings::Origin;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let s = &app.settings;
    let Some(target) = &s.target else {
        return super::muted_note(frame, area, t, super::NO_INSTANCE_YET);
    };
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let mut spans = vec![Span::styled(format!("{} ", target.instance), t.title)];
    spans.extend(poll_state(
        t,
        s.error.as_ref(),
        s.last_ok,
        "reading parameters…",
    ));
    let waiting = s
        .rows
        .iter()
        .filter(|r| r.pending_restart || r.pending.is_some())
        .count();
    let count = format!("{} parameters not at their defaults", s.rows.len());
    if s.last_ok.is_some() {
        spans.push(Span::styled(count, t.muted));
    }
    if waiting > 0 {
        spans.push(Span::styled(
            format!("  ⟳ {waiting} wait for a restart"),
            t.warn,
        ));
    }
    if !s.filter.is_empty() {
        spans.push(Span::styled(format!("  filter /{}", s.filter), t.accent));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), head);
    let cols = [
        col("NAME", 28, 9),
        col("VALUE", 18, 8),
        col("SOURCE", 26, 7),
        col("RESTART", 16, 6),
        col("ASKED", 18, 5),
    ];
    let empty = s.last_ok.map(|_| "no parameters match");
    list_table(frame, body, app, &cols, s.visible(), empty, |r| {
        let restart = match (&r.pending, r.pending_restart) {
            (Some(change), _) => change.clone(),
            (None, true) => "pending".into(),
            (None, false) => String::new(),
        };
        let style = if !restart.is_empty() {
            t.warn
        } else if matches!(r.origin, Origin::SpecConfig | Origin::SpecPatroni) {
            t.text
        } else {
            t.muted
        };
        [
            r.name.clone(),
            r.value.clone().unwrap_or_else(|| "—".into()),
            r.origin.label(),
            restart,
            r.wanted.clone().unwrap_or_default(),
        ]
        .into_iter()
        .map(|cell| Span::styled(cell, style))
        .collect()
    });
}
