//! Drawing: pure functions from the app state to a frame. No IO, no waiting: whatever data is
//! there is drawn, and what is missing or old says so.

mod activity;
mod backups;
mod cluster;
mod clusters;
mod connection;
mod dialogs;
mod events;
mod help;
mod history;
mod instances;
mod logs;
mod settings;
mod trends;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, Mode, Tab, View};

/// Rows of a list a page holds on a screen `height` rows high: all but the header, footer,
/// borders, the table's header and, in a cluster, the rows above its tabs.
pub fn page_rows(app: &App, height: u16) -> usize {
    let head = match app.view {
        View::Clusters => 0,
        View::Cluster { .. } => cluster::head_rows(app),
    };
    height.saturating_sub(5 + head) as usize
}

/// `s` in at most `max` characters, `…` marking a cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn draw(frame: &mut Frame, app: &App) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, app);
    match &app.view {
        View::Clusters => clusters::draw(frame, body, app),
        View::Cluster { .. } => cluster::draw(frame, body, app),
    }
    draw_footer(frame, footer, app);
    if let Some(overlay) = &app.overlay {
        dialogs::draw(frame, body, app, overlay);
        if let Some(lines) = &app.command {
            dialogs::command(frame, body, &app.theme, lines);
        }
    }
    if app.help {
        help::draw(frame, frame.area(), app);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let clock = app
        .now
        .to_zoned(app.tz.clone())
        .strftime("%H:%M:%S")
        .to_string();
    let mut left = vec![
        Span::styled(
            " pgdeck ",
            t.header.add_modifier(ratatui::style::Modifier::BOLD),
        ),
        Span::styled(format!(" {} ", app.context), t.header),
        Span::styled(
            format!(" ns: {} ", app.namespace.as_deref().unwrap_or("all")),
            t.header,
        ),
    ];
    if app.read_only {
        left.push(Span::styled(" 🔒 READ-ONLY ", t.header.patch(t.warn)));
    }
    let paused: Vec<&str> = app
        .clusters
        .iter()
        .filter(|c| {
            c.status.as_ref().is_some_and(|s| {
                crate::observe::conditions::is_true(
                    &s.conditions,
                    crate::observe::conditions::PATRONI_PAUSED,
                )
            })
        })
        .map(|c| c.name())
        .collect();
    if !paused.is_empty() {
        left.push(Span::styled(
            format!(" ‖ HA PAUSED: {} ", paused.join(", ")),
            t.header.patch(t.warn),
        ));
    }
    if app.operator == Some(false) {
        left.push(Span::styled(
            " reconciler not running ",
            t.header.patch(t.error),
        ));
    }
    let used: usize = left.iter().map(|s| s.width()).sum();
    let pad = (area.width as usize).saturating_sub(used + clock.len() + 1);
    left.push(Span::styled(" ".repeat(pad), t.header));
    left.push(Span::styled(format!("{clock} "), t.header));
    frame.render_widget(Paragraph::new(Line::from(left)).style(t.header), area);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let line =
        match app.mode {
            Mode::Filter => Line::from(vec![
                Span::styled("/", t.key),
                Span::styled(format!("{}▏", app.input), t.text),
                Span::styled("  enter keep · esc clear", t.muted),
            ]),
            Mode::Command => Line::from(vec![
                Span::styled(":", t.key),
                Span::styled(format!("{}▏", app.input), t.text),
                Span::styled("  enter run · esc cancel", t.muted),
            ]),
            Mode::Normal => {
                let mut spans = Vec::new();
                if app.on_tab(Tab::Logs) {
                    spans.push(logs::state(app));
                    spans.push(Span::styled(" │ ", t.muted));
                }
                for p in &app.pending {
                    let secs = app.now.as_second() - p.since.as_second();
                    spans.push(Span::styled(
                        format!("⟳ {} ({}) ", p.what, crate::display::duration(secs)),
                        t.accent,
                    ));
                }
                if let Some(m) = app.message.as_ref().filter(|_| {
                    app.pending.is_empty() || app.message.as_ref().is_some_and(|m| m.error)
                }) {
                    spans.push(Span::styled(
                        format!("{} ", m.text),
                        if m.error { t.error } else { t.accent },
                    ));
                    spans.push(Span::styled("│ ", t.muted));
                }
                // An action's dialog has its own keys, and these besides.
                let keys: Vec<&super::keys::Binding> =
                    match app.overlay.as_ref().filter(|o| o.is_action()) {
                        Some(_) => super::keys::DIALOG.iter().collect(),
                        None => super::keys::active(&app.bindings()).collect(),
                    };
                for b in keys.into_iter().filter(|b| !b.hint.is_empty()) {
                    spans.push(Span::styled(b.label, t.key));
                    spans.push(Span::styled(format!(" {}  ", b.hint), t.footer));
                }
                Line::from(spans)
            }
        };
    frame.render_widget(Paragraph::new(line), area);
}

/// A table column: title, width, and how much it matters when space is short (higher stays).
pub struct Col {
    pub title: String,
    pub width: u16,
    pub keep: u8,
}

pub fn col(title: impl Into<String>, width: u16, keep: u8) -> Col {
    Col {
        title: title.into(),
        width,
        keep,
    }
}

