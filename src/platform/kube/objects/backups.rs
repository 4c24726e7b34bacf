//! pgBackRest: its configuration (one file for the instances, one for the repository host), a
//! repository host `<c>-repo-host` holding the `volume` repositories on their own volumes, a Job
//! that creates the stanza and takes the first full backup, and a CronJob per schedule.
//! Backups run in the repository host (or, without one, the primary), as pgBackRest requires:
//! the Jobs start them there with `kubectl exec`, as PGO's do.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EmptyDirVolumeSource, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::instances::{
    mount, mount_ro, pgbackrest_volume, plain_env, pod_security, port, restricted, tcp_probe,
};
use super::tls::PGBACKREST_CN;
use super::{Ctx, PGBACKREST_PORT, paths, user_metadata};
use crate::api::backups::Repo;
use crate::plan::dynamic::STANZA;
use crate::plan::pgbackrest::{self, Layout, PgAt, Remote, TlsFiles, TlsServer};
use crate::platform::kube::names;

pub struct Parts {
    pub config: ConfigMap,
    pub volumes: Vec<PersistentVolumeClaim>,
    pub repo_host: Option<StatefulSet>,
    pub initial_backup: Option<Job>,
    pub schedules: Vec<CronJob>,
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
    let volumes = volume_repos
        .iter()
        .map(|r| PersistentVolumeClaim {
            metadata: ctx.meta(
                ctx.names.repo_volume(&r.name),
                ctx.labels_with(&[(names::COMPONENT, "repo-host"), (names::REPO, &r.name)]),
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
        spec: Some(job_spec(ctx, &first.name, "full", true)),
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
                        spec: Some(job_spec(ctx, &repo.name, kind, false)),
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
        schedules,
    })
}

fn tls_files() -> TlsFiles {
    TlsFiles {
        ca_file: format!("{}/ca.crt", paths::PGBACKREST_TLS),
        cert_file: format!("{}/tls.crt", paths::PGBACKREST_TLS),
        key_file: format!("{}/tls.key", paths::PGBACKREST_TLS),
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
    let v = ctx.cluster.spec.postgres_version;
    pgbackrest::render(
        ctx.cluster,
        &Layout {
            repo_host: remote.then(|| Remote {
                host: ctx.names.repo_host_host(),
                tls: tls_files(),
            }),
            repo_paths: paths_of,
            log_path: format!("{}/pgbackrest/log", paths::DATA),
            lock_path: format!("{}/pgbackrest", paths::TMP),
            spool_path: format!("{}/pgbackrest/spool", paths::DATA),
            pg: vec![PgAt {
                path: paths::data_dir(v),
                port: ctx.cluster.port(),
                socket: paths::TMP.into(),
                host: None,
            }],
            tls_server: remote.then(|| TlsServer {
                tls: tls_files(),
                client_cn: PGBACKREST_CN.into(),
            }),
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
            pg: ctx
                .inputs
                .instances
                .iter()
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

fn repo_host(ctx: &Ctx, repos: &[&Repo]) -> StatefulSet {
    let pgbackrest = ctx
        .cluster
        .spec
        .backups
        .as_ref()
        .map(|b| b.pgbackrest.clone())
        .unwrap_or_default();
    let host = pgbackrest.repo_host.clone().unwrap_or_default();
    let labels = ctx.labels_with(&[(names::COMPONENT, "repo-host")]);
    let (user_labels, annotations) = user_metadata(pgbackrest.metadata.as_ref());
    let mut pod_labels = user_metadata(ctx.cluster.spec.metadata.as_ref()).0;
    pod_labels.extend(user_labels);
    pod_labels.extend(labels.clone());
    let mut mounts = vec![
        mount_ro("pgbackrest-config", paths::PGBACKREST_CONFIG_DIR),
        mount("tmp", paths::TMP),
    ];
    let mut volumes = vec![pgbackrest_volume(ctx, "repo-host.conf"), tmp_volume()];
    for r in repos {
        mounts.push(mount(&r.name, &paths::repo(&r.name)));
        volumes.push(Volume {
            name: r.name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: ctx.names.repo_volume(&r.name),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let selector: BTreeMap<String, String> = [names::CLUSTER, names::COMPONENT]
        .iter()
        .map(|k| (k.to_string(), labels[*k].clone()))
        .collect();
    StatefulSet {
        metadata: ctx.meta(ctx.names.repo_host(), labels),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(ctx.names.pods()),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "pgbackrest".into(),
                        image: Some(ctx.image()),
                        image_pull_policy: ctx.pull_policy(),
                        command: Some(vec!["pgbackrest".into(), "server".into()]),
                        env: Some(vec![plain_env(
                            "PGBACKREST_CONFIG",
                            paths::PGBACKREST_CONFIG,
                        )]),
                        ports: Some(vec![port("pgbackrest", PGBACKREST_PORT)]),
                        readiness_probe: Some(tcp_probe(PGBACKREST_PORT)),
                        resources: host.resources.clone(),
                        security_context: Some(restricted()),
                        volume_mounts: Some(mounts),
                        ..Default::default()
                    }],
                    volumes: Some(volumes),
                    enable_service_links: Some(false),
                    // No API access: the repository host needs none.
                    automount_service_account_token: Some(false),
                    security_context: Some(pod_security(
                        ctx.cluster.spec.supplemental_groups.clone(),
                    )),
                    affinity: host.affinity.clone(),
                    tolerations: host.tolerations.clone(),
                    topology_spread_constraints: host.topology_spread_constraints.clone(),
                    priority_class_name: host.priority_class_name.clone(),
                    image_pull_secrets: ctx.cluster.spec.image_pull_secrets.clone(),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tmp_volume() -> Volume {
    Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// A Job that runs a `kind` backup (`full`, `diff`, `incr`) into `repo`, creating the stanza
/// first when `create_stanza`.
fn job_spec(ctx: &Ctx, repo: &str, kind: &str, create_stanza: bool) -> JobSpec {
    let jobs = ctx
        .cluster
        .spec
        .backups
        .as_ref()
        .and_then(|b| b.pgbackrest.jobs.clone())
        .unwrap_or_default();
    let labels = ctx.labels_with(&[(names::COMPONENT, "backup")]);
    JobSpec {
        backoff_limit: Some(6),
        ttl_seconds_after_finished: jobs.ttl_seconds_after_finished.filter(|_| !create_stanza),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "pgbackrest".into(),
                    image: Some(ctx.image()),
                    image_pull_policy: ctx.pull_policy(),
                    command: Some(vec![
                        "bash".into(),
                        "-ceu".into(),
                        backup_script(ctx, repo, kind, create_stanza),
                    ]),
                    env: Some(vec![plain_env("HOME", paths::TMP)]),
                    resources: jobs.resources.clone(),
                    security_context: Some(restricted()),
                    volume_mounts: Some(vec![mount("tmp", paths::TMP)]),
                    ..Default::default()
                }],
                volumes: Some(vec![tmp_volume()]),
                restart_policy: Some("Never".into()),
                service_account_name: Some(ctx.names.pgbackrest_account()),
                enable_service_links: Some(false),
                security_context: Some(pod_security(None)),
                affinity: jobs.affinity.clone(),
                tolerations: jobs.tolerations.clone(),
                priority_class_name: jobs.priority_class_name.clone(),
                image_pull_secrets: ctx.cluster.spec.image_pull_secrets.clone(),
                ..Default::default()
            }),
        },
        ..Default::default()
    }
}

/// The Job's shell script: wait for the primary (and the repository host), then run
/// pgBackRest where the repository is.
fn backup_script(ctx: &Ctx, repo: &str, kind: &str, create_stanza: bool) -> String {
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
    script.push_str(&format!("run --repo={key} --type={kind} backup\n"));
    script
}
