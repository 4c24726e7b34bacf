//! The Connection tab: where to connect and as whom. Passwords stay masked until `r`.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::api::status::PgBouncerStatus;
use crate::console::app::App;
use crate::observe::pgbouncer::Pool;

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
        if let Some(p) = s.proxy.as_ref().map(|p| &p.pg_bouncer) {
            pooler(&mut lines, app, p);
        }
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

/// The pooler: its processes, whether a switchover paused it, and its pools' clients.
fn pooler(lines: &mut Vec<Line>, app: &App, p: &PgBouncerStatus) {
    let t = &app.theme;
    let mut head = vec![
        Span::styled("pgBouncer", t.title),
        Span::styled(
            format!("   {}/{} ready   ", p.ready_replicas, p.replicas),
            t.muted,
        ),
        Span::styled(p.hosts.join(" "), t.text),
    ];
    if p.paused {
        head.push(Span::styled("   paused for a switchover", t.warn));
    }
    lines.push(Line::from(head));
    match &app.pools {
        None => lines.push(Line::from(Span::styled("  reading its pools…", t.muted))),
        Some(Err(e)) => lines.push(Line::from(Span::styled(
            format!("  pools unknown: {e}"),
            t.muted,
        ))),
        Some(Ok(shown)) => {
            if let Some(from) = &shown.from {
                lines.push(Line::from(Span::styled(
                    format!("  pools of {from}"),
                    t.muted,
                )));
            }
            pools(lines, app, &shown.pools);
        }
    }
    lines.push(Line::default());
}

/// One line per pool, its waiting clients marked.
fn pools(lines: &mut Vec<Line>, app: &App, pools: &[Pool]) {
    let t = &app.theme;
    match pools {
        [] => lines.push(Line::from(Span::styled(
            "  no pools yet: no client came",
            t.muted,
        ))),
        pools => {
            lines.push(Line::from(Span::styled(
                format!(
                    "  {:<16} {:<16} {:>7} {:>8} {:>8} {:>6} {:>8}",
                    "DATABASE", "USER", "ACTIVE", "WAITING", "SERVERS", "IDLE", "MAXWAIT"
                ),
                t.muted,
            )));
            for pool in pools {
                let waiting = if pool.clients_waiting > 0 {
                    t.warn
                } else {
                    t.text
                };
                lines.push(Line::from(vec![
                    Span::styled(
                        format!(
                            "  {:<16} {:<16} {:>7}",
                            pool.database, pool.user, pool.clients_active
                        ),
                        t.text,
                    ),
                    Span::styled(format!(" {:>8}", pool.clients_waiting), waiting),
                    Span::styled(
                        format!(
                            " {:>8} {:>6} {:>7}s",
                            pool.servers_active, pool.servers_idle, pool.max_wait_seconds
                        ),
                        t.text,
                    ),
                ]));
            }
        }
    }
}
