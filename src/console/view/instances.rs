//! The Instances tab: each instance's role, state, timeline and lag, where it runs and its volume.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, TableState};

use super::{col, column_table, fit, widest, window_start};
use crate::api::quantity;
use crate::console::app::App;
use crate::display;

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
    let cluster = app.open_cluster();
    let size = |set: &str| {
        let spec = cluster?
            .spec
            .instances
            .iter()
            .enumerate()
            .find(|(i, s)| crate::api::instances::set_name(s, *i) == set)?
            .1;
        quantity::bytes(spec.data_volume_claim_spec.storage()?)
    };
    let host = |i: &crate::api::status::InstanceStatus| match (&i.host, i.port, &i.node) {
        (_, _, Some(node)) => node.clone(),
        (Some(h), Some(p), None) => format!("{h}:{p}"),
        _ => "-".into(),
    };
    let hosts: Vec<String> = instances.iter().map(host).collect();
    let name_w = widest("NAME", instances.iter().map(|i| i.name.as_str()));
    let set_w = widest("SET", instances.iter().map(|i| i.set.as_str()));
    let host_w = widest("HOST/NODE", hosts.iter().map(String::as_str));
    let cols = [
        col("NAME", name_w, 9),
        col("SET", set_w, 3),
        col("ROLE", 12, 8),
        col("STATE", 9, 7),
        col("TL", 3, 4),
        col("LAG", 9, 7),
        col("REPLAY LAG", 10, 6),
        col("HOST/NODE", host_w, 5),
        col("VOLUME", 17, 1),
        col("RESTART", 7, 2),
    ];
    let shown = fit(&cols, area.width);
    let height = area.height.saturating_sub(1) as usize;
    let start = window_start(app.row, height, instances.len());
    let rows: Vec<Row> = instances
        .iter()
        .skip(start)
        .take(height)
        .map(|i| {
            let role = i.role.clone().unwrap_or_else(|| "-".into());
            let volume = match (i.volume.as_ref().and_then(|v| v.used_bytes), size(&i.set)) {
                (Some(used), Some(cap)) => {
                    format!("{} / {}", display::bytes(used), display::bytes(cap))
                }
                (None, Some(cap)) => display::bytes(cap),
                _ => "-".into(),
            };
            let cells: Vec<Cell> = vec![
                Cell::from(i.name.clone()),
                Cell::from(i.set.clone()),
                Cell::from(Span::styled(role, t.role(i.role.as_deref()))),
                Cell::from(Span::styled(
                    i.state.clone().unwrap_or_else(|| "-".into()),
                    if i.ready { t.text } else { t.warn },
                )),
                Cell::from(i.timeline.map(|x| x.to_string()).unwrap_or_default()),
                Cell::from(i.lag_bytes.map(display::bytes).unwrap_or_default()),
                Cell::from(
                    i.replay_lag_seconds
                        .map(display::lag_seconds)
                        .unwrap_or_default(),
                ),
                Cell::from(host(i)),
                Cell::from(volume),
                Cell::from(Span::styled(
                    if i.pending_restart { "yes" } else { "" },
                    t.warn,
                )),
            ];
            let mut cells = cells.into_iter().map(Some).collect::<Vec<_>>();
            Row::new(shown.iter().map(|&n| cells[n].take().unwrap_or_default())).style(t.text)
        })
        .collect();
    let table = column_table(rows, &cols, &shown, t);
    let mut state =
        TableState::default().with_selected(Some(app.row.min(instances.len() - 1) - start));
    frame.render_stateful_widget(table, area, &mut state);
}
