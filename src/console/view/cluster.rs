//! The Cluster view: a title with the cluster's health, the tab bar with how fresh the live data
//! is, and the open tab.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Tabs};

use super::level_style;
use crate::console::app::{App, Tab, View};
use crate::console::health;
use crate::display;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let View::Cluster { key, tab } = &app.view else {
        return;
    };
    let (title, health) = match app.open_cluster() {
        Some(c) => {
            let h = health::of(c);
            let s = c.status.clone().unwrap_or_default();
            // A standby's leader is a standby leader (whom it follows is on the line below).
            let role = match health::standby(c) {
                Some(_) => "standby leader",
                None => "primary",
            };
            (
                format!(
                    " {}/{}  {role} {}  sync {}  ready {} ",
                    key.0,
                    key.1,
                    s.primary.as_deref().unwrap_or("none"),
                    health::sync(c).0,
                    s.ready.as_deref().unwrap_or("-")
                ),
                Some(h),
            )
        }
        None => (format!(" {}/{} ", key.0, key.1), None),
    };
    let mut spans = vec![Span::styled(title, t.title)];
    if let Some(h) = health {
        spans.push(Span::styled(
            format!("{} ", h.label),
            level_style(t, h.level),
        ));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Line::from(spans));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let alerts = alerts(app);
    let [alert, trends, bar, body] = Layout::vertical([
        Constraint::Length(alerts.len() as u16),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(alerts), alert);
    super::trends::draw(frame, trends, app);
    let fresh = freshness(app);
    let [tabs_area, fresh_area] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(fresh.width() as u16 + 1),
    ])
    .areas(bar);
    let selected = Tab::ALL.iter().position(|x| x == tab).unwrap_or(0);
    // Each title is padded by a space either side and divided from the next by one column.
    let full: usize = Tab::ALL.iter().map(|x| x.title().chars().count() + 3).sum();
    let title = if full <= usize::from(tabs_area.width) + 1 {
        Tab::title
    } else {
        Tab::short
    };
    let tabs = Tabs::new(Tab::ALL.iter().map(|x| title(*x)))
        .select(selected)
        .style(t.muted)
        .highlight_style(t.selection)
        .divider("│");
    frame.render_widget(tabs, tabs_area);
    frame.render_widget(Paragraph::new(fresh).right_aligned(), fresh_area);

    match tab {
        Tab::Instances => super::instances::draw(frame, body, app),
        Tab::Backups => super::backups::draw(frame, body, app),
        Tab::Events => super::events::draw(frame, body, app),
        Tab::Connection => super::connection::draw(frame, body, app),
        Tab::Activity => super::activity::draw(frame, body, app),
        Tab::History => super::history::draw(frame, body, app),
        Tab::Settings => super::settings::draw(frame, body, app),
        Tab::Logs => super::logs::draw(frame, body, app),
    }
}

/// The lines above the trends: each problem, and whom a standby cluster follows.
fn alerts(app: &App) -> Vec<Line<'static>> {
    let t = &app.theme;
    let problems = app.open_cluster().map(health::problems).unwrap_or_default();
    let mut alerts: Vec<Line> = problems
        .into_iter()
        .map(|p| Line::from(Span::styled(format!("▲ {p}"), t.warn)))
        .collect();
    if let Some(m) = app.open_cluster().and_then(health::standby) {
        alerts.push(Line::from(Span::styled(format!("⇠ {m}"), t.accent)));
    }
    alerts
}

/// Rows above the open tab's body inside the cluster's box: alerts, trends and the tab bar.
pub(super) fn head_rows(app: &App) -> u16 {
    alerts(app).len() as u16 + 2
}

/// How fresh the live data is: a stale marker with its age when Patroni has not answered lately.
fn freshness(app: &App) -> Line<'static> {
    let t = &app.theme;
    match (app.stale_for(), app.live.last_ok) {
        (Some(age), Some(_)) => Line::from(Span::styled(
            format!("⚠ STALE {}", display::duration(age.as_secs() as i64)),
            t.stale,
        )),
        (Some(_), None) => Line::from(Span::styled("⚠ STALE: Patroni unreachable", t.stale)),
        (None, Some(at)) => Line::from(Span::styled(
            format!(
                "live · {} ago",
                display::duration(app.now.as_second() - at.as_second())
            ),
            t.muted,
        )),
        (None, None) => Line::from(Span::styled("connecting…", t.muted)),
    }
}
