//! Day-2 actions as changes to the manifest, shared by the CLI and the console. None of them
//! talks to Patroni or PostgreSQL: they set spec fields and trigger annotations, and the
//! reconciler carries them out and reports in `status`.

use crate::api::PostgresCluster;
use crate::api::annotations;
use crate::api::patroni::{PatroniSpec, Switchover, SwitchoverType};
use crate::api::status::{InstanceStatus, PostgresClusterStatus};
use crate::plan::pgbackrest_options::{self, Command};
use crate::platform::PlatformError;

pub mod verbs;

/// A value for a trigger annotation that no earlier request used.
pub fn trigger_value() -> String {
    jiff::Timestamp::now().to_string()
}

fn set_annotation(cluster: &mut PostgresCluster, key: &str, value: &str) {
    cluster
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key.to_string(), value.to_string());
}

/// Ask for a switchover (or failover) to `target`, or to the healthiest candidate the
/// reconciler picks when `None`; `status`, when known, lets it refuse a target at once. Returns the trigger value to wait for in
/// `status.patroni.switchover`.
pub fn request_switchover(
    cluster: &mut PostgresCluster,
    status: Option<&PostgresClusterStatus>,
    target: Option<&str>,
    kind: SwitchoverType,
) -> Result<String, PlatformError> {
    if let (Some(t), Some(status)) = (target, status) {
        if status.instance(t).is_none() && !status.instances.is_empty() {
            return Err(PlatformError::Refused(format!(
                "{t} is not an instance of {}",
                cluster.name()
            )));
        }
        if status.primary.as_deref() == Some(t) {
            return Err(PlatformError::Refused(format!(
                "{t} is already the primary"
            )));
        }
    }
    let patroni = cluster
        .spec
        .patroni
        .get_or_insert_with(PatroniSpec::default);
    patroni.switchover = Some(Switchover {
        enabled: true,
        target_instance: target.map(String::from),
        type_: (kind == SwitchoverType::Failover).then_some(kind),
    });
    let value = trigger_value();
    set_annotation(cluster, annotations::TRIGGER_SWITCHOVER, &value);
    Ok(value)
}

/// The instance a switchover should promote when none is named: a ready sync standby, else
/// the ready replica with the least lag.
pub fn healthiest_candidate(status: &PostgresClusterStatus) -> Option<&InstanceStatus> {
    let replicas = status
        .instances
        .iter()
        .filter(|i| i.ready && matches!(i.role.as_deref(), Some("sync_standby" | "replica")));
    replicas.min_by_key(|i| {
        (
            i.role.as_deref() != Some("sync_standby"),
            i.lag_bytes.unwrap_or(i64::MAX),
        )
    })
}

/// pgBackRest's backup types, as `--type` names them.
pub const BACKUP_TYPES: [&str; 3] = ["full", "diff", "incr"];

/// Ask for a backup of `kind` (`full`, `diff`, `incr`) into `repo` (the first repository when
/// `None`), PGO's way: `spec.backups.pgbackrest.manual` and a new trigger value. Returns it.
pub fn request_backup(
    cluster: &mut PostgresCluster,
    kind: &str,
    repo: Option<&str>,
) -> Result<String, PlatformError> {
    if !BACKUP_TYPES.contains(&kind) {
        return Err(PlatformError::Refused(format!(
            "backup type {kind:?}: must be full, diff or incr"
        )));
    }
    let name = cluster.name().to_string();
    let Some(backups) = cluster.spec.backups.as_mut() else {
        return Err(PlatformError::Refused(format!(
            "{name} has no backup repository (spec.backups is not set)"
        )));
    };
    let repos: Vec<String> = backups
        .pgbackrest
        .repos
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let repo = match repo {
        Some(r) if repos.iter().any(|x| x == r) => r.to_string(),
        Some(r) => {
            return Err(PlatformError::Refused(format!(
                "{name} has no repository {r}; its repositories: {}",
                repos.join(", ")
            )));
        }
        None => repos
            .first()
            .cloned()
            .ok_or_else(|| PlatformError::Refused(format!("{name} has no repository")))?,
    };
    backups.pgbackrest.manual = Some(crate::api::backups::ManualBackup {
        repo_name: repo,
        options: Some(vec![format!("--type={kind}")]),
    });
    let value = trigger_value();
    set_annotation(cluster, annotations::BACKUP, &value);
    Ok(value)
}

/// A manual backup's type (`--type=...`, full when not given) and its `pgbackrest backup`
/// options, read as PGO's shell reads them (`plan::pgbackrest_options`), with `--type` first
/// when they leave it out; or which option is refused, naming it.
pub fn manual_backup(options: Option<&[String]>) -> Result<(String, Vec<String>), String> {
    let mut options = pgbackrest_options::read_all(options.unwrap_or_default(), Command::Backup)
        .map_err(|e| format!("spec.backups.pgbackrest.manual.{e}"))?;
    let given = options.iter().find_map(|o| o.strip_prefix("--type="));
    let kind = given.unwrap_or("full").to_string();
    if given.is_none() {
        options.insert(0, format!("--type={kind}"));
    }
    Ok((kind, options))
}

