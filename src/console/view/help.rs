//! The `?` overlay: every binding of the current view, and the commands.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::console::app::App;
use crate::console::keys;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut lines: Vec<Line> = keys::active(&app.bindings())
        .map(|b| {
            Line::from(vec![
                Span::styled(format!("  {:<7}", b.label), t.key),
                Span::styled(b.help, t.text),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.push(Line::from(Span::styled("  Commands", t.title)));
    for (cmd, what) in [
        (":clusters", "the cluster list"),
        (":ns NAME", "show one namespace (:ns all for every one)"),
        (
            ":theme NAME",
            "dark, light, high-contrast, monochrome, or your own",
        ),
        (":q", "quit"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("  {cmd:<12}"), t.key),
            Span::styled(what, t.text),
        ]));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "  any key closes this help",
        t.muted,
    )));
    let width = area.width.min(72);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.accent)
        .title(Span::styled(" Help ", t.title));
    frame.render_widget(Paragraph::new(lines).block(block).style(t.text), popup);
}
