//! The cluster header's sparklines: the primary's commits per second and each replica's lag
//! in bytes over the last minutes, from the samples the console collected while the cluster
//! has been open. As many series as fit whole are drawn, commits first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use crate::console::app::{App, View};
use crate::console::samples::Ring;
use crate::console::theme::Theme;
use crate::display;

/// The narrowest sparkline drawn.
const MIN_SPARK: u16 = 8;
/// Between two series.
const GAP: u16 = 2;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let series = series(app);
    let texts: Vec<Line> = series.iter().map(|s| s.text(t)).collect();
    let need = |s: &Series, text: &Line| {
        text.width() as u16 + if s.ring.is_some() { MIN_SPARK } else { 0 }
    };
    let (mut used, mut fits) = (0u16, 0usize);
    for (s, text) in series.iter().zip(&texts) {
        let more = need(s, text) + if fits > 0 { GAP } else { 0 };
        if used + more > area.width {
            break;
        }
        used += more;
        fits += 1;
    }
    let sparks = series[..fits].iter().filter(|s| s.ring.is_some()).count() as u16;
    let spare = (area.width - used).checked_div(sparks).unwrap_or(0);
    let mut x = area.x;
    for (s, text) in series.iter().zip(texts).take(fits) {
        let words = text.width() as u16;
        frame.render_widget(
            Paragraph::new(text),
            Rect {
                x,
                width: words,
                ..area
            },
        );
        x += words;
        if let Some(ring) = s.ring {
            let width = MIN_SPARK + spare;
            let data = ring.last(width as usize);
            let at = Rect { x, width, ..area };
            frame.render_widget(Sparkline::default().data(&data).style(t.accent), at);
            x += width;
        }
        x += GAP;
    }
}

/// One series of the header: a label, the newest value, and the samples (none where they
/// cannot be had).
struct Series<'a> {
    label: String,
    value: String,
    ring: Option<&'a Ring>,
}

impl Series<'_> {
    fn text(&self, t: &Theme) -> Line<'static> {
        Line::from(vec![
            Span::styled(format!("{} ", self.label), t.muted),
            Span::styled(format!("{} ", self.value), t.text),
        ])
    }
}

fn series(app: &App) -> Vec<Series<'_>> {
    let samples = &app.live.samples;
    let commits = Series {
        label: "commits/s".into(),
        value: latest(&samples.commits, |v| v.to_string()),
        ring: Some(&samples.commits),
    };
    // Instances are named `<cluster>-<set>-<suffix>`: the cluster's name is in the title.
    let prefix = match &app.view {
        View::Cluster { key, .. } => format!("{}-", key.1),
        View::Clusters => String::new(),
    };
    let lags = samples.lag.iter().map(|(name, ring)| Series {
        label: format!("lag {}", name.strip_prefix(&prefix).unwrap_or(name)),
        value: latest(ring, |v| display::bytes(v as i64)),
        ring: Some(ring),
    });
    std::iter::once(commits).chain(lags).collect()
}

/// The newest sample as `show` writes it, `…` before the first.
fn latest(ring: &Ring, show: impl Fn(u64) -> String) -> String {
    ring.latest().map(show).unwrap_or_else(|| "…".into())
}
