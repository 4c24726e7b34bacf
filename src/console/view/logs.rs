//! The Logs tab: the selected instance's PostgreSQL and Patroni lines, newest at the bottom,
//! each tagged with whose it is and coloured by its level; the search's matches highlighted,
//! the current one marked `▶` in the gutter (others `›`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::console::app::App;
use crate::console::logs::matches;
use crate::console::theme::Theme;
use crate::observe::logs::{LogLine, Origin};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let l = &app.logs;
    let Some(target) = &l.target else {
        return super::muted_note(frame, area, t, super::NO_INSTANCE_YET);
    };
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let mut spans = vec![
        Span::styled(format!("{}  ", target.instance), t.title),
        Span::styled(format!("{} log  ", l.which.title()), t.muted),
        state(app),
    ];
    if let Some(e) = &l.error {
        spans.push(Span::styled(format!("  ⚠ {e}"), t.stale));
    }
    if !l.search.is_empty() {
        let found = if l.current.is_some() {
            ""
        } else {
            " (no match)"
        };
        spans.push(Span::styled(
            format!("  search /{}{found}", l.search),
            t.accent,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), head);

    if l.is_empty() {
        let why = if l.received {
            "no lines in this log yet"
        } else {
            "reading the log…"
        };
        frame.render_widget(Paragraph::new(Span::styled(why, t.muted)), body);
        return;
    }
    let lines: Vec<Line> = l
        .window(body.height as usize)
        .map(|(seq, line)| {
            let current = l.current == Some(seq);
            draw_line(t, line, &l.search, current)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), body);
}

/// "following", or "paused" with how many lines wait below: for the tab's head and the footer.
pub fn state(app: &App) -> Span<'static> {
    let t = &app.theme;
    if app.logs.follow {
        Span::styled("● following", t.ok)
    } else {
        Span::styled(
            format!("‖ paused, {} newer lines (f follows)", app.logs.below()),
            t.warn,
        )
    }
}

fn draw_line<'a>(t: &Theme, line: &'a LogLine, search: &str, current: bool) -> Line<'a> {
    let (tag, style) = match line.origin {
        None => ("   ", t.muted),
        Some(Origin::Postgres) => ("pg ", level(t, &line.text)),
        Some(Origin::Patroni) => ("pat", level(t, &line.text)),
    };
    let found = matches(&line.text, search);
    let gutter = match (current, found.is_empty()) {
        (true, _) => "▶",
        (false, false) => "›",
        (false, true) => " ",
    };
    let mark = if current {
        t.selection
    } else {
        t.accent.add_modifier(Modifier::REVERSED)
    };
    let mut spans = vec![
        Span::styled(gutter, t.accent),
        Span::styled(format!("{tag} "), t.muted),
    ];
    let mut at = 0;
    for (from, to) in found {
        spans.push(Span::styled(&line.text[at..from], style));
        spans.push(Span::styled(&line.text[from..to], mark));
        at = to;
    }
    spans.push(Span::styled(&line.text[at..], style));
    Line::from(spans)
}

/// Errors red, warnings yellow, the rest plain: by the level PostgreSQL or Patroni wrote.
fn level(t: &Theme, text: &str) -> Style {
    let head = text
        .char_indices()
        .nth(48)
        .map_or(text, |(i, _)| &text[..i]);
    if ["ERROR:", "FATAL:", "PANIC:", "CRITICAL:"]
        .iter()
        .any(|l| head.contains(l))
    {
        t.error
    } else if head.contains("WARNING:") {
        t.warn
    } else {
        t.text
    }
}
