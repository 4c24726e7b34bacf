//! The Instances tab: each instance's role, state, timeline, lag (bytes and time) and WAL
//! positions, connections, when its PostgreSQL started and which version it runs, Patroni's
//! tags, a pending restart and why, where it runs and its volume. Columns are as wide as what
//! they hold; on a narrow terminal the least important go.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, TableState};

use super::{column_table, cut, fit, sized, window_start};
use crate::api::quantity;
use crate::api::status::InstanceStatus;
use crate::console::app::App;
use crate::console::theme::Theme;
use crate::display;
use crate::observe::vitals::{Vitals, lsn};

/// A pending restart's reason is cut to this many characters (the restart dialog has it all).
const REASON_CHARS: usize = 28;

/// Titles and how much each matters when space is short (higher stays).
const HEADS: [(&str, u8); 16] = [
    ("NAME", 20),
    ("SET", 6),
    ("ROLE", 19),
    ("STATE", 18),
    ("TL", 9),
    ("LAG", 17),
    ("REPLAY LAG", 16),
    ("LSN", 11),
    ("REPLAY LSN", 10),
    ("CONN", 13),
    ("STARTED", 7),
    ("VERSION", 8),
    ("TAGS", 12),
    ("RESTART", 15),
    ("HOST/NODE", 5),
    ("VOLUME", 4),
];

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let instances = app.instances();
    if instances.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "no instances yet: the reconciler is creating them",
                t.muted,
            )),
            area,
        );
        return;
    }
    let all: Vec<Vec<Span>> = instances.iter().map(|i| cells(app, i, t)).collect();
    // A column with nothing in any row is left out (e.g. TAGS while no instance has one).
    let present: Vec<usize> = (0..HEADS.len())
        .filter(|&n| all.iter().any(|row| !row[n].content.is_empty()))
        .collect();
    let heads: Vec<(&str, u8)> = present.iter().map(|&n| HEADS[n]).collect();
    let cells: Vec<Vec<Span>> = all
        .into_iter()
        .map(|row| present.iter().map(|&n| row[n].clone()).collect())
        .collect();
    let cols = sized(&heads, &cells);
    let shown = fit(&cols, area.width);
    let height = area.height.saturating_sub(1) as usize;
    let start = window_start(app.row, height, instances.len());
    let rows: Vec<Row> = cells
        .into_iter()
        .skip(start)
        .take(height)
        .map(|row| Row::new(shown.iter().map(|&n| Cell::from(row[n].clone()))).style(t.text))
        .collect();
    let table = column_table(rows, &cols, &shown, t);
    let mut state =
        TableState::default().with_selected(Some(app.row.min(instances.len() - 1) - start));
    frame.render_stateful_widget(table, area, &mut state);
}

/// One instance's cells, in the order of [`HEADS`].
fn cells<'a>(app: &App, i: &InstanceStatus, t: &Theme) -> Vec<Span<'a>> {
    let vitals = app.live.vitals.get(&i.name).cloned().unwrap_or_default();
    let text = |s: String| Span::styled(s, t.text);
    let or_dash = |s: Option<String>| text(s.unwrap_or_else(|| "-".into()));
    let primary = matches!(i.role.as_deref(), Some("primary" | "standby_leader"));
    let host = match (&i.host, i.port, &i.node) {
        (_, _, Some(node)) => Some(node.clone()),
        (Some(h), Some(p), None) => Some(format!("{h}:{p}")),
        _ => None,
    };
    let restart = match (i.pending_restart, &i.pending_restart_reason) {
        (false, _) => String::new(),
        (true, None) => "yes".into(),
        (true, Some(why)) => cut(why, REASON_CHARS),
    };
    vec![
        text(i.name.clone()),
        text(i.set.clone()),
        Span::styled(
            i.role.clone().unwrap_or_else(|| "-".into()),
            t.role(i.role.as_deref()),
        ),
        Span::styled(
            i.state.clone().unwrap_or_else(|| "-".into()),
            if i.ready { t.text } else { t.warn },
        ),
        text(i.timeline.map(|x| x.to_string()).unwrap_or_default()),
        text(i.lag_bytes.map(display::bytes).unwrap_or_default()),
        text(
            i.replay_lag_seconds
                .map(display::lag_seconds)
                .unwrap_or_default(),
        ),
        // The primary's own position; what a replica has received.
        text(position(&vitals, primary).map(lsn).unwrap_or_default()),
        text(vitals.replayed_lsn.map(lsn).unwrap_or_default()),
        text(
            vitals
                .connections
                .map(|c| format!("{}/{}", c.used, c.max))
                .unwrap_or_default(),
        ),
        text(
            i.started_at
                .as_ref()
                .map(|at| started(app, at.0))
                .unwrap_or_default(),
        ),
        text(i.postgres_version.clone().unwrap_or_default()),
        Span::styled(i.tags.join(","), t.accent),
        Span::styled(restart, t.warn),
        or_dash(host),
        or_dash(volume(app, i)),
    ]
}

/// As `ps` shows a start: the time when it was today, else the day.
fn started(app: &App, at: jiff::Timestamp) -> String {
    let (at, now) = (
        at.to_zoned(app.tz.clone()),
        app.now.to_zoned(app.tz.clone()),
    );
    let format = if at.date() == now.date() {
        "%H:%M"
    } else {
        "%b %d"
    };
    at.strftime(format).to_string()
}

fn position(v: &Vitals, primary: bool) -> Option<i64> {
    if primary { v.wal_lsn } else { v.received_lsn }
}

/// `used / size` of the instance's data volume, or what of it is known.
fn volume(app: &App, i: &InstanceStatus) -> Option<String> {
    let cap = app.open_cluster().and_then(|c| {
        let spec = c
            .spec
            .instances
            .iter()
            .enumerate()
            .find(|(n, s)| crate::api::instances::set_name(s, *n) == i.set)?
            .1;
        quantity::bytes(spec.data_volume_claim_spec.storage()?)
    });
    match (i.volume.as_ref().and_then(|v| v.used_bytes), cap) {
        (Some(used), Some(cap)) => Some(format!(
            "{} / {}",
            display::bytes(used),
            display::bytes(cap)
        )),
        (None, Some(cap)) => Some(display::bytes(cap)),
        _ => None,
    }
}
