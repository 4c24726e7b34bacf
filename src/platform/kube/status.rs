//! The status the operator writes: the same shape and conditions as on every platform (see
//! `observe::status` and `observe::conditions`), from what the API and Patroni report.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::names::Names;
use super::proxy::Seen;
use crate::api::status::{PgBouncerStatus, PostgresClusterStatus, ProxyStatus, RepoStatus};
use crate::api::{PostgresCluster, annotations};
use crate::observe::conditions::{self, Activity};

/// How a Job ended, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

pub fn job_state(job: &Job) -> JobState {
    let finished = |kind: &str| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == kind && c.status == "True"))
    };
    if finished("Complete") || job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0 {
        JobState::Succeeded
    } else if finished("Failed") {
        JobState::Failed
    } else {
        JobState::Running
    }
}

/// What a finished pod's first container said as it ended (its log's tail, with
/// `FallbackToLogsOnError`), when it said anything.
pub fn termination_message(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let terminated = statuses.first()?.state.as_ref()?.terminated.as_ref()?;
    let message = terminated.message.as_deref()?.trim();
    (!message.is_empty()).then(|| message.to_string())
}

/// The first full backup: taken (recorded in status, or its Job succeeded), running, failed.
pub fn initial_backup(cluster: &PostgresCluster, jobs: &[Job]) -> Option<JobState> {
    if cluster
        .status
        .as_ref()
        .is_some_and(|s| s.repos.iter().any(|r| r.stanza_created))
    {
        return Some(JobState::Succeeded);
    }
    let name = Names::new(cluster.name(), cluster.namespace()).initial_backup();
    jobs.iter().find(|j| j.name_any() == name).map(job_state)
}

/// The repositories: their kind, whether the stanza exists (the first backup's Job created
/// it), and what pgBackRest in the repository host lists (`info`: backups, WAL range, the
/// stanza's status; see `repo_info`). A repository `info` does not tell of keeps what status had.
pub fn repos(
    cluster: &PostgresCluster,
    backup: Option<JobState>,
    info: Option<Vec<RepoStatus>>,
) -> Vec<RepoStatus> {
    let before = cluster
        .status
        .as_ref()
        .map(|s| s.repos.as_slice())
        .unwrap_or_default();
    let info = info.unwrap_or_default();
    cluster
        .repos()
        .iter()
        .map(|r| {
            let listed = info
                .iter()
                .find(|i| i.name == r.name && i.stanza_status.is_some())
                .or_else(|| before.iter().find(|b| b.name == r.name))
                .cloned()
                .unwrap_or_default();
            RepoStatus {
                name: r.name.clone(),
                type_: Some(r.kind().to_string()),
                stanza_created: backup == Some(JobState::Succeeded),
                ..listed
            }
        })
        .collect()
}

/// The outcome of a switchover request, for `status.patroni` and the Switchover condition.
pub struct SwitchoverOutcome {
    pub trigger: String,
    pub result: Result<String, String>,
}

/// The status from this pass's observations, on top of the status as it was (so condition
/// transition times stay).
pub fn build(
    cluster: &PostgresCluster,
    deployments: &[Deployment],
    seen: &Seen,
    repos: Vec<RepoStatus>,
    activity: &Activity,
    problem: Option<&str>,
    switchover: Option<SwitchoverOutcome>,
) -> PostgresClusterStatus {
    let mut status = cluster.status.clone().unwrap_or_default();
    status.observed_generation = Some(cluster.generation());
    crate::observe::status::set_instances(
        &mut status,
        seen.statuses.clone(),
        jiff::Timestamp::now(),
    );
    status.repos = repos;
    status.proxy = pooler(cluster, deployments);
    if let Some(id) = &seen.system_identifier {
        status
            .patroni
            .get_or_insert_with(Default::default)
            .system_identifier = Some(id.clone());
    }
    crate::observe::status::summarize(cluster, &mut status);
    if let Some(outcome) = switchover {
        conditions::switchover(
            &mut status,
            Some(outcome.trigger),
            outcome.result,
            cluster.generation(),
        );
    }
    conditions::standard(cluster, &mut status, activity, problem);
    status
}

/// `status.proxy.pgBouncer`: the pgBouncers wanted, and those the `<c>-pgbouncer` Deployment
/// counts ready (none until it exists); nothing without `spec.proxy.pgBouncer`.
pub fn pooler(cluster: &PostgresCluster, deployments: &[Deployment]) -> Option<ProxyStatus> {
    let spec = &cluster.spec.proxy.as_ref()?.pg_bouncer;
    let name = Names::new(cluster.name(), cluster.namespace()).pgbouncer();
    let ready = deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(&name))
        .and_then(|d| d.status.as_ref()?.ready_replicas)
        .unwrap_or(0);
    Some(ProxyStatus {
        pg_bouncer: PgBouncerStatus {
            replicas: spec.replicas.unwrap_or(1),
            ready_replicas: ready,
            ..Default::default()
        },
    })
}

/// The status as it was (as read, or as the pass last recorded it), with the pass's error as
/// the Degraded condition.
pub fn degraded(
    cluster: &PostgresCluster,
    recorded: Option<&PostgresClusterStatus>,
    problem: &str,
) -> PostgresClusterStatus {
    let mut status = recorded
        .or(cluster.status.as_ref())
        .cloned()
        .unwrap_or_default();
    conditions::standard(cluster, &mut status, &Activity::default(), Some(problem));
    status
}

/// The status of `cluster` (as just read) with the switchover asked for by `trigger` in
/// progress: `status.patroni.switchover` says it is taken, so no later pass starts it again.
pub fn switchover_started(cluster: &PostgresCluster, trigger: &str) -> PostgresClusterStatus {
    let mut status = cluster.status.clone().unwrap_or_default();
    status
        .patroni
        .get_or_insert_with(Default::default)
        .switchover = Some(trigger.to_string());
    conditions::set(
        &mut status.conditions,
        conditions::SWITCHOVER,
        false,
        "InProgress",
        format!(
            "switching over ({}: {trigger})",
            annotations::TRIGGER_SWITCHOVER
        ),
        cluster.generation(),
    );
    status
}

/// `VolumeResize`: false, naming them, while volumes cannot grow as asked; once it was false,
/// true when they all can.
pub fn volume_resize(
    cluster: &PostgresCluster,
    status: &mut PostgresClusterStatus,
    refused: &[String],
) {
    let g = cluster.generation();
    let c = &mut status.conditions;
    if !refused.is_empty() {
        let message = refused.join("; ");
        conditions::set(
            c,
            conditions::VOLUME_RESIZE,
            false,
            "ExpansionNotAllowed",
            message,
            g,
        );
    } else if c.iter().any(|c| c.type_ == conditions::VOLUME_RESIZE) {
        let message = "every volume asks for the size the spec says";
        conditions::set(
            c,
            conditions::VOLUME_RESIZE,
            true,
            "AsRequested",
            message,
            g,
        );
    }
}
