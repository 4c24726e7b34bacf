//! Drawing the dialogs: switchover, scale, backup, delete, the edit form, the YAML editor, the
//! diff review and the conflict prompt.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use crate::console::app::App;
use crate::console::dialogs::{
    BackupDialog, ConfirmDialog, Conflict, DeleteDialog, Overlay, Review, ScaleDialog,
    SwitchoverDialog, VerbDialog,
};
use crate::console::diff::{Change, DiffLine};
use crate::console::editor::YamlEditor;
use crate::console::form::EditForm;
use crate::console::psql::PsqlDialog;
use crate::console::theme::Theme;
use crate::display;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, overlay: &Overlay) {
    let t = &app.theme;
    match overlay {
        Overlay::Switchover(d) => switchover(frame, area, t, d),
        Overlay::Scale(d) => scale(frame, area, t, d),
        Overlay::Backup(d) => backup(frame, area, t, d),
        Overlay::Confirm(d) => confirm(frame, area, t, d),
        Overlay::Delete(d) => delete(frame, area, t, d),
        Overlay::Verb(d) => verb(frame, area, t, d),
        Overlay::Form(d) => form(frame, area, t, d),
        Overlay::Editor(d) => editor(frame, area, t, d),
        Overlay::Review(d) => review(frame, area, t, d),
        Overlay::Conflict(d) => conflict(frame, area, t, d),
        Overlay::Session(d) => super::activity::dialog(frame, area, t, d),
        Overlay::Psql(d) => psql(frame, area, t, d),
    }
}

/// A bordered box centred in `area`, cleared; returns its inside.
pub(super) fn popup(
    frame: &mut Frame,
    area: Rect,
    t: &Theme,
    title: &str,
    width: u16,
    height: u16,
) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let block = boxed(frame, rect, t, title);
    let inner = block.inner(rect);
    frame.render_widget(block.style(t.text), rect);
    inner
}

pub(super) fn hint(t: &Theme, keys: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(k.to_string(), t.key));
        spans.push(Span::styled(format!(" {what}   "), t.muted));
    }
    Line::from(spans)
}

