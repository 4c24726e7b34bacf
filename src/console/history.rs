//! The History tab's state: the cluster's timeline switches as Patroni's `/history` lists them
//! (read while the tab is open), beside pgdeck's own records of switchovers and failovers (its
//! events and the Switchover condition), newest first.

use super::activity::take;
use crate::api::PostgresCluster;
use crate::observe::conditions::SWITCHOVER;
use crate::observe::events::ClusterEvent;
use crate::observe::history::TimelineSwitch;

/// What `/history` said on the last poll.
#[derive(Debug, Default)]
pub struct History {
    pub switches: Vec<TimelineSwitch>,
    pub last_ok: Option<jiff::Timestamp>,
    pub error: Option<String>,
}

impl History {
    /// A failed poll keeps the last list and says why.
    pub fn update(&mut self, result: Result<Vec<TimelineSwitch>, String>, at: jiff::Timestamp) {
        take(
            result,
            at,
            &mut self.switches,
            &mut self.last_ok,
            &mut self.error,
        );
    }
}

/// One row of the tab.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub time: Option<jiff::Timestamp>,
    /// `1 → 2` for a timeline switch.
    pub timeline: String,
    pub lsn: String,
    /// Who recorded it: Patroni, or pgdeck.
    pub by: &'static str,
    pub what: String,
    /// The new leader, or pgdeck's message.
    pub detail: String,
    pub warning: bool,
}

/// Whether an event is one of pgdeck's records of a change of primary.
fn about_the_primary(e: &ClusterEvent) -> bool {
    e.reason.starts_with("Switchover")
        || e.reason.starts_with("Failover")
        || e.reason == "PrimaryChanged"
}

/// The rows, newest first; entries without a time (old Patroni) go by timeline, below the
/// timed ones.
pub fn entries(
    switches: &[TimelineSwitch],
    events: &[ClusterEvent],
    cluster: Option<&PostgresCluster>,
) -> Vec<Entry> {
    let mut out: Vec<Entry> = switches
        .iter()
        .map(|s| Entry {
            time: s.time,
            timeline: format!("{} → {}", s.timeline, s.timeline + 1),
            lsn: s.lsn.clone().unwrap_or_default(),
            by: "Patroni",
            what: s.reason.clone(),
            detail: s
                .leader
                .as_ref()
                .map(|l| format!("new leader {l}"))
                .unwrap_or_default(),
            warning: false,
        })
        .collect();
    out.extend(
        events
            .iter()
            .rev()
            .filter(|e| about_the_primary(e))
            .map(|e| Entry {
                time: Some(e.time),
                timeline: String::new(),
                lsn: String::new(),
                by: "pgdeck",
                what: e.reason.clone(),
                detail: e.message.clone(),
                warning: e.type_ == "Warning",
            }),
    );
    let status = cluster.and_then(|c| c.status.as_ref());
    if let Some(c) = status.and_then(|s| s.condition(SWITCHOVER)) {
        let timeline = status
            .and_then(|s| s.patroni.as_ref())
            .and_then(|p| p.switchover_timeline);
        out.push(Entry {
            time: Some(c.last_transition_time.0),
            timeline: timeline.map(|t| format!("→ {t}")).unwrap_or_default(),
            lsn: String::new(),
            by: "pgdeck",
            what: format!("last switchover: {}", c.reason),
            detail: c.message.clone(),
            warning: c.status != "True",
        });
    }
    // A stable sort: untimed switches stay newest first, below the timed rows.
    out.sort_by_key(|e| std::cmp::Reverse(e.time));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn timeline_switches_and_pgdecks_records_are_merged_newest_first() {
        let switches = vec![
            TimelineSwitch {
                timeline: 2,
                lsn: Some("0/5000060".into()),
                reason: "no recovery target specified".into(),
                time: Some(at("2026-11-21T11:30:01Z")),
                leader: Some("b".into()),
            },
            TimelineSwitch {
                timeline: 1,
                lsn: None,
                reason: String::new(),
                time: None,
                leader: None,
            },
        ];
        let events = vec![
            ClusterEvent {
                time: at("2026-11-21T11:29:59Z"),
                ..ClusterEvent::normal("SwitchoverRequested", "to b", "me@host (cli)")
            },
            ClusterEvent {
                time: at("2026-11-21T11:30:02Z"),
                ..ClusterEvent::normal(
                    "Switchover",
                    "Successfully switched over to b",
                    "reconciler",
                )
            },
            ClusterEvent {
                time: at("2026-11-21T11:40:00Z"),
                ..ClusterEvent::normal("BackupCompleted", "full", "reconciler")
            },
        ];
        let rows = entries(&switches, &events, None);
        let what: Vec<&str> = rows.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            what,
            vec![
                "Switchover",
                "no recovery target specified",
                "SwitchoverRequested",
                ""
            ]
        );
        assert_eq!(rows[1].timeline, "2 → 3");
        assert_eq!(rows[1].detail, "new leader b");
        assert_eq!(rows[3].by, "Patroni");
    }
}
