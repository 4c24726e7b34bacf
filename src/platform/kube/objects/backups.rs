//! pgBackRest: its configuration (one file for the instances, one for the repository host), a
//! repository host `<c>-repo-host` holding the `volume` repositories on their own volumes, a Job
//! that creates the stanza and takes the first full backup, a CronJob per schedule, and a Job
//! per manual backup (`pgdeck.dev/pgbackrest-backup`).
//! Backups run in the repository host (or, without one, the primary), as pgBackRest requires:
//! the Jobs start them there with `kubectl exec`, as PGO's do.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EmptyDirVolumeSource, EnvVar, PersistentVolumeClaim, PodTemplateSpec,
    ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::instances::{PgbackrestFiles, pgbackrest_files};
use super::pods::{self, Placement, Script, mount, mount_ro, plain_env, port, tcp_probe};
use super::tls::PGBACKREST_CN;
use super::{Ctx, Instance, PGBACKREST_PORT, REPO_INFO_FILE, REPO_INFO_PORT, paths};
use crate::api::backups::Repo;
use crate::api::users::SUPERUSER;
use crate::api::{annotations, validate};
use crate::plan::dynamic::STANZA;
use crate::plan::pgbackrest::{self, Layout, PgAt, Remote, TlsFiles, TlsServer, shell_quote};
use crate::plan::standby;
use crate::plan::standby_lag::{RECEIVER_FILE, RECEIVER_SQL};
use crate::platform::kube::names;

pub struct Parts {
    pub config: ConfigMap,
    pub volumes: Vec<PersistentVolumeClaim>,
    pub repo_host: Option<StatefulSet>,
    pub initial_backup: Option<Job>,
    pub manual_backup: Option<Job>,
    pub schedules: Vec<CronJob>,
}

/// A manual backup, as `spec.backups.pgbackrest.manual` asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualBackup {
    /// The trigger annotation's value it answers.
    pub trigger: String,
    pub repo: String,
    /// `pgbackrest backup` options, `--type` among them.
    pub options: Vec<String>,
}

