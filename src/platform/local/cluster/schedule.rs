//! The reconciler's scheduler for `repos[].schedules`: cron expressions in UTC, as Kubernetes
//! CronJobs read them by default. A run missed while the reconciler was down is not made up; the
//! next one comes on time.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::api::PostgresCluster;
use crate::api::validate::parse_cron;

/// One schedule: which repository, which backup type (`full`, `diff`, `incr`).
pub type Entry = (String, String);

#[derive(Default)]
pub struct Scheduler {
    /// Each schedule's cron expression and when it is next due.
    next: BTreeMap<Entry, (String, Timestamp)>,
}

impl Scheduler {
    /// Follow the spec's schedules, and return one that is due at `now`, if any.
    pub fn due(&mut self, cluster: &PostgresCluster, now: Timestamp) -> Option<Entry> {
        let wanted: BTreeMap<Entry, String> = cluster
            .repos()
            .iter()
            .filter(|r| r.volume.is_some())
            .flat_map(|r| {
                r.schedules
                    .iter()
                    .flat_map(|s| s.entries())
                    .map(|(kind, cron)| ((r.name.clone(), kind.to_string()), cron.to_string()))
            })
            .collect();
        self.next
            .retain(|entry, (cron, _)| wanted.get(entry) == Some(cron));
        for (entry, cron) in wanted {
            if !self.next.contains_key(&entry)
                && let Some(at) = next_after(&cron, now)
            {
                self.next.insert(entry, (cron, at));
            }
        }
        self.next
            .iter()
            .find(|(_, (_, at))| *at <= now)
            .map(|(entry, _)| entry.clone())
    }

    /// When the next schedule is due, for the worker to wake then.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.next.values().map(|(_, at)| *at).min()
    }

    /// `entry` ran (or started) at `now`: schedule its next run.
    pub fn ran(&mut self, entry: &Entry, now: Timestamp) {
        if let Some((cron, at)) = self.next.get_mut(entry)
            && let Some(next) = next_after(cron, now)
        {
            *at = next;
        }
    }
}

fn next_after(cron: &str, now: Timestamp) -> Option<Timestamp> {
    let cron = parse_cron(cron).ok()?;
    cron.find_next_occurrence(&now.to_zoned(TimeZone::UTC), false)
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;

    #[test]
    fn runs_on_schedule_and_follows_spec_changes() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/examples/resources.yaml"
        ))
        .unwrap();
        let c = manifest::parse(&text).unwrap();
        let mut s = Scheduler::default();
        let t = |x: &str| x.parse::<Timestamp>().unwrap();
        // Saturday 11:58 UTC: the incremental (every 6 h) is next, at 12:00.
        assert_eq!(s.due(&c, t("2026-11-21T11:58:00Z")), None);
        let due = s.due(&c, t("2026-11-21T12:00:30Z")).unwrap();
        assert_eq!(due, ("repo1".to_string(), "incr".to_string()));
        s.ran(&due, t("2026-11-21T12:00:30Z"));
        assert_eq!(
            s.due(&c, t("2026-11-21T12:01:00Z")),
            None,
            "not again until 18:00"
        );
        assert_eq!(s.next_due(), Some(t("2026-11-21T18:00:00Z")));
        assert_eq!(s.due(&c, t("2026-11-21T18:00:00Z")), Some(due));

        let mut none = c.clone();
        none.spec.backups.as_mut().unwrap().pgbackrest.repos[0].schedules = None;
        assert_eq!(s.due(&none, t("2026-11-22T00:00:00Z")), None);
        assert!(s.next.is_empty());
    }
}