/// What a switchover request comes to, against the instances observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchoverStep {
    /// A planned switchover from the leader.
    Switchover { leader: String, target: String },
    /// A promotion without a healthy primary.
    Failover { target: String },
}

/// Decide a request of `spec.patroni.switchover` (its trigger annotation changed): the target
/// (named, or the healthiest candidate) and the kind, or why it is refused. `leader` holds the
/// leader lock.
pub fn plan_switchover(
    cluster: &PostgresCluster,
    status: &PostgresClusterStatus,
    leader: Option<&str>,
) -> Result<SwitchoverStep, String> {
    let spec = cluster.patroni().switchover.unwrap_or_default();
    if !spec.enabled {
        return Err(
            "spec.patroni.switchover.enabled is not true, so the trigger was ignored".into(),
        );
    }
    let target = match &spec.target_instance {
        Some(t) if status.instance(t).is_none() => {
            return Err(format!(
                "targetInstance {t} is not an instance of this cluster"
            ));
        }
        Some(t) => t.clone(),
        None => match healthiest_candidate(status) {
            Some(i) => i.name.clone(),
            None => return Err("no ready replica to switch over to".into()),
        },
    };
    match (spec.type_.unwrap_or_default(), leader) {
        (SwitchoverType::Switchover, Some(leader)) if leader == target => {
            Err(format!("{target} is already the primary"))
        }
        (SwitchoverType::Switchover, Some(leader)) => Ok(SwitchoverStep::Switchover {
            leader: leader.to_string(),
            target,
        }),
        (SwitchoverType::Switchover, None) => {
            Err("there is no healthy primary to switch over from: use type Failover".into())
        }
        (SwitchoverType::Failover, _) => Ok(SwitchoverStep::Failover { target }),
    }
}

/// Set the replicas of `set` (or of the only set) to `replicas`.
pub fn scale(
    cluster: &mut PostgresCluster,
    set: Option<&str>,
    replicas: i32,
) -> Result<(), PlatformError> {
    if replicas < 1 {
        return Err(PlatformError::Refused(format!(
            "cannot scale to {replicas}: an instance set needs at least 1 instance (delete the cluster to remove it)"
        )));
    }
    let names: Vec<String> = cluster.sets().into_iter().map(|(n, _)| n).collect();
    let index = match set {
        Some(wanted) => names.iter().position(|n| n == wanted).ok_or_else(|| {
            PlatformError::Refused(format!(
                "{} has no instance set {wanted}; its sets: {}",
                cluster.name(),
                names.join(", ")
            ))
        })?,
        None if names.len() == 1 => 0,
        None => {
            return Err(PlatformError::Refused(format!(
                "{} has {} instance sets ({}): say which with --set",
                cluster.name(),
                names.len(),
                names.join(", ")
            )));
        }
    };
    cluster.spec.instances[index].replicas = Some(replicas);
    Ok(())
}

/// Mark the manifest so that removing instances (scale-down, delete) keeps their data, and
/// deleting keeps the backups, as asked.
pub fn keep(cluster: &mut PostgresCluster, data: bool, backups: bool) {
    if data {
        set_annotation(cluster, annotations::KEEP_DATA, "true");
    }
    if backups {
        set_annotation(cluster, annotations::KEEP_BACKUPS, "true");
    }
}

/// Whether an annotation asks for something (`"true"`).
pub fn flag(cluster: &PostgresCluster, key: &str) -> bool {
    cluster.annotation(key) == Some("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(name: &str, role: &str, ready: bool, lag: i64) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            role: Some(role.into()),
            ready,
            lag_bytes: Some(lag),
            ..Default::default()
        }
    }

    #[test]
    fn manual_backup_options_are_passed_on_read_and_with_a_type() {
        let given = ["--start-fast=n".to_string()];
        let full = ("full".to_string(), vec!["--type=full", "--start-fast=n"]);
        let read = |o| manual_backup(o).map(|(k, o)| (k, o.join(" ")));
        assert_eq!(read(Some(&given)), Ok((full.0, full.1.join(" "))));
        let typed = ["--start-fast=n".to_string(), "'--type=incr'".to_string()];
        assert_eq!(
            read(Some(&typed)),
            Ok(("incr".into(), "--start-fast=n --type=incr".into()))
        );
        assert_eq!(read(None), Ok(("full".into(), "--type=full".into())));
        let refused = ["--type=full".to_string(), "--stanza=x".to_string()];
        assert_eq!(
            read(Some(&refused)),
            Err("spec.backups.pgbackrest.manual.options[1]: --stanza is set by pgdeck and cannot be given".into())
        );
    }

    #[test]
    fn prefers_a_ready_sync_standby_then_least_lag() {
        let mut s = PostgresClusterStatus {
            instances: vec![
                inst("p", "primary", true, 0),
                inst("a", "replica", true, 10),
                inst("b", "sync_standby", true, 500),
                inst("c", "replica", false, 0),
            ],
            ..Default::default()
        };
        assert_eq!(healthiest_candidate(&s).unwrap().name, "b");
        s.instances[2].ready = false;
        assert_eq!(healthiest_candidate(&s).unwrap().name, "a");
    }
}
