//! The Connection tab: where to connect and as whom. Passwords stay masked until `r`.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::console::app::App;

const MASK: &str = "••••••••";

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut lines: Vec<Line> = Vec::new();
    if let Some(c) = app.open_cluster() {
        let s = c.status.clone().unwrap_or_default();
        lines.push(Line::from(Span::styled("Endpoints", t.title)));
        for i in &s.instances {
            let at = match (&i.host, i.port) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                _ => i.node.clone().unwrap_or_else(|| "-".into()),
            };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {:<14}", i.role.as_deref().unwrap_or("-")),
                    t.role(i.role.as_deref()),
                ),
                Span::styled(format!("{at:<22}"), t.text),
                Span::styled(i.name.clone(), t.muted),
            ]));
        }
        lines.push(Line::default());
    }
    if app.credentials.is_empty() {
        lines.push(Line::from(Span::styled(
            "no users ready yet: the reconciler creates them once the primary is up",
            t.muted,
        )));
    }
    let mut uri_index = 0;
    for cred in &app.credentials {
        lines.push(Line::from(vec![
            Span::styled(format!("User {}", cred.user), t.title),
            Span::styled(
                format!("   database {}", cred.database.as_deref().unwrap_or("-")),
                t.muted,
            ),
            Span::styled("   password ", t.muted),
            Span::styled(
                match (&cred.password, app.reveal) {
                    (Some(p), true) => p.clone(),
                    (Some(_), false) => MASK.into(),
                    (None, _) => "not created yet".into(),
                },
                t.text,
            ),
        ]));
        for (label, uri) in &cred.uris {
            let shown = match (&cred.password, app.reveal) {
                (Some(p), false) => uri.replace(&crate::display::uri_component(p), MASK),
                _ => uri.clone(),
            };
            let style = if uri_index == app.row {
                t.selection
            } else {
                t.text
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {label:<8} "), t.muted),
                Span::styled(shown, style),
            ]));
            uri_index += 1;
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