/// A column as wide as its title and its widest value.
pub fn widest<'a>(title: &str, values: impl Iterator<Item = &'a str>) -> u16 {
    values
        .map(|v| v.chars().count())
        .max()
        .unwrap_or(0)
        .max(title.chars().count()) as u16
}

/// Columns as wide as their title and their widest cell: `heads` are (title, keep), `cells`
/// a row per item with a cell per head.
pub fn sized(heads: &[(&str, u8)], cells: &[Vec<Span<'_>>]) -> Vec<Col> {
    heads
        .iter()
        .enumerate()
        .map(|(n, (title, keep))| {
            let values = cells.iter().filter_map(|row| row.get(n)).map(|s| s.width());
            let width = values.max().unwrap_or(0).max(title.chars().count());
            col(*title, width as u16, *keep)
        })
        .collect()
}

/// Which columns fit whole in `width`: the most important first, each that still fits, so no
/// shown column is ever cut and room a wide column could not use goes to a narrower one. The
/// most important is shown however narrow the screen.
pub fn fit(cols: &[Col], width: u16) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cols[i].keep));
    let mut left = width;
    let mut shown: Vec<usize> = Vec::new();
    for i in order {
        let need = cols[i].width + 1;
        if need <= left || shown.is_empty() {
            left = left.saturating_sub(need);
            shown.push(i);
        }
    }
    shown.sort();
    shown
}

/// A table of the shown columns, titled, the selected row highlighted; the last column takes
/// what is left.
pub fn column_table<'a>(
    rows: Vec<ratatui::widgets::Row<'a>>,
    cols: &[Col],
    shown: &[usize],
    t: &crate::console::theme::Theme,
) -> ratatui::widgets::Table<'a> {
    use ratatui::widgets::{Cell, Row, Table};
    let widths = shown.iter().enumerate().map(|(n, &i)| {
        if n + 1 == shown.len() {
            Constraint::Min(cols[i].width)
        } else {
            Constraint::Length(cols[i].width)
        }
    });
    let header = Row::new(shown.iter().map(|&i| Cell::from(cols[i].title.clone()))).style(t.title);
    Table::new(rows, widths)
        .header(header)
        .row_highlight_style(t.selection)
        .column_spacing(1)
}

/// How a tab's own poll went, for its head line: the last error, or that the first answer is
/// awaited (`reading`); nothing once it answers.
pub fn poll_state(
    t: &crate::console::theme::Theme,
    error: Option<&String>,
    last_ok: Option<jiff::Timestamp>,
    reading: &str,
) -> Option<Span<'static>> {
    match (error, last_ok) {
        (Some(e), _) => Some(Span::styled(format!("⚠ {e}  "), t.stale)),
        (None, None) => Some(Span::styled(format!("{reading}  "), t.muted)),
        (None, Some(_)) => None,
    }
}

/// A tab's list in `area`: `empty` (muted, when given) if it has no items; else the columns that fit
/// whole, over the window of rows that keeps the cursor in sight, each row's cells (one per
/// column in `cols`, styled) made by `cells` for the rows drawn only.
pub fn list_table<T>(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    cols: &[Col],
    items: impl ExactSizeIterator<Item = T>,
    empty: Option<&str>,
    cells: impl Fn(T) -> Vec<Span<'static>>,
) {
    let t = &app.theme;
    let len = items.len();
    if len == 0 {
        frame.render_widget(
            Paragraph::new(Span::styled(empty.unwrap_or_default().to_string(), t.muted)),
            area,
        );
        return;
    }
    let shown = fit(cols, area.width);
    let height = area.height.saturating_sub(1) as usize;
    let start = window_start(app.row, height, len);
    let rows: Vec<ratatui::widgets::Row> = items
        .skip(start)
        .take(height)
        .map(|item| {
            let mut cells = cells(item);
            ratatui::widgets::Row::new(
                shown
                    .iter()
                    .map(|&n| ratatui::widgets::Cell::from(std::mem::take(&mut cells[n]))),
            )
        })
        .collect();
    let table = column_table(rows, cols, &shown, t);
    let mut state =
        ratatui::widgets::TableState::default().with_selected(Some(app.row.min(len - 1) - start));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The first row to draw so that `selected` stays in a window of `height` rows.
pub fn window_start(selected: usize, height: usize, len: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    selected.saturating_sub(height - 1).min(len - height)
}

pub fn level_style(t: &super::theme::Theme, level: super::health::Level) -> Style {
    use super::health::Level;
    match level {
        Level::Ok => t.ok,
        Level::Muted => t.muted,
        Level::Warn => t.warn,
        Level::Error => t.error,
    }
}

#[cfg(test)]
mod tests;

/// What a tab that shows one instance says while it has none to show.
pub(super) const NO_INSTANCE_YET: &str = "no instance to show yet: the reconciler is creating them";

/// A muted, wrapped line of text filling `area`: a tab's word while it has nothing to show.
pub(super) fn muted_note(frame: &mut Frame, area: Rect, theme: &super::theme::Theme, text: &str) {
    frame.render_widget(
        Paragraph::new(Span::styled(text, theme.muted)).wrap(Wrap { trim: true }),
        area,
    );
}
