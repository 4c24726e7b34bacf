//! `spec.databaseInitSQL` on Kubernetes (see `plan::init_sql`): the SQL runs once in a Job
//! `<c>-init-sql-<digest>` (created once the primary is ready and the users Job has made the
//! users and databases), and status follows that Job. The Job is the record of a run: a
//! succeeded one sets `status.databaseInitSQL`; a failed one holds PostgreSQL's message (its
//! pod's termination message) and is not run again until the ConfigMap's SQL, and with it the
//! digest and the Job's name, changes. A Job that failed without the SQL failing (its tries ran
//! out reaching the primary) is removed, and runs again. Removing the field from the spec
//! removes the Jobs, so that adding it again runs the SQL again, as in PGO.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;
use kube::runtime::events::EventType;
use kube::{Client, ResourceExt};

use super::names::{self, Names};
use super::objects::InitSql;
use super::proxy::Seen;
use super::status::{self, JobState, job_state};
use super::{KubeError, events};
use crate::api::{PostgresCluster, PostgresClusterStatus};
use crate::plan::init_sql::{self, Next};

/// Where the init SQL stands this pass.
#[derive(Debug)]
pub struct Check {
    pub next: Next,
    /// The Job to create.
    pub start: Option<InitSql>,
    /// PostgreSQL's message, or where a run stands (see `plan::init_sql::record`).
    pub detail: String,
}

/// `jobs` and `pods`: the cluster's. `ready`: the primary runs and the users exist.
pub async fn check(
    client: &Client,
    cluster: &PostgresCluster,
    jobs: &[Job],
    pods: &[Pod],
    ready: bool,
) -> Result<Check, KubeError> {
    let ran = cluster
        .status
        .as_ref()
        .and_then(|s| s.database_init_sql.as_deref());
    let config_map = match (&cluster.spec.database_init_sql, ran) {
        (Some(spec), None) => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), cluster.namespace());
            api.get_opt(&spec.name)
                .await
                .map_err(KubeError::api::<ConfigMap>(
                    "get",
                    cluster.namespace(),
                    &spec.name,
                ))?
        }
        _ => None,
    };
    let next = init_sql::next(cluster, ran, None, config_map.as_ref());
    let (Next::Run { digest, .. }, Some(spec)) = (&next, &cluster.spec.database_init_sql) else {
        return Ok(Check {
            next,
            start: None,
            detail: String::new(),
        });
    };
    let name = Names::new(cluster.name(), cluster.namespace()).init_sql_job(digest);
    let job = jobs.iter().find(|j| j.name_any() == name);
    let running = format!("running in Job {name}");
    let (next, start, detail) = match job.map(|j| (job_state(j), sql_error(j))) {
        Some((JobState::Succeeded, _)) => (Next::Done, None, String::new()),
        Some((JobState::Failed, true)) => (Next::Failed, None, message(pods, digest, &name)),
        // It did not get through (the primary unreachable): the Job goes, and comes again.
        Some((JobState::Failed, false)) => {
            let why = message(pods, digest, &name);
            let detail = format!("did not get through, trying again: {why}");
            (next, None, detail)
        }
        Some((JobState::Running, _)) => (next, None, running),
        None if ready => {
            let start = InitSql {
                config_map: spec.name.clone(),
                key: spec.key.clone(),
                digest: digest.clone(),
            };
            (next, Some(start), running)
        }
        None => (next, None, "runs once the cluster is ready".into()),
    };
    Ok(Check {
        next,
        start,
        detail,
    })
}

/// Whether psql found an error in the SQL: the Job failed by its pod failure policy (exit code
/// 3), not because its tries ran out.
fn sql_error(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "Failed"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("PodFailurePolicy")
            })
        })
}

/// Whether an init SQL Job is no longer wanted: the spec names no init SQL (adding it again
/// runs it again, as in PGO), or the Job failed without the SQL failing (it runs again).
pub fn prunable(cluster: &PostgresCluster, job: &Job) -> bool {
    cluster.spec.database_init_sql.is_none()
        || (job_state(job) == JobState::Failed && !sql_error(job))
}

/// Whether the primary runs and the users Job made the users and databases (init SQL may
/// `\c` to them).
pub fn ready(seen: &Seen, jobs: &[Job]) -> bool {
    let primary = seen
        .leader
        .as_deref()
        .and_then(|l| seen.instance(l))
        .is_some_and(|i| i.ready);
    let mut users = jobs
        .iter()
        .filter(|j| j.labels().get(names::COMPONENT).map(String::as_str) == Some("users"))
        .peekable();
    primary && users.peek().is_some() && users.all(|j| job_state(j) == JobState::Succeeded)
}

/// psql's message from the failed run's pod (its termination message), newest pod first.
fn message(pods: &[Pod], digest: &str, job: &str) -> String {
    status::last_words(
        pods.iter()
            .filter(|p| p.labels().get(names::INIT_SQL_DIGEST).map(String::as_str) == Some(digest)),
    )
    .unwrap_or_else(|| format!("see `kubectl logs job/{job}`"))
}

/// Record the check in status; when the outcome is new (it ran, or failed with a new message),
/// say so in an Event too.
pub async fn record(
    client: &Client,
    cluster: &PostgresCluster,
    status: &mut PostgresClusterStatus,
    check: &Check,
) {
    init_sql::record(cluster, status, &check.next, &check.detail);
    let before = cluster
        .status
        .as_ref()
        .and_then(|s| s.condition(init_sql::CONDITION));
    let Some(now) = status.condition(init_sql::CONDITION) else {
        return;
    };
    let (type_, reason) = match now.reason.as_str() {
        "Succeeded" => (EventType::Normal, "DatabaseInitSQL"),
        "DatabaseInitSQLFailed" => (EventType::Warning, "DatabaseInitSQLFailed"),
        _ => return,
    };
    if before.is_some_and(|b| (&b.reason, &b.message) == (&now.reason, &now.message)) {
        return;
    }
    events::publish(
        client,
        cluster,
        type_,
        reason,
        "DatabaseInitSQL",
        &now.message,
    )
    .await;
}
