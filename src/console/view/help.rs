//! The `?` overlay: every binding of the current view, and the commands. On a screen too short
//! for one column the entries flow into as many columns as it takes; a text too long for its
//! column is cut with `…`, never wrapped into the next entry.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::cut;
use crate::console::app::App;
use crate::console::keys;

/// The overlay's width when one column fits.
const ONE_COLUMN: u16 = 72;

/// One row of the overlay: a key (or command) and what it does, styled.
struct Entry {
    key: String,
    key_style: Style,
    what: &'static str,
    what_style: Style,
}

impl Entry {
    fn blank() -> Self {
        Entry {
            key: String::new(),
            key_style: Style::default(),
            what: "",
            what_style: Style::default(),
        }
    }

    fn line(&self, width: usize) -> Line<'static> {
        let key = cut(&self.key, width);
        let room = width.saturating_sub(key.chars().count());
        Line::from(vec![
            Span::styled(key, self.key_style),
            Span::styled(cut(self.what, room), self.what_style),
        ])
    }
}

fn entries(app: &App) -> Vec<Entry> {
    let t = &app.theme;
    let mut out: Vec<Entry> = keys::active(&app.bindings())
        .map(|b| Entry {
            key: format!("  {:<7}", b.label),
            key_style: t.key,
            what: b.help,
            what_style: t.text,
        })
        .collect();
    out.push(Entry::blank());
    out.push(Entry {
        key: "  Commands".into(),
        key_style: t.title,
        what: "",
        what_style: t.text,
    });
    for (cmd, what) in [
        (":clusters", "the cluster list"),
        (":ns NAME", "show one namespace (:ns all for every one)"),
        (
            ":theme NAME",
            "dark, light, high-contrast, monochrome, or your own",
        ),
        (":q", "quit"),
    ] {
        out.push(Entry {
            key: format!("  {cmd:<12}"),
            key_style: t.key,
            what,
            what_style: t.text,
        });
    }
    out.push(Entry::blank());
    out.push(Entry {
        key: "  any key closes this help".into(),
        key_style: t.muted,
        what: "",
        what_style: t.muted,
    });
    out
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let entries = entries(app);
    let rows = area.height.saturating_sub(2).max(1) as usize;
    let columns = entries.len().div_ceil(rows).max(1);
    let width = match columns {
        1 => area.width.min(ONE_COLUMN),
        _ => area.width,
    };
    let per_column = entries.len().div_ceil(columns);
    let height = (per_column as u16 + 2).min(area.height);
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
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let column_width = inner.width / columns as u16;
    for (i, chunk) in entries.chunks(per_column).enumerate() {
        let x = inner.x + i as u16 * column_width;
        let lines: Vec<Line> = chunk
            .iter()
            .map(|e| e.line(column_width as usize))
            .collect();
        let rect = Rect {
            x,
            width: column_width,
            ..inner
        };
        frame.render_widget(Paragraph::new(lines).style(t.text), rect);
    }
}
