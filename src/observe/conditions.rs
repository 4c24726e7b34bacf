//! Status conditions, Kubernetes-style: a type, True/False, a reason and a message. The
//! transition time changes only when the status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::patroni::SyncMode;
use crate::api::status::InstanceStatus;
use crate::api::support::{self, Platform};
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
/// With synchronous mode on: false while no standby is synchronous, so a commit is on one
/// server only. Absent when synchronous mode is off.
pub const SYNCHRONOUS: &str = "SynchronousReplication";
/// With `spec.monitoring.pgmonitor.exporter`: whether every instance's exporter runs. Absent
/// without one.
pub const EXPORTER: &str = "Exporter";
/// True while Patroni is paused (maintenance mode): it neither fails over nor restarts
/// PostgreSQL, so a DBA must not forget it.
pub const PATRONI_PAUSED: &str = "PatroniPaused";
/// For a cluster restored from another's repository: whether replay reached the end of the
/// source's archive (or the restore's target). False with `WALGap` when it ended early.
pub const DATA_SOURCE: &str = "DataSource";

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

/// Set condition `type_` to `verdict` (status, reason, message), or remove it when `None`.
pub fn set_or_remove(
    conditions: &mut Vec<Condition>,
    type_: &str,
    verdict: Option<(bool, &str, String)>,
    generation: i64,
) {
    match verdict {
        Some((ok, reason, message)) => set(conditions, type_, ok, reason, message, generation),
        None => conditions.retain(|c| c.type_ != type_),
    }
}