/// Everything for the cluster's backups; nothing when it has no repository.
pub fn render(ctx: &Ctx) -> Option<Parts> {
    let repos = ctx.cluster.repos();
    let first = repos.first()?;
    let volume_repos: Vec<&Repo> = repos.iter().filter(|r| r.volume.is_some()).collect();
    let config = ConfigMap {
        metadata: ctx.meta(ctx.names.pgbackrest_config(), ctx.labels()),
        data: Some(BTreeMap::from([
            ("instance.conf".to_string(), instance_conf(ctx)),
            ("repo-host.conf".to_string(), repo_host_conf(ctx)),
        ])),
        ..Default::default()
    };
    // An adopted repository volume is the DBA's, made before the cluster: never rendered.
    let volumes = volume_repos
        .iter()
        .filter(|r| adopted_repo(ctx, r).is_none())
        .map(|r| PersistentVolumeClaim {
            metadata: ctx.volume_meta(
                ctx.names.repo_volume(&r.name),
                ctx.labels_with(&[(names::COMPONENT, "repo-host"), (names::REPO, &r.name)]),
                ctx.keeps(annotations::KEEP_BACKUPS),
            ),
            spec: r.volume.as_ref().map(|v| v.volume_claim_spec.0.clone()),
            ..Default::default()
        })
        .collect();
    let repo_host = (!volume_repos.is_empty()).then(|| repo_host(ctx, &volume_repos));
    let initial_backup = (!ctx.inputs.initial_backup_done).then(|| Job {
        metadata: ctx.meta(
            ctx.names.initial_backup(),
            ctx.labels_with(&[(names::COMPONENT, "backup")]),
        ),
        spec: Some(job_spec(ctx, &first.name, &type_option("full"), true)),
        ..Default::default()
    });
    let manual_backup = ctx.inputs.manual_backup.as_ref().map(|m| Job {
        metadata: ctx.meta(
            ctx.names.manual_backup(&m.trigger),
            ctx.labels_with(&[(names::COMPONENT, "backup"), (names::REPO, &m.repo)]),
        ),
        spec: Some(job_spec(ctx, &m.repo, &m.options, false)),
        ..Default::default()
    });
    let schedules = repos
        .iter()
        .flat_map(|r| {
            r.schedules
                .iter()
                .flat_map(|s| s.entries())
                .map(move |(kind, cron)| (r, kind, cron))
        })
        .map(|(repo, kind, cron)| {
            let labels =
                ctx.labels_with(&[(names::COMPONENT, "backup"), (names::REPO, &repo.name)]);
            CronJob {
                metadata: ctx.meta(ctx.names.scheduled_backup(&repo.name, kind), labels),
                spec: Some(CronJobSpec {
                    schedule: cron.to_string(),
                    // A backup still running when the next is due: the next waits its turn.
                    concurrency_policy: Some("Forbid".into()),
                    job_template: JobTemplateSpec {
                        spec: Some(job_spec(ctx, &repo.name, &type_option(kind), false)),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    Some(Parts {
        config,
        volumes,
        repo_host,
        initial_backup,
        manual_backup,
        schedules,
    })
}

fn type_option(kind: &str) -> Vec<String> {
    vec![format!("--type={kind}")]
}

fn tls_files() -> TlsFiles {
    tls_in(paths::PGBACKREST_TLS)
}

/// The CA, certificate and key a TLS Secret mounted at `dir` holds.
pub(super) fn tls_in(dir: &str) -> TlsFiles {
    TlsFiles {
        ca_file: format!("{dir}/ca.crt"),
        cert_file: format!("{dir}/tls.crt"),
        key_file: format!("{dir}/tls.key"),
    }
}

/// Where pgBackRest finds an instance's data, logs and locks, in the instance's own pod; no
/// repository yet.
pub(super) fn instance_layout(ctx: &Ctx) -> Layout {
    Layout {
        repo_paths: Default::default(),
        repo_host: None,
        log_path: format!("{}/pgbackrest/log", paths::DATA),
        lock_path: format!("{}/pgbackrest", paths::TMP),
        spool_path: format!("{}/pgbackrest/spool", paths::DATA),
        pg: vec![PgAt {
            path: paths::data_dir(ctx.cluster.spec.postgres_version),
            port: ctx.cluster.port(),
            socket: paths::TMP.into(),
            host: None,
        }],
        tls_server: None,
    }
}

fn repo_paths(ctx: &Ctx) -> BTreeMap<String, String> {
    ctx.cluster
        .repos()
        .iter()
        .filter(|r| r.volume.is_some())
        .map(|r| (r.name.clone(), paths::repo(&r.name)))
        .collect()
}

/// An instance's `pgbackrest.conf`: its own data, and the repository host for `volume` repos.
fn instance_conf(ctx: &Ctx) -> String {
    let paths_of = repo_paths(ctx);
    let remote = !paths_of.is_empty();
    pgbackrest::render(
        ctx.cluster,
        &Layout {
            repo_host: remote.then(|| Remote {
                host: ctx.names.repo_host_dns(),
                tls: tls_files(),
            }),
            repo_paths: paths_of,
            tls_server: remote.then(|| TlsServer {
                tls: tls_files(),
                client_cn: PGBACKREST_CN.into(),
            }),
            ..instance_layout(ctx)
        },
    )
}

/// The repository host's `pgbackrest.conf`: the repositories on its volumes, and every
/// instance (pgBackRest finds the primary among them).
fn repo_host_conf(ctx: &Ctx) -> String {
    let paths_of = repo_paths(ctx);
    let v = ctx.cluster.spec.postgres_version;
    let log_dir = paths_of
        .values()
        .next()
        .map(|p| format!("{p}/log"))
        .unwrap_or_else(|| format!("{}/pgbackrest/log", paths::TMP));
    pgbackrest::render(
        ctx.cluster,
        &Layout {
            repo_paths: paths_of,
            repo_host: None,
            log_path: log_dir,
            lock_path: format!("{}/pgbackrest", paths::TMP),
            spool_path: format!("{}/pgbackrest/spool", paths::TMP),
            pg: by_name(&ctx.inputs.instances)
                .into_iter()
                .map(|i| PgAt {
                    path: paths::data_dir(v),
                    port: ctx.cluster.port(),
                    socket: paths::TMP.into(),
                    host: Some(Remote {
                        host: ctx.names.pod_host(&i.name),
                        tls: tls_files(),
                    }),
                })
                .collect(),
            tls_server: Some(TlsServer {
                tls: tls_files(),
                client_cn: PGBACKREST_CN.into(),
            }),
        },
    )
}

/// Instances in name order: the order of `pgN-host` must not change from one pass to the next.
fn by_name(instances: &[Instance]) -> Vec<&Instance> {
    let mut out: Vec<&Instance> = instances.iter().collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn repo_host(ctx: &Ctx, repos: &[&Repo]) -> StatefulSet {
    let pgbackrest = ctx.pgbackrest();
    let host = pgbackrest.repo_host.clone().unwrap_or_default();
    let labels = ctx.labels_with(&[(names::COMPONENT, "repo-host")]);
    let files = pgbackrest_files(ctx, "repo-host.conf");
    let mut server = Container {
        env: Some(files.env.clone()),
        ports: Some(vec![port("pgbackrest", PGBACKREST_PORT)]),
        readiness_probe: Some(tcp_probe(PGBACKREST_PORT)),
        resources: host.resources.clone(),
        ..pods::container(
            ctx,
            "pgbackrest",
            vec!["pgbackrest".into(), "server".into()],
        )
    };
    let mut info = info_container(ctx, files.env.clone(), &[refresh_info()], 30);
    let mounts = server.volume_mounts.get_or_insert_with(Default::default);
    mounts.extend(files.mounts.clone());
    let info_mounts = info.volume_mounts.get_or_insert_with(Default::default);
    info_mounts.extend(files.mounts);
    info_mounts.push(mount("info", paths::REPO_INFO));
    let mut volumes = files.volumes;
    volumes.push(Volume {
        name: "info".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    for r in repos {
        mounts.push(mount(&r.name, &paths::repo(&r.name)));
        info_mounts.push(mount_ro(&r.name, &paths::repo(&r.name)));
        let claim = adopted_repo(ctx, r).unwrap_or_else(|| ctx.names.repo_volume(&r.name));
        volumes.push(pods::claim(&r.name, claim));
    }
    let template = pods::template(ctx, pgbackrest.metadata.as_ref(), &labels);
    pods::stateful_set(
        ctx,
        ctx.names.repo_host(),
        labels,
        &[names::CLUSTER, names::COMPONENT],
        true,
        PodTemplateSpec {
            metadata: Some(template),
            // No API access: the repository host needs none.
            spec: Some(pods::pod(
                ctx,
                vec![server, info],
                volumes,
                None,
                Placement {
                    affinity: host.affinity,
                    tolerations: host.tolerations,
                    topology_spread_constraints: host.topology_spread_constraints,
                    priority_class_name: host.priority_class_name,
                },
            )),
        },
    )
}

/// The volume adopted for `repo` (`spec.dataSource.volumes.pgBackRestVolume`): the first
/// repository's, as PGO takes it.
fn adopted_repo(ctx: &Ctx, repo: &Repo) -> Option<String> {
    let first = ctx.cluster.repos().first()?.name.clone();
    (repo.name == first)
        .then(|| ctx.inputs.adopted.as_ref()?.repo.clone())
        .flatten()
}

/// The shell command that writes `pgbackrest info --output=json` to the file the repository
/// host serves, atomically (a reader never sees half of it). No log file: it runs often.
fn refresh_info() -> String {
    let dir = paths::REPO_INFO;
    format!(
        "pgbackrest --stanza={STANZA} --output=json --log-level-file=off info \
         > {dir}/.{REPO_INFO_FILE}.new && mv -f {dir}/.{REPO_INFO_FILE}.new {dir}/{REPO_INFO_FILE}"
    )
}

/// `refresh` of a cluster's cloud repositories, run by its primary only: the operator reads the
/// leader's, and each run is a listing of the bucket, which costs. A replica drops what it served
/// as a primary, so that after a switchover none serves stale backups; one that cannot say what
/// it is keeps what it had. A standby cluster's leader is in recovery too: all of them refresh.
fn primary_only(ctx: &Ctx, refresh: String) -> String {
    if standby::wanted(ctx.cluster.spec.standby.as_ref()) {
        return refresh;
    }
    let dir = paths::REPO_INFO;
    format!(
        "case \"$(timeout 10 psql -XAtq -U {SUPERUSER} -d postgres -c 'select pg_is_in_recovery()')\" in\n\
         f) {refresh} ;;\n\
         t) rm -f {dir}/{REPO_INFO_FILE} ;;\n\
         esac"
    )
}

/// An `info` container: every `period` seconds (and when a backup Job asks, see
/// [`backup_script`]) it runs each `refresh` command, which writes a file under
/// `paths::REPO_INFO` atomically, and serves them over HTTP for the operator, which reads them
/// through the API server's pod proxy. Python is in the image for Patroni.
fn info_container(ctx: &Ctx, mut env: Vec<EnvVar>, refresh: &[String], period: u32) -> Container {
    env.push(plain_env("HOME", paths::TMP));
    env.push(plain_env("PYTHONDONTWRITEBYTECODE", "1"));
    let refresh: String = refresh.iter().map(|r| format!("{r} || true\n")).collect();
    let script = format!(
        "python3 -m http.server {REPO_INFO_PORT} --bind 0.0.0.0 --directory {dir} &\n\
         server=$!\n\
         trap 'kill $server; exit 0' TERM INT\n\
         while kill -0 $server 2>/dev/null; do\n\
         {refresh}\
         sleep {period} & wait $!\n\
         done\n\
         exit 1\n",
        dir = paths::REPO_INFO,
    );
    let small = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
        ])
    };
    Container {
        env: Some(env),
        ports: Some(vec![port("info", REPO_INFO_PORT)]),
        readiness_probe: Some(tcp_probe(REPO_INFO_PORT)),
        resources: Some(ResourceRequirements {
            requests: Some(small("10m", "32Mi")),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("128Mi".into()),
            )])),
            ..Default::default()
        }),
        ..pods::container(ctx, "info", vec!["bash".into(), "-c".into(), script])
    }
}

/// The `info` container of an instance's pod, when `validate::instance_info` says it has one:
/// a standby's WAL receiver, read as the superuser through the socket (how far behind it is,
/// see `plan::standby_lag`), and without a repository host what pgBackRest says of the
/// repositories (`pgbackrest`: its files), with the volume it writes to. `env` is the
/// instance's `PG*` (where its socket is).
pub(super) fn instance_info(
    ctx: &Ctx,
    env: Vec<EnvVar>,
    pgbackrest: Option<PgbackrestFiles>,
) -> Option<(Container, Volume)> {
    if !validate::instance_info(ctx.cluster) {
        return None;
    }
    let mut refresh = Vec::new();
    let mut env = env;
    let mut mounts = vec![mount("info", paths::REPO_INFO)];
    if standby::reported(ctx.cluster.spec.standby.as_ref()) {
        let dir = paths::REPO_INFO;
        // A hung database never holds the loop: what was served stays, and ages (the
        // operator reads when it was sampled).
        refresh.push(format!(
            "timeout 10 psql -XAtq -U {SUPERUSER} -d postgres -c {sql} > {dir}/.{RECEIVER_FILE}.new \
             && mv -f {dir}/.{RECEIVER_FILE}.new {dir}/{RECEIVER_FILE}",
            sql = shell_quote(RECEIVER_SQL),
        ));
    }
    if let Some(files) =
        pgbackrest.filter(|_| ctx.cluster.repos().iter().all(|r| r.volume.is_none()))
    {
        refresh.push(primary_only(ctx, format!("timeout 60 {}", refresh_info())));
        env.extend(files.env);
        mounts.extend(files.mounts);
    }
    let mut info = Container {
        // Never what makes the instance's pod unready.
        readiness_probe: None,
        ..info_container(ctx, env, &refresh, 15)
    };
    info.volume_mounts
        .get_or_insert_with(Default::default)
        .extend(mounts);
    let volume = Volume {
        name: "info".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    Some((info, volume))
}

/// A Job that runs a backup into `repo` with `options` (`--type=full`, ...), creating the
/// stanza first when `create_stanza`.
fn job_spec(ctx: &Ctx, repo: &str, options: &[String], create_stanza: bool) -> JobSpec {
    let jobs = ctx.pgbackrest().jobs.unwrap_or_default();
    let script = Script {
        container: "pgbackrest",
        script: backup_script(ctx, repo, options, create_stanza),
        env: Vec::new(),
        resources: jobs.resources,
    };
    let placement = Placement {
        affinity: jobs.affinity,
        tolerations: jobs.tolerations,
        priority_class_name: jobs.priority_class_name,
        ..Default::default()
    };
    JobSpec {
        // The first backup's Job stays as the record that it ran.
        ttl_seconds_after_finished: jobs.ttl_seconds_after_finished.filter(|_| !create_stanza),
        ..pods::script_job(
            ctx,
            ctx.labels_with(&[(names::COMPONENT, "backup")]),
            script,
            Some(ctx.names.pgbackrest_account()),
            placement,
        )
    }
}

/// The Job's shell script: wait for the primary (and the repository host), then run
/// pgBackRest where the repository is.
fn backup_script(ctx: &Ctx, repo: &str, options: &[String], create_stanza: bool) -> String {
    let ns = ctx.cluster.namespace();
    let primary = format!(
        "{}={},{}={}",
        names::CLUSTER,
        ctx.cluster.name(),
        names::ROLE,
        names::ROLE_PRIMARY
    );
    let remote = ctx.cluster.repos().iter().any(|r| r.volume.is_some());
    let (target, container) = if remote {
        (
            format!("pod/{}", names::pod(&ctx.names.repo_host())),
            "pgbackrest",
        )
    } else {
        ("$(primary)".to_string(), "database")
    };
    let key = repo.trim_start_matches("repo");
    let mut script = format!(
        "primary() {{ kubectl get pod --namespace {ns} --selector {primary} --output name; }}\n\
         for _ in $(seq 120); do [ -n \"$(primary)\" ] && break; sleep 5; done\n\
         kubectl wait --namespace {ns} --for=condition=Ready --timeout=600s \"$(primary)\"\n\
         target=\"{target}\"\n\
         kubectl wait --namespace {ns} --for=condition=Ready --timeout=600s \"$target\"\n\
         run() {{ kubectl exec --namespace {ns} \"$target\" --container {container} -- pgbackrest --stanza={STANZA} \"$@\"; }}\n"
    );
    if create_stanza {
        script.push_str("run stanza-create\n");
    }
    let options: Vec<String> = options.iter().map(|o| shell_quote(o)).collect();
    script.push_str(&format!("run --repo={key} {} backup\n", options.join(" ")));
    // The info of where the backup ran (the repository host, or the primary without one)
    // now, not at its next look: status lists the backup when the Job is seen to finish. Best
    // effort: the backup is taken either way.
    script.push_str(&format!(
        "kubectl exec --namespace {ns} \"$target\" --container info -- bash -c {} || true\n",
        shell_quote(&refresh_info())
    ));
    script
}
