//! `spec.databaseInitSQL` (see `plan::init_sql`): a Job `<c>-init-sql-<digest>` that runs the
//! ConfigMap's SQL on the primary with psql, as the superuser, in the `postgres` database, as
//! the users Job signs in. The SQL is mounted from the ConfigMap at a fixed path: neither its
//! name, key nor text reaches the script. psql stops at the first error (`ON_ERROR_STOP`, exit
//! code 3): that fails the Job at once (no retry: the same SQL would fail the same way) and its
//! message becomes the pod's termination message, for the operator to record. Any other failure
//! (the primary unreachable) is retried as usual.

use k8s_openapi::api::batch::v1::{
    Job, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, KeyToPath, Volume};

use super::pods::{self, Placement, Script};
use super::{Ctx, users};
use crate::platform::kube::names;

/// The init SQL to run: where it is, and its digest (see `plan::init_sql::digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSql {
    pub config_map: String,
    pub key: String,
    pub digest: String,
}

/// psql's exit code for an error in the script under `ON_ERROR_STOP`.
const SCRIPT_ERROR: i32 = 3;
const DIR: &str = "/pgdeck/init-sql";
const FILE: &str = "init.sql";

pub fn render(ctx: &Ctx, sql: &InitSql) -> Job {
    let labels = ctx.labels_with(&[
        (names::COMPONENT, names::INIT_SQL),
        (names::INIT_SQL_DIGEST, &sql.digest),
    ]);
    let script = Script {
        container: "psql",
        script: format!(
            "for _ in $(seq 120); do pg_isready --quiet && break; sleep 5; done\n\
             psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --output=/dev/null --file={DIR}/{FILE}\n"
        ),
        env: users::superuser_env(ctx),
        resources: None,
    };
    let mut spec = pods::script_job(ctx, labels.clone(), script, None, Placement::default());
    spec.pod_failure_policy = Some(PodFailurePolicy {
        rules: vec![PodFailurePolicyRule {
            action: "FailJob".into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: Some("psql".into()),
                operator: "In".into(),
                values: vec![SCRIPT_ERROR],
            }),
            on_pod_conditions: None,
        }],
    });
    let pod = spec.template.spec.as_mut().expect("a script job has a pod");
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: "init-sql".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: sql.config_map.clone(),
            items: Some(vec![KeyToPath {
                key: sql.key.clone(),
                path: FILE.into(),
                mode: None,
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    let container = &mut pod.containers[0];
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(pods::mount_ro("init-sql", DIR));
    // psql's error, as the pod's status reports it to the operator.
    container.termination_message_policy = Some("FallbackToLogsOnError".into());
    Job {
        metadata: ctx.meta(ctx.names.init_sql_job(&sql.digest), labels),
        spec: Some(spec),
        ..Default::default()
    }
}
