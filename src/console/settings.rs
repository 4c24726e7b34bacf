//! The Settings tab's state: the followed instance's parameters as the last read found them,
//! filtered as the other lists are.

use super::activity::{Target, take};
use crate::observe::settings::Setting;

#[derive(Debug, Default)]
pub struct Settings {
    /// The instance shown; `None` until the tab is opened.
    pub target: Option<Target>,
    pub rows: Vec<Setting>,
    pub last_ok: Option<jiff::Timestamp>,
    pub error: Option<String>,
    pub filter: String,
    /// Rows that pass the filter: indices into `rows`, recomputed on data, never per frame.
    visible: Vec<usize>,
}

impl Settings {
    pub fn visible(&self) -> impl ExactSizeIterator<Item = &Setting> {
        self.visible.iter().map(|&i| &self.rows[i])
    }

    /// Follow `target`, forgetting another instance's rows.
    pub fn follow(&mut self, target: Target) {
        if self.target.as_ref() != Some(&target) {
            *self = Settings {
                target: Some(target),
                filter: std::mem::take(&mut self.filter),
                ..Settings::default()
            };
        }
    }

    /// A failed read keeps the last rows and says why.
    pub fn update(&mut self, result: Result<Vec<Setting>, String>, at: jiff::Timestamp) {
        if take(
            result,
            at,
            &mut self.rows,
            &mut self.last_ok,
            &mut self.error,
        ) {
            self.refresh();
        }
    }

    pub fn set_filter(&mut self, filter: &str) {
        self.filter = filter.to_string();
        self.refresh();
    }

    /// Rows whose name, value or origin contain the filter; `pending` matches those waiting
    /// for a restart.
    fn refresh(&mut self) {
        let filter = self.filter.to_lowercase();
        self.visible = (0..self.rows.len())
            .filter(|&i| {
                let r = &self.rows[i];
                filter.is_empty()
                    || (filter == "pending" && (r.pending_restart || r.pending.is_some()))
                    || [&r.name, &r.origin.label()]
                        .into_iter()
                        .chain(r.value.as_ref())
                        .chain(r.wanted.as_ref())
                        .any(|f| f.to_lowercase().contains(&filter))
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::settings::Origin;

    fn setting(name: &str, origin: Origin, pending: bool) -> Setting {
        Setting {
            name: name.into(),
            value: Some("1".into()),
            wanted: None,
            origin,
            pending_restart: pending,
            pending: None,
        }
    }

    #[test]
    fn filters_by_name_origin_or_pending_and_keeps_rows_on_a_failed_read() {
        let mut s = Settings::default();
        let now = jiff::Timestamp::UNIX_EPOCH;
        s.update(
            Ok(vec![
                setting("work_mem", Origin::SpecPatroni, false),
                setting("max_connections", Origin::SpecConfig, true),
                setting("ssl", Origin::Pgdeck, false),
            ]),
            now,
        );
        let names = |s: &Settings| s.visible().map(|r| r.name.clone()).collect::<Vec<_>>();
        s.set_filter("SPEC");
        assert_eq!(names(&s), vec!["work_mem", "max_connections"]);
        s.set_filter("pending");
        assert_eq!(names(&s), vec!["max_connections"]);
        s.update(Err("down".into()), now);
        assert_eq!(names(&s), vec!["max_connections"]);
        assert_eq!(s.error.as_deref(), Some("down"));
    }
}
