//! Manual backups, PGO's way: a new value of `pgdeck.dev/pgbackrest-backup` runs the backup
//! `spec.backups.pgbackrest.manual` describes, once, in a Job `<cluster>-backup-<digest>`
//! (created once the stanza exists, never re-created); `status.manualBackup` follows the Job.

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

use super::names::Names;
use super::objects::ManualBackup;
use super::status::{JobState, job_state};
use crate::actions;
use crate::api::status::{ManualBackupStatus, PostgresClusterStatus, RepoStatus};
use crate::api::{PostgresCluster, annotations};
use crate::observe::conditions;

/// Where a manual backup stands this pass.
#[derive(Debug, Default)]
pub struct Manual {
    /// The Job to create.
    pub start: Option<ManualBackup>,
    /// For `status.manualBackup`; `None` when there is nothing new to say.
    pub status: Option<ManualBackupStatus>,
    /// Asked for and not finished.
    pub running: bool,
    /// The outcome, for the Backup condition, when it finished.
    pub outcome: Option<(bool, String)>,
}

/// `repos`: the repositories as status lists them this pass, for the backup's label.
pub fn check(
    cluster: &PostgresCluster,
    jobs: &[Job],
    stanza_created: bool,
    repos: &[RepoStatus],
) -> Manual {
    let Some(trigger) = cluster.annotation(annotations::BACKUP) else {
        return Manual::default();
    };
    let manual = cluster
        .spec
        .backups
        .as_ref()
        .and_then(|b| b.pgbackrest.manual.clone());
    let name = Names::new(cluster.name(), cluster.namespace()).manual_backup(trigger);
    let job = jobs.iter().find(|j| j.name_any() == name);
    // The backup it took, once pgBackRest lists it.
    let label = || {
        let manual = manual.as_ref()?;
        let (kind, _) = actions::manual_backup(manual.options.as_deref()).ok()?;
        label(repos, &manual.repo_name, &kind, job?)
    };
    let recorded = cluster
        .status
        .as_ref()
        .and_then(|s| s.manual_backup.as_ref());
    if let Some(m) = recorded.filter(|m| m.trigger == trigger && m.finished) {
        // A backup that finished before the repository host listed it gets its label later.
        return match label().filter(|_| m.succeeded && m.label.is_none()) {
            Some(label) => Manual {
                status: Some(ManualBackupStatus {
                    label: Some(label),
                    ..m.clone()
                }),
                ..Default::default()
            },
            None => Manual::default(),
        };
    }
    let finished = |succeeded: bool, message: String| Manual {
        status: Some(ManualBackupStatus {
            trigger: trigger.to_string(),
            finished: true,
            succeeded,
            label: if succeeded { label() } else { None },
            message: (!succeeded).then(|| message.clone()),
        }),
        outcome: Some((succeeded, message)),
        ..Default::default()
    };
    let Some(manual) = manual.clone() else {
        return finished(
            false,
            "the backup trigger changed but spec.backups.pgbackrest.manual is not set".into(),
        );
    };
    let repo = manual.repo_name.clone();
    if cluster.repos().iter().all(|r| r.name != repo) {
        return finished(
            false,
            format!("{} has no repository {repo}", cluster.name()),
        );
    }
    // Validated at apply; a spec written past `pgdeck apply` is refused here, not run.
    let (kind, options) = match actions::manual_backup(manual.options.as_deref()) {
        Ok(run) => run,
        Err(why) => return finished(false, why),
    };
    match job.map(job_state) {
        Some(JobState::Succeeded) => {
            finished(true, format!("the {kind} backup into {repo} succeeded"))
        }
        Some(JobState::Failed) => finished(
            false,
            format!(
                "the {kind} backup into {repo} failed: see `kubectl logs -n {} job/{name}`",
                cluster.namespace()
            ),
        ),
        running => Manual {
            start: (running.is_none() && stanza_created).then(|| ManualBackup {
                trigger: trigger.to_string(),
                repo,
                options,
            }),
            status: Some(ManualBackupStatus {
                trigger: trigger.to_string(),
                ..Default::default()
            }),
            running: true,
            outcome: None,
        },
    }
}

/// The newest `kind` backup in `repo` that started once `job` had: the one it took.
fn label(repos: &[RepoStatus], repo: &str, kind: &str, job: &Job) -> Option<String> {
    let since = job.status.as_ref()?.start_time.as_ref()?.0;
    repos
        .iter()
        .find(|r| r.name == repo)?
        .backups
        .iter()
        .filter(|b| b.type_ == kind && b.start.as_ref().is_some_and(|t| t.0 >= since))
        .max_by_key(|b| b.start.as_ref().map(|t| t.0))
        .map(|b| b.label.clone())
}

/// Record `manual` in status, and its outcome as the Backup condition.
pub fn record(cluster: &PostgresCluster, status: &mut PostgresClusterStatus, manual: Manual) {
    if let Some(m) = manual.status {
        status.manual_backup = Some(m);
    }
    if let Some((ok, message)) = manual.outcome {
        let reason = if ok { "Succeeded" } else { "Failed" };
        let g = cluster.generation();
        conditions::set(
            &mut status.conditions,
            conditions::BACKUP,
            ok,
            reason,
            message,
            g,
        );
    }
}
