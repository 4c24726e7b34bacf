//! The Activity tab: the selected instance's sessions, longest first, with what they wait on and
//! whom they wait behind; and the cancel / terminate dialog.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::dialogs::{hint, popup};
use super::{col, list_table, poll_state};
use crate::console::activity::SessionDialog;
use crate::console::app::App;
use crate::console::theme::Theme;
use crate::display;
use crate::observe::activity::{Session, blocks, chain};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let a = &app.activity;
    let Some(target) = &a.target else {
        return super::muted_note(frame, area, t, super::NO_INSTANCE_YET);
    };
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let count = |f: &dyn Fn(&Session) -> bool| a.sessions.iter().filter(|s| f(s)).count();
    let mut spans = vec![Span::styled(format!("{} ", target.instance), t.title)];
    spans.extend(poll_state(
        t,
        a.error.as_ref(),
        a.last_ok,
        "reading sessions…",
    ));
    spans.push(Span::styled(
        format!(
            "{} sessions: {} active, {} idle in transaction, {} waiting on a lock",
            a.sessions.len(),
            count(&|s| s.state == "active"),
            count(&|s| s.state.starts_with("idle in transaction")),
            count(&|s| s.waiting()),
        ),
        t.muted,
    ));
    spans.push(Span::styled(
        format!(
            "  sort {} {}",
            a.sort.title(),
            if a.descending { "↓" } else { "↑" }
        ),
        t.muted,
    ));
    if !a.filter.is_empty() {
        spans.push(Span::styled(format!("  filter /{}", a.filter), t.accent));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), head);

    let cols = [
        col("PID", 7, 9),
        col("USER", 10, 3),
        col("APPLICATION", 20, 5),
        col("STATE", 19, 8),
        col("WAIT", 20, 6),
        col("DURATION", 8, 9),
        col("BLOCKED BY", 14, 7),
        col("QUERY", 20, 9),
    ];
    let empty = a.last_ok.map(|_| "no sessions match");
    list_table(frame, body, app, &cols, a.visible(), empty, |s| {
        let behind = chain(&a.sessions, s.backend.pid);
        let blocking = blocks(&a.sessions, s.backend.pid);
        let relation = match (behind.is_empty(), blocking) {
            (false, _) => behind
                .iter()
                .map(|p| format!("← {p}"))
                .collect::<Vec<_>>()
                .join(" "),
            (true, 0) => String::new(),
            (true, n) => format!("blocks {n}"),
        };
        let application = match s.owner() {
            Some(owner) => format!("[{owner}] {}", s.application),
            None => s.application.clone(),
        };
        let style = if s.waiting() || s.state.starts_with("idle in transaction") {
            t.warn
        } else if s.state == "active" {
            t.text
        } else {
            t.muted
        };
        let relation_style = if blocking > 0 { t.error } else { style };
        vec![
            Span::styled(s.backend.pid.to_string(), style),
            Span::styled(s.user.clone(), style),
            Span::styled(application, style),
            Span::styled(s.state.clone(), style),
            Span::styled(s.wait.clone(), style),
            Span::styled(display::duration(s.seconds as i64), style),
            Span::styled(relation, relation_style),
            Span::styled(s.query.clone(), style),
        ]
    });
}

/// `x` / `X`: what will be signalled, whose session it is, and the confirmation.
pub fn dialog(frame: &mut Frame, area: Rect, t: &Theme, d: &SessionDialog) {
    let s = &d.session;
    let pid = s.backend.pid;
    let (title, verb) = if d.terminate {
        ("Terminate session", "Terminate the backend of")
    } else {
        ("Cancel query", "Cancel the running query of")
    };
    let inner = popup(frame, area, t, title, 84, 14);
    let mut lines = vec![
        Line::from(Span::styled(
            format!(
                "{verb} session {pid} on {} ({}/{})?",
                d.target.instance, d.key.0, d.key.1
            ),
            if d.terminate { t.error } else { t.text },
        )),
        Line::from(Span::styled(
            format!(
                "user {}  application {}  {} for {}",
                s.user,
                if s.application.is_empty() {
                    "-"
                } else {
                    &s.application
                },
                s.state,
                display::duration(s.seconds as i64)
            ),
            t.muted,
        )),
        Line::from(Span::styled(format!("query: {}", s.query), t.text)),
    ];
    if let Some(owner) = s.owner() {
        lines.push(Line::from(Span::styled(
            format!(
                "This session says it is {owner}'s own (application name {:?}): {} it may disturb {owner}.",
                s.application,
                if d.terminate { "terminating" } else { "cancelling" }
            ),
            t.warn,
        )));
    }
    lines.push(Line::from(Span::styled(
        if d.terminate {
            "Its connection closes and an open transaction rolls back."
        } else {
            "The client gets \"canceling statement due to user request\"; the session stays."
        },
        t.muted,
    )));
    lines.push(Line::from(Span::styled(
        "Sent only if the backend is still the one shown (same pid and start time).",
        t.muted,
    )));
    lines.push(Line::default());
    if d.terminate {
        lines.push(Line::from(vec![
            Span::styled(format!("Type {pid} to confirm: "), t.text),
            Span::styled(
                format!("{}▏", d.typed),
                if d.confirmed() { t.ok } else { t.selection },
            ),
        ]));
        lines.push(Line::default());
    }
    let go = if d.terminate {
        "terminate"
    } else {
        "cancel the query"
    };
    lines.push(hint(t, &[("enter", go), ("esc", "back")]));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