fn switchover(frame: &mut Frame, area: Rect, t: &Theme, d: &SwitchoverDialog) {
    let title = if d.failover { "Failover" } else { "Switchover" };
    let note_height = d.note.len() as u16;
    let height = d.candidates.len() as u16 + note_height + if d.failover { 11 } else { 9 };
    let inner = popup(frame, area, t, title, 84, height);
    let [intro, list, warn, note, confirm, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(d.candidates.len() as u16 + 1),
        Constraint::Length(2),
        Constraint::Length(note_height),
        Constraint::Length(if d.failover { 3 } else { 0 }),
        Constraint::Length(1),
    ])
    .areas(inner);
    let note_lines: Vec<Line> = d
        .note
        .iter()
        .map(|l| Line::from(Span::styled(l.clone(), t.muted)))
        .collect();
    frame.render_widget(Paragraph::new(note_lines), note);
    let question = if d.failover {
        format!(
            "There is no healthy primary in {}/{}. Promote which instance?",
            d.key.0, d.key.1
        )
    } else {
        format!(
            "Promote which instance of {}/{}? The primary hands over cleanly.",
            d.key.0, d.key.1
        )
    };
    frame.render_widget(Paragraph::new(question).wrap(Wrap { trim: true }), intro);
    let rows = d.candidates.iter().map(|i| {
        Row::new(vec![
            Cell::from(i.name.clone()),
            Cell::from(Span::styled(
                i.role.clone().unwrap_or_default(),
                t.role(i.role.as_deref()),
            )),
            Cell::from(i.state.clone().unwrap_or_default()),
            Cell::from(
                i.lag_bytes
                    .map(display::bytes)
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::from(
                i.replay_lag_seconds
                    .map(display::lag_seconds)
                    .unwrap_or_default(),
            ),
            Cell::from(if i.role.as_deref() == Some("sync_standby") {
                "sync"
            } else {
                "async"
            }),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(26),
            Constraint::Length(13),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(5),
        ],
    )
    .header(Row::new(["CANDIDATE", "ROLE", "STATE", "LAG", "REPLAY", "SYNC"]).style(t.title))
    .row_highlight_style(t.selection);
    frame.render_stateful_widget(
        table,
        list,
        &mut TableState::default().with_selected(Some(d.selected)),
    );
    if let Some(w) = d.warning() {
        frame.render_widget(
            Paragraph::new(Span::styled(format!("⚠ {w}"), t.warn)).wrap(Wrap { trim: true }),
            warn,
        );
    }
    if d.failover {
        let lines = vec![
            Line::from(Span::styled(
                "A failover may lose transactions the new primary has not received.",
                t.error,
            )),
            Line::from(vec![
                Span::styled(format!("Type {} to confirm: ", d.key.1), t.text),
                Span::styled(
                    format!("{}▏", d.typed),
                    if d.confirmed() { t.ok } else { t.accent },
                ),
            ]),
        ];
        frame.render_widget(Paragraph::new(lines), confirm);
    }
    let go = if d.failover {
        "fail over"
    } else {
        "switch over"
    };
    frame.render_widget(
        Paragraph::new(hint(
            t,
            &[("↑/↓", "choose"), ("enter", go), ("esc", "cancel")],
        )),
        keys,
    );
}

fn scale(frame: &mut Frame, area: Rect, t: &Theme, d: &ScaleDialog) {
    let inner = popup(frame, area, t, "Scale", 72, d.sets.len() as u16 + 8);
    let mut lines = vec![
        Line::from(format!("Instances of {}/{}:", d.key.0, d.key.1)),
        Line::default(),
    ];
    for (i, (name, current)) in d.sets.iter().enumerate() {
        let chosen = i == d.selected;
        let text = if chosen {
            format!("  {name}: {current} → {}", d.target)
        } else {
            format!("  {name}: {current}")
        };
        lines.push(Line::from(Span::styled(
            text,
            if chosen { t.selection } else { t.text },
        )));
    }
    lines.push(Line::default());
    match d.refusal() {
        Some(why) => lines.push(Line::from(Span::styled(format!("✖ {why}"), t.error))),
        None if d.target == d.current() => lines.push(Line::from(Span::styled(
            "no change yet: + or - to choose",
            t.muted,
        ))),
        None => lines.push(Line::from(Span::styled(
            format!(
                "The reconciler will {} instances until {} run.",
                if d.target > d.current() {
                    "add"
                } else {
                    "remove replica"
                },
                d.target
            ),
            t.muted,
        ))),
    }
    lines.push(hint(
        t,
        &[
            ("+/-", "count"),
            ("↑/↓", "set"),
            ("enter", "scale"),
            ("esc", "cancel"),
        ],
    ));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn backup(frame: &mut Frame, area: Rect, t: &Theme, d: &BackupDialog) {
    let inner = popup(frame, area, t, "Backup", 64, d.repos.len() as u16 + 8);
    let mut kinds = vec![Span::styled("Type: ", t.text)];
    for (i, (_, label)) in BackupDialog::KINDS.iter().enumerate() {
        kinds.push(Span::styled(
            format!(" {label} "),
            if i == d.kind { t.selection } else { t.muted },
        ));
        kinds.push(Span::raw(" "));
    }
    let mut lines = vec![
        Line::from(format!("Back up {}/{} with pgBackRest.", d.key.0, d.key.1)),
        Line::default(),
        Line::from(kinds),
        Line::default(),
    ];
    lines.push(Line::from("Repository:"));
    for (i, r) in d.repos.iter().enumerate() {
        lines.push(Line::from(Span::styled(
            format!("  {r}"),
            if i == d.repo { t.selection } else { t.text },
        )));
    }
    lines.push(hint(
        t,
        &[
            ("←/→ f d i", "type"),
            ("↑/↓", "repository"),
            ("enter", "back up"),
            ("esc", "cancel"),
        ],
    ));
    frame.render_widget(Paragraph::new(lines), inner);
}

fn confirm(frame: &mut Frame, area: Rect, t: &Theme, d: &ConfirmDialog) {
    let inner = popup(frame, area, t, d.title, 84, d.lines.len() as u16 + 4);
    let mut lines: Vec<Line> = d.lines.iter().map(|l| Line::from(l.clone())).collect();
    lines.push(Line::default());
    lines.push(hint(t, &[("enter", "confirm"), ("esc", "cancel")]));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The command lines equivalent to the dialog's action, in a box along the bottom.
pub fn command(frame: &mut Frame, area: Rect, t: &Theme, lines: &Result<Vec<String>, String>) {
    let width = area.width.saturating_sub(4).max(10);
    let text: Vec<Line> = match lines {
        Ok(lines) => lines
            .iter()
            .map(|l| Line::from(Span::styled(l.clone(), t.text)))
            .collect(),
        Err(why) => vec![Line::from(Span::styled(why.clone(), t.muted))],
    };
    // Rows once wrapped, within half the screen; the copy (ctrl-y) has every line whole.
    let rows: usize = text
        .iter()
        .map(|l| l.width().max(1).div_ceil(width as usize - 2))
        .sum();
    let height = (rows as u16 + 2).min(area.height / 2).max(3);
    let rect = Rect {
        x: area.x + 2,
        y: area.y + area.height - height,
        width,
        height,
    };
    let block = boxed(frame, rect, t, "command (ctrl-y copies)");
    frame.render_widget(
        Paragraph::new(text)
            .block(block)
            .style(t.text)
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn psql(frame: &mut Frame, area: Rect, t: &Theme, d: &PsqlDialog) {
    let inner = popup(frame, area, t, "psql", 72, d.users.len() as u16 + 7);
    let role = d
        .role
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let mut lines = vec![
        Line::from(format!("psql on {}{role} as:", d.instance)),
        Line::default(),
    ];
    for (i, u) in d.users.iter().enumerate() {
        let style = if i == d.selected { t.selection } else { t.text };
        let mut line = vec![Span::styled(format!("  {}", u.name), style)];
        if u.superuser {
            line.push(Span::styled("  superuser", t.warn));
        }
        lines.push(Line::from(line));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "The console steps aside while psql runs; \\q comes back.",
        t.muted,
    )));
    lines.push(hint(
        t,
        &[("↑/↓", "user"), ("enter", "connect"), ("esc", "cancel")],
    ));
    frame.render_widget(Paragraph::new(lines), inner);
}

fn delete(frame: &mut Frame, area: Rect, t: &Theme, d: &DeleteDialog) {
    let inner = popup(frame, area, t, "Delete", 76, 12);
    let check = |on: bool| if on { "[x]" } else { "[ ]" };
    let focus = |i: usize| if d.focus == i { t.selection } else { t.text };
    let lines = vec![
        Line::from(Span::styled(
            format!("Delete {}/{}?", d.key.0, d.key.1),
            t.error,
        )),
        Line::from(Span::styled(
            "Its instances stop; its data and backups are deleted unless kept below.",
            t.error,
        )),
        Line::default(),
        Line::from(vec![
            Span::styled(format!("Type {} to confirm: ", d.key.1), t.text),
            Span::styled(
                format!("{}▏", d.typed),
                if d.typed == d.key.1 { t.ok } else { focus(0) },
            ),
        ]),
        Line::default(),
        Line::from(Span::styled(
            format!("{} keep the data directories", check(d.keep_data)),
            focus(1),
        )),
        Line::from(Span::styled(
            format!("{} keep the backup repositories", check(d.keep_backups)),
            focus(2),
        )),
        Line::default(),
        hint(
            t,
            &[
                ("tab", "next"),
                ("space", "toggle"),
                ("enter", "delete"),
                ("esc", "cancel"),
            ],
        ),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

fn verb(frame: &mut Frame, area: Rect, t: &Theme, d: &VerbDialog) {
    let mut lines = Vec::new();
    if d.choices.len() > 1 {
        for (i, v) in d.choices.iter().enumerate() {
            let (mark, style) = match i == d.selected {
                true => ("▸", t.selection),
                false => (" ", t.text),
            };
            lines.push(Line::from(Span::styled(
                format!("{mark} {}", v.describe()),
                style,
            )));
        }
        lines.push(Line::default());
    }
    let warn = d.confirm_with().is_some();
    for l in d.explain() {
        lines.push(Line::from(Span::styled(
            l,
            if warn { t.warn } else { t.text },
        )));
    }
    lines.push(Line::default());
    if let Some(name) = d.confirm_with() {
        lines.push(Line::from(vec![
            Span::styled(format!("Type {name} to confirm: "), t.text),
            Span::styled(
                format!("{}▏", d.typed),
                if d.confirmed() { t.ok } else { t.selection },
            ),
        ]));
        lines.push(Line::default());
    }
    let mut keys = vec![("enter", d.verb().name()), ("esc", "cancel")];
    if d.choices.len() > 1 {
        keys.insert(0, ("↑/↓", "choose"));
    }
    lines.push(hint(t, &keys));
    let title = format!("{} {}/{}", d.verb().name(), d.key.0, d.key.1);
    let inner = popup(frame, area, t, &title, 84, lines.len() as u16 + 2);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn form(frame: &mut Frame, area: Rect, t: &Theme, d: &EditForm) {
    let inner = popup(
        frame,
        area,
        t,
        &format!("Edit {}/{}", d.key.0, d.key.1),
        96,
        d.fields.len() as u16 + 6,
    );
    let mut lines = Vec::new();
    for (i, f) in d.fields.iter().enumerate() {
        let shown = if f.choices.is_empty() && i != 0 {
            format!("{}▏", f.value)
        } else {
            format!("‹ {} ›", f.value)
        };
        let style = if i == d.focus { t.selection } else { t.text };
        let mut spans = vec![
            Span::styled(format!("{:>22}  ", f.label), t.muted),
            Span::styled(format!("{shown:<16}"), style),
        ];
        match &f.error {
            Some(e) => spans.push(Span::styled(format!(" ✖ {e}"), t.error)),
            None if f.value != f.initial => spans.push(Span::styled(
                format!(
                    " (was {})",
                    if f.initial.is_empty() {
                        "unset"
                    } else {
                        &f.initial
                    }
                ),
                t.muted,
            )),
            None => {}
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::default());
    if let Some(note) = &d.note {
        lines.push(Line::from(Span::styled(note.clone(), t.warn)));
    }
    lines.push(hint(
        t,
        &[
            ("↑/↓", "field"),
            ("type", "edit"),
            ("←/→", "choose"),
            ("enter", "review diff"),
            ("esc", "cancel"),
        ],
    ));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn editor(frame: &mut Frame, area: Rect, t: &Theme, d: &YamlEditor) {
    frame.render_widget(Clear, area);
    let title = format!(
        " {}/{} manifest {}",
        d.key.0,
        d.key.1,
        if d.changed() { "(changed) " } else { "" }
    );
    let error_rows = d.errors.len().min(6) as u16;
    let [text, errors, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(if error_rows > 0 { error_rows + 1 } else { 0 }),
        Constraint::Length(1),
    ])
    .areas(area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if d.errors.is_empty() {
            t.border
        } else {
            t.error
        })
        .title(Span::styled(title, t.title));
    let inner = block.inner(text);
    frame.render_widget(block, text);
    frame.render_widget(&d.textarea, inner);
    if error_rows > 0 {
        let mut lines = vec![Line::from(Span::styled(
            format!("{} error(s):", d.errors.len()),
            t.error,
        ))];
        lines.extend(
            d.errors
                .iter()
                .take(error_rows as usize)
                .map(|e| Line::from(Span::styled(format!("  {e}"), t.error))),
        );
        frame.render_widget(Paragraph::new(lines), errors);
    }
    let line = if let Some(p) = &d.search {
        Line::from(vec![
            Span::styled("search: ", t.key),
            Span::styled(format!("{p}▏"), t.text),
            Span::styled("  enter/↓ next · ↑ previous · esc done", t.muted),
        ])
    } else if d.confirm_discard {
        Line::from(Span::styled(
            "Discard your changes? enter discards · any other key keeps editing",
            t.warn,
        ))
    } else if let Some(note) = &d.note {
        Line::from(Span::styled(note.clone(), t.warn))
    } else {
        hint(
            t,
            &[
                ("ctrl-s", "diff & apply"),
                ("ctrl-z/ctrl-u", "undo"),
                ("ctrl-y/ctrl-r", "redo"),
                ("ctrl-f", "search"),
                ("esc", "close"),
            ],
        )
    };
    frame.render_widget(Paragraph::new(line), status);
}

fn diff_lines(t: &Theme, lines: &[DiffLine], skip: usize) -> Vec<Line<'static>> {
    let style = |c: Change| -> Style {
        match c {
            Change::Added => t.ok,
            Change::Removed => t.error,
            Change::Hunk => t.accent,
            Change::Same => t.muted,
        }
    };
    lines
        .iter()
        .skip(skip)
        .map(|l| Line::from(Span::styled(l.text.clone(), style(l.change))))
        .collect()
}

fn review(frame: &mut Frame, area: Rect, t: &Theme, d: &Review) {
    let inner = popup(
        frame,
        area,
        t,
        &format!("Review: {}", d.request.describe()),
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    let [body, keys] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    frame.render_widget(Paragraph::new(diff_lines(t, &d.lines, d.scroll)), body);
    frame.render_widget(
        Paragraph::new(hint(
            t,
            &[("enter", "apply"), ("↑/↓", "scroll"), ("esc", "back")],
        )),
        keys,
    );
}

fn conflict(frame: &mut Frame, area: Rect, t: &Theme, d: &Conflict) {
    let inner = popup(
        frame,
        area,
        t,
        "Conflict",
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    let [intro, body, keys] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let now = d
        .theirs
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(
                format!(
                    "{}/{} changed since you opened it (version {} → {now}). Nothing was written.",
                    d.key.0, d.key.1, d.base_version
                ),
                t.warn,
            )),
            Line::from("Reload to start from the new version, or review both changes."),
        ]),
        intro,
    );
    if d.three_way {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(body);
        let theirs = crate::console::diff::unified(&d.base, &d.theirs_yaml());
        let mine = crate::console::diff::unified(&d.base, &d.mine);
        frame.render_widget(
            Paragraph::new(diff_lines(t, &theirs, d.scroll)).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(t.border)
                    .title(" changed underneath "),
            ),
            left,
        );
        frame.render_widget(
            Paragraph::new(diff_lines(t, &mine, d.scroll)).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(t.border)
                    .title(" your changes "),
            ),
            right,
        );
        frame.render_widget(
            Paragraph::new(hint(
                t,
                &[
                    ("r", "reload theirs"),
                    ("a", "apply yours over theirs"),
                    ("esc", "keep editing"),
                ],
            )),
            keys,
        );
    } else {
        frame.render_widget(
            Paragraph::new(hint(
                t,
                &[
                    ("r", "reload"),
                    ("d", "review both changes"),
                    ("esc", "keep editing"),
                ],
            )),
            keys,
        );
    }
}

/// A titled, bordered box over whatever `rect` held.
fn boxed<'a>(frame: &mut Frame, rect: Rect, t: &Theme, title: &str) -> Block<'a> {
    frame.render_widget(Clear, rect);
    Block::default()
        .borders(Borders::ALL)
        .border_style(t.accent)
        .title(Span::styled(format!(" {title} "), t.title))
}
