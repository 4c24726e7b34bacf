//! Status conditions, Kubernetes-style: a type, True/False, a reason and a message. The
//! transition time changes only when the status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{PostgresCluster, PostgresClusterStatus};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const SWITCHOVER: &str = "Switchover";
/// True while a volume is more than 80 % full.
pub const VOLUME_PRESSURE: &str = "VolumePressure";
/// False while a volume cannot grow as the spec asks (Kubernetes: its StorageClass refuses).
pub const VOLUME_RESIZE: &str = "VolumeResize";
/// The outcome of the last backup pgdeck ran (manual or scheduled).
pub const BACKUP: &str = "Backup";

/// Set condition `type_` in `conditions`, keeping its transition time when its truth holds.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: i64,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let message = message.into();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Time(jiff::Timestamp::now());
            }
            c.status = status;
            c.reason = reason.into();
            c.message = message;
            c.observed_generation = Some(generation);
        }
        None => conditions.push(Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message,
            observed_generation: Some(generation),
            last_transition_time: Time(jiff::Timestamp::now()),
        }),
    }
}

/// Record how the switchover asked for with `trigger` went: in `status.patroni` (the trigger,
/// and the timeline it produced) and as the Switchover condition.
pub fn switchover(
    status: &mut PostgresClusterStatus,
    trigger: Option<String>,
    result: Result<String, String>,
    generation: i64,
) {
    let ok = result.is_ok();
    let timeline = status
        .instances
        .iter()
        .find(|i| i.role.as_deref() == Some("primary"))
        .and_then(|i| i.timeline);
    let p = status.patroni.get_or_insert_with(Default::default);
    p.switchover = trigger;
    p.switchover_timeline = if ok { timeline } else { None };
    let (reason, message) = match result {
        Ok(m) => ("Succeeded", m),
        Err(m) => ("Failed", m),
    };
    set(
        &mut status.conditions,
        SWITCHOVER,
        ok,
        reason,
        message,
        generation,
    );
}

/// What a reconciler is busy with, for the Progressing condition.
#[derive(Debug, Default)]
pub struct Activity {
    /// Instances being removed.
    pub removing: Vec<String>,
    pub switchover: bool,
    pub initial_backup: bool,
    /// A manual or scheduled backup.
    pub backup: bool,
    /// A rolling restart: instances updated, out of all.
    pub rolling: Option<(usize, usize)>,
}

/// Ready, Progressing and Degraded, the same on every platform: from the instances in `status`,
/// what the reconciler is busy with, and the problem it last met.
pub fn standard(
    cluster: &PostgresCluster,
    status: &mut PostgresClusterStatus,
    activity: &Activity,
    problem: Option<&str>,
) {
    let g = cluster.generation();
    let desired = cluster.desired_instances() as usize;
    let ready = status.instances.iter().filter(|i| i.ready).count();
    let has_primary = status.primary.is_some();
    let c = &mut status.conditions;
    let shutdown = cluster.spec.shutdown == Some(true);
    let all_ready = ready == desired && has_primary && status.instances.len() == desired;
    let (ok, reason, message) = match (shutdown, all_ready) {
        (true, _) => (
            false,
            "Shutdown",
            "spec.shutdown is true: instances are stopped".to_string(),
        ),
        (false, true) => (
            true,
            "AllInstancesReady",
            format!("{ready}/{desired} instances ready"),
        ),
        (false, false) if !has_primary => (
            false,
            "NoPrimary",
            format!("{ready}/{desired} instances ready, no primary"),
        ),
        (false, false) => (
            false,
            "InstancesNotReady",
            format!("{ready}/{desired} instances ready"),
        ),
    };
    set(c, READY, ok, reason, message, g);
    let progress = if cluster.spec.paused == Some(true) {
        Some((
            "Paused",
            "spec.paused is true: nothing is changed".to_string(),
        ))
    } else if !activity.removing.is_empty() {
        Some((
            "Scaling",
            format!("removing {}", activity.removing.join(", ")),
        ))
    } else if let Some((done, all)) = activity.rolling {
        Some(("RollingRestart", format!("{done}/{all} instances updated")))
    } else if activity.switchover {
        Some(("Switchover", "switchover in progress".into()))
    } else if !shutdown && status.instances.len() != desired {
        Some((
            "Scaling",
            format!("{} of {desired} instances exist", status.instances.len()),
        ))
    } else if !shutdown && !all_ready {
        Some(("Starting", format!("{ready}/{desired} instances ready")))
    } else if activity.initial_backup {
        Some(("Backup", "taking the first full backup".into()))
    } else if activity.backup {
        Some(("Backup", "taking a backup".into()))
    } else {
        None
    };
    match progress {
        Some((reason, message)) => set(c, PROGRESSING, true, reason, message, g),
        None => set(
            c,
            PROGRESSING,
            false,
            "Reconciled",
            "the cluster matches its spec",
            g,
        ),
    }
    match problem {
        Some(p) => set(c, DEGRADED, true, "Error", p, g),
        None => set(c, DEGRADED, false, "AsExpected", "no problems seen", g),
    }
}

/// The cluster has carried out `generation`: seen it, every desired instance ready, and
/// nothing under way (a rolling restart, scaling, a switchover) but perhaps a backup.
pub fn settled(cluster: &PostgresCluster, generation: i64) -> bool {
    let Some(s) = &cluster.status else {
        return false;
    };
    let busy = s
        .condition(PROGRESSING)
        .is_some_and(|c| c.status == "True" && c.reason != "Backup");
    s.observed_generation >= Some(generation)
        && is_true(&s.conditions, READY)
        && s.instances.len() == cluster.desired_instances() as usize
        && !busy
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_with_status() {
        let mut c = Vec::new();
        set(&mut c, READY, false, "Creating", "0/2", 1);
        let first = c[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(5));
        set(&mut c, READY, false, "Creating", "1/2", 1);
        assert_eq!(c[0].last_transition_time, first);
        assert_eq!(c[0].message, "1/2");
        set(&mut c, READY, true, "AllInstancesReady", "2/2", 1);
        assert_ne!(c[0].last_transition_time, first);
        assert!(is_true(&c, READY));
    }
}
