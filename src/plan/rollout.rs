//! The order in which a change that restarts instances rolls out, the same on every platform:
//! the replicas one at a time (asynchronous ones before the sync standby), each back to
//! streaming before the next, then a switchover to an updated replica, then the old primary.

use crate::actions;
use crate::api::status::{InstanceStatus, PostgresClusterStatus};

/// What the rollout does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Restart this instance into what the spec says now.
    Restart(String),
    /// Only the primary is left: hand over to an updated replica first.
    Switchover { leader: String, target: String },
}

/// The next step, or `None` to wait (or when nothing is stale, or no leader is known).
///
/// `instances` are every instance the cluster runs, as seen; `stale` those that must restart;
/// `busy` says something is under way (a restart, a switchover, a scale) that must finish first.
pub fn next(
    instances: &[InstanceStatus],
    stale: &[String],
    leader: Option<&str>,
    busy: bool,
) -> Option<Step> {
    // Without a known leader any instance may be the primary: nothing restarts.
    leader?;
    let ready = |name: &str| instances.iter().any(|i| i.name == name && i.ready);
    let sync_standby = |name: &str| {
        instances
            .iter()
            .any(|i| i.name == name && i.role.as_deref() == Some("sync_standby"))
    };
    let mut replicas: Vec<&String> = stale
        .iter()
        .filter(|s| Some(s.as_str()) != leader)
        .collect();
    // A replica that is down anyway loses nothing by restarting: first, and without waiting
    // (a template that broke it can then be fixed).
    replicas.sort_by_key(|r| (ready(r), sync_standby(r)));
    if busy {
        return None;
    }
    if let Some(r) = replicas.first().filter(|r| !ready(r)) {
        return Some(Step::Restart((*r).clone()));
    }
    if !instances.iter().all(|i| ready(&i.name)) {
        return None;
    }
    if let Some(r) = replicas.first() {
        return Some(Step::Restart((*r).clone()));
    }
    let leader = leader.filter(|l| stale.iter().any(|s| s == l))?;
    if instances.len() == 1 {
        // Nobody to hand over to: the only instance just restarts.
        return Some(Step::Restart(leader.to_string()));
    }
    let others = PostgresClusterStatus {
        instances: instances
            .iter()
            .filter(|i| i.name != leader)
            .cloned()
            .collect(),
        ..Default::default()
    };
    let target = actions::healthiest_candidate(&others)?.name.clone();
    Some(Step::Switchover {
        leader: leader.to_string(),
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, role: &str, ready: bool) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            role: Some(role.into()),
            ready,
            lag_bytes: Some(0),
            ..Default::default()
        }
    }

    fn stale(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn replicas_first_sync_standby_last_then_switchover_then_the_old_primary() {
        let all = [
            instance("p", "primary", true),
            instance("s", "sync_standby", true),
            instance("r", "replica", true),
        ];
        let restart = |n: &str| Some(Step::Restart(n.into()));
        assert_eq!(
            next(&all, &stale(&["p", "s", "r"]), Some("p"), false),
            restart("r")
        );
        assert_eq!(
            next(&all, &stale(&["p", "s"]), Some("p"), false),
            restart("s")
        );
        assert_eq!(
            next(&all, &stale(&["p"]), Some("p"), false),
            Some(Step::Switchover {
                leader: "p".into(),
                target: "s".into()
            })
        );
        // After the switchover the old primary is a replica like any other.
        assert_eq!(next(&all, &stale(&["p"]), Some("s"), false), restart("p"));
        assert_eq!(next(&all, &[], Some("s"), false), None);
    }

    #[test]
    fn nothing_restarts_while_the_leader_is_unknown() {
        let mut all = [
            instance("p", "primary", false),
            instance("r", "replica", false),
        ];
        assert_eq!(next(&all, &stale(&["p", "r"]), None, false), None);
        all[0].ready = true;
        all[1].ready = true;
        assert_eq!(next(&all, &stale(&["r"]), None, false), None);
    }

    #[test]
    fn waits_while_busy_or_not_ready_but_restarts_a_broken_replica() {
        let mut all = [
            instance("p", "primary", true),
            instance("a", "replica", true),
            instance("b", "replica", true),
        ];
        assert_eq!(next(&all, &stale(&["a", "b"]), Some("p"), true), None);
        all[1].ready = false;
        assert_eq!(next(&all, &stale(&["b"]), Some("p"), false), None);
        assert_eq!(
            next(&all, &stale(&["a", "b"]), Some("p"), false),
            Some(Step::Restart("a".into()))
        );
    }

    #[test]
    fn a_single_instance_just_restarts() {
        let all = [instance("p", "primary", true)];
        assert_eq!(
            next(&all, &stale(&["p"]), Some("p"), false),
            Some(Step::Restart("p".into()))
        );
    }
}