/// The Exporter condition: absent while no exporter is wanted, false with the reason while one
/// cannot run.
pub fn exporter(
    status: &mut PostgresClusterStatus,
    wanted: bool,
    problem: Option<&str>,
    generation: i64,
) {
    let c = &mut status.conditions;
    match (wanted, problem) {
        (false, _) => c.retain(|c| c.type_ != EXPORTER),
        (true, Some(why)) => set(c, EXPORTER, false, "ExporterFailed", why, generation),
        (true, None) => set(
            c,
            EXPORTER,
            true,
            "Running",
            "every instance's exporter serves /metrics",
            generation,
        ),
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

/// The PatroniPaused condition from what Patroni said (`observed`: `None` when no member
/// answered, which leaves it as it was) and what the spec asks (`pause` in
/// `spec.patroni.dynamicConfiguration`).
pub fn paused(
    status: &mut PostgresClusterStatus,
    observed: Option<bool>,
    wanted: bool,
    generation: i64,
) {
    let Some(observed) = observed else { return };
    let (reason, message) = match (observed, wanted) {
        (true, true) => (
            "MaintenanceMode",
            "Patroni is paused: no automatic failover or restart of PostgreSQL until it is resumed (pgdeck resume)",
        ),
        (true, false) => (
            "Resuming",
            "Patroni is paused, and the spec no longer asks for it: resuming",
        ),
        (false, true) => ("Pausing", "the spec asks Patroni to pause: pausing"),
        (false, false) => ("Running", "Patroni manages the cluster"),
    };
    set(
        &mut status.conditions,
        PATRONI_PAUSED,
        observed,
        reason,
        message,
        generation,
    );
}

/// Patroni is being paused or resumed and has not said it is yet: look again soon.
pub fn pause_changing(status: &PostgresClusterStatus) -> bool {
    status
        .condition(PATRONI_PAUSED)
        .is_some_and(|c| matches!(c.reason.as_str(), "Pausing" | "Resuming"))
}

/// What a reconciler is busy with, for the Progressing condition.
#[derive(Debug, Default)]
pub struct Activity {
    /// Instances being removed.
    pub removing: Vec<String>,
    /// Removals held back (no leader is known), and why.
    pub waiting: Option<String>,
    pub switchover: bool,
    /// The spec's users and databases are being applied.
    pub users: bool,
    pub initial_backup: bool,
    /// A manual or scheduled backup.
    pub backup: bool,
    /// A rolling restart: instances updated, out of all.
    pub rolling: Option<(usize, usize)>,
    /// The fields the spec sets that this platform does not support, as [`unsupported`] says;
    /// while there are any the reconciler changes nothing.
    pub unsupported: Option<String>,
    /// A new cluster's members all wait for a bootstrap nobody runs, and why.
    pub stalled_bootstrap: Option<String>,
    /// Adopted volumes' directories being moved into place (Kubernetes), and which.
    pub adopting: Option<String>,
}

/// What a reconciler on `platform` says of a stored spec that sets fields the platform does not
/// support (stored before pgdeck refused them, or written to the API directly): which, and why.
/// `None` when there are none.
pub fn unsupported(cluster: &PostgresCluster, platform: Platform) -> Option<String> {
    let refused = support::refusals(cluster, platform);
    (!refused.is_empty()).then(|| {
        format!(
            "nothing is changed while the spec sets fields {platform} does not support; remove \
             them: {}",
            support::summary(&refused)
        )
    })
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
    } else if let Some(why) = &activity.unsupported {
        Some(("UnsupportedFields", why.clone()))
    } else if let Some(why) = &activity.stalled_bootstrap {
        Some(("BootstrapStalled", why.clone()))
    } else if let Some(what) = &activity.adopting {
        Some(("MovingDirectories", what.clone()))
    } else if let Some(why) = &activity.waiting {
        Some(("WaitingForLeader", why.clone()))
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
    } else if activity.users {
        Some(("Users", "creating the spec's users and databases".into()))
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
    let stuck = match shutdown {
        true => Vec::new(),
        false => stuck(
            &status.instances,
            &activity.removing,
            cluster.patroni().leader_lease_seconds().into(),
            jiff::Timestamp::now(),
        ),
    };
    let c = &mut status.conditions;
    let unsupported = activity.unsupported.as_deref();
    let reason = match (problem, unsupported, stuck.is_empty()) {
        (Some(_), _, _) => "Error",
        (None, Some(_), _) => "UnsupportedFields",
        (None, None, false) => "InstanceNotReady",
        (None, None, true) => "AsExpected",
    };
    let problems: Vec<String> = [problem, unsupported]
        .into_iter()
        .flatten()
        .map(String::from)
        .chain(stuck)
        .collect();
    match problems.is_empty() {
        false => set(c, DEGRADED, true, reason, problems.join("; "), g),
        true => set(c, DEGRADED, false, reason, "no problems seen", g),
    }
    synchronous(cluster, status);
}

/// Instances that have not been ready for longer than `ttl` seconds (Patroni's leader lease:
/// longer than any restart or failover should take), each with what Patroni reports, except
/// those being removed and replicas still being created (their copy can take hours).
pub fn stuck(
    instances: &[InstanceStatus],
    removing: &[String],
    ttl: i64,
    now: jiff::Timestamp,
) -> Vec<String> {
    instances
        .iter()
        .filter(|i| !removing.contains(&i.name))
        .filter(|i| i.state.as_deref() != Some("creating replica"))
        .filter_map(|i| {
            let down = now.as_second() - i.not_ready_since.as_ref()?.0.as_second();
            let what = match i.role.as_deref() {
                Some("primary" | "standby_leader") => "running",
                _ => "running and streaming",
            };
            (down > ttl).then(|| {
                format!(
                    "{} has not been {what} for {} (Patroni: {})",
                    i.name,
                    crate::display::duration(down),
                    i.state.as_deref().unwrap_or("unknown")
                )
            })
        })
        .collect()
}

/// The SynchronousReplication condition: whether a commit waits for a standby.
fn synchronous(cluster: &PostgresCluster, status: &mut PostgresClusterStatus) {
    let mode = cluster.sync_mode();
    if mode == SyncMode::Off || cluster.spec.shutdown == Some(true) {
        status.conditions.retain(|c| c.type_ != SYNCHRONOUS);
        return;
    }
    let standbys: Vec<&str> = status
        .instances
        .iter()
        .filter(|i| i.ready && i.role.as_deref() == Some("sync_standby"))
        .map(|i| i.name.as_str())
        .collect();
    let g = cluster.generation();
    let c = &mut status.conditions;
    match (standbys.is_empty(), mode) {
        (false, _) => set(
            c,
            SYNCHRONOUS,
            true,
            "SyncStandbyStreaming",
            format!("commits wait for {}", standbys.join(", ")),
            g,
        ),
        (true, SyncMode::Strict) => set(
            c,
            SYNCHRONOUS,
            false,
            "NoSyncStandby",
            "synchronous mode is strict and no standby is synchronous: writes wait until one is",
            g,
        ),
        (true, _) => set(
            c,
            SYNCHRONOUS,
            false,
            "NoSyncStandby",
            "synchronous mode is on but no standby is synchronous: writes are not synchronously protected",
            g,
        ),
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
    fn the_exporter_condition_says_why_and_goes_with_the_exporter() {
        let mut status = PostgresClusterStatus::default();
        let why =
            "mon-a: spec.monitoring.pgmonitor.exporter.configuration[0]: ConfigMap \"q\" not found";
        exporter(&mut status, true, Some(why), 1);
        let c = &status.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            (EXPORTER, "False", "ExporterFailed")
        );
        assert_eq!(c.message, why);
        exporter(&mut status, true, None, 2);
        assert_eq!(status.conditions[0].status, "True");
        exporter(&mut status, false, None, 3);
        assert!(status.conditions.is_empty(), "no exporter, no condition");
    }

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

    fn cluster(dynamic: &str) -> PostgresCluster {
        crate::api::manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c}}\nspec:\n  postgresVersion: 15\n  patroni: {{dynamicConfiguration: {dynamic}}}\n  instances:\n    - replicas: 2\n      dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n"
        ))
        .unwrap()
    }

    fn instance(name: &str, role: &str, ready: bool, down_for: i64) -> InstanceStatus {
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(down_for);
        InstanceStatus {
            name: name.into(),
            role: Some(role.into()),
            state: Some(if ready { "streaming" } else { "start failed" }.into()),
            ready,
            not_ready_since: (!ready).then_some(Time(since)),
            ..Default::default()
        }
    }

    #[test]
    fn an_instance_down_longer_than_the_ttl_degrades_the_cluster() {
        let c = cluster("{}");
        let mut status = PostgresClusterStatus {
            primary: Some("p".into()),
            instances: vec![
                instance("p", "primary", true, 0),
                instance("r", "replica", false, 10),
            ],
            ..Default::default()
        };
        standard(&c, &mut status, &Activity::default(), None);
        assert!(!is_true(&status.conditions, DEGRADED), "10 s is a restart");
        status.instances[1] = instance("r", "replica", false, 95);
        standard(&c, &mut status, &Activity::default(), None);
        let d = status.condition(DEGRADED).unwrap();
        assert_eq!(
            (d.status.as_str(), d.reason.as_str()),
            ("True", "InstanceNotReady")
        );
        assert!(
            d.message
                .contains("r has not been running and streaming for 95s (Patroni: start failed)"),
            "{}",
            d.message
        );
        // An instance on its way out is not a problem.
        let removing = Activity {
            removing: vec!["r".into()],
            ..Default::default()
        };
        standard(&c, &mut status, &removing, None);
        assert!(!is_true(&status.conditions, DEGRADED));
    }

    #[test]
    fn unsupported_fields_degrade_the_cluster_and_hold_every_change() {
        let c = cluster("{}");
        let mut status = PostgresClusterStatus {
            primary: Some("p".into()),
            instances: vec![
                instance("p", "primary", true, 0),
                instance("r", "replica", true, 0),
            ],
            ..Default::default()
        };
        let mut pooled = c.clone();
        pooled.spec.proxy = Some(Default::default());
        pooled.spec.proxy.as_mut().unwrap().pg_bouncer.image = Some("pgbouncer:1.23".into());
        let activity = Activity {
            unsupported: unsupported(&pooled, Platform::Local),
            ..Default::default()
        };
        standard(&c, &mut status, &activity, None);
        for type_ in [DEGRADED, PROGRESSING] {
            let s = status.condition(type_).unwrap();
            assert_eq!(
                (s.status.as_str(), s.reason.as_str()),
                ("True", "UnsupportedFields"),
                "{type_}"
            );
            assert!(
                s.message.contains("nothing is changed")
                    && s.message.contains(
                        "spec.proxy.pgBouncer.image: not supported on the local platform"
                    ),
                "{}",
                s.message
            );
        }
        assert_eq!(unsupported(&c, Platform::Local), None);
        standard(&c, &mut status, &Activity::default(), None);
        assert!(!is_true(&status.conditions, DEGRADED));
    }

    #[test]
    fn synchronous_mode_without_a_sync_standby_says_writes_are_unprotected() {
        let mut status = PostgresClusterStatus {
            primary: Some("p".into()),
            instances: vec![
                instance("p", "primary", true, 0),
                instance("r", "replica", true, 0),
            ],
            ..Default::default()
        };
        standard(&cluster("{}"), &mut status, &Activity::default(), None);
        assert!(status.condition(SYNCHRONOUS).is_none(), "off: no condition");
        let on = cluster("{synchronous_mode: true}");
        standard(&on, &mut status, &Activity::default(), None);
        let s = status.condition(SYNCHRONOUS).unwrap();
        assert_eq!(
            (s.status.as_str(), s.reason.as_str()),
            ("False", "NoSyncStandby")
        );
        assert!(s.message.contains("not synchronously protected"));
        status.instances[1].role = Some("sync_standby".into());
        standard(&on, &mut status, &Activity::default(), None);
        assert!(is_true(&status.conditions, SYNCHRONOUS));
    }
}
