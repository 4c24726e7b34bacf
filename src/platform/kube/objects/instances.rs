//! One instance: a StatefulSet of one pod running Patroni (and, with a repository host,
//! pgBackRest's TLS server beside it), its volumes, and its Patroni configuration in a ConfigMap.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapProjection, ConfigMapVolumeSource, Container,
    ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PodAffinityTerm,
    PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource,
    SecretKeySelector, SecretProjection, SecurityContext, TCPSocketAction, Volume, VolumeMount,
    VolumeProjection, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::{Ctx, PGBACKREST_PORT, POSTGRES_UID, paths, user_metadata};
use crate::api::instances::{InstanceSet, set_name};
use crate::plan::patroni::{self, Credentials, Dcs, Placement};
use crate::platform::kube::names;

/// An instance to run: `<cluster>-<set>-<suffix>`, in set `set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub set: String,
}

pub struct Parts {
    pub config: ConfigMap,
    pub volumes: Vec<PersistentVolumeClaim>,
    pub stateful_set: StatefulSet,
}

const PATRONI_FILE: &str = "patroni.yml";

pub fn render(ctx: &Ctx, instance: &Instance) -> Parts {
    let set = ctx
        .cluster
        .spec
        .instances
        .iter()
        .enumerate()
        .find(|(i, s)| set_name(s, *i) == instance.set)
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let labels = ctx.labels_with(&[
        (names::INSTANCE_SET, &instance.set),
        (names::INSTANCE, &instance.name),
        (names::COMPONENT, "instance"),
    ]);
    let config = patroni_config(ctx, instance, &set);
    let config_text = serde_json::to_string_pretty(&config).expect("a JSON value serializes");
    let mut volumes = vec![PersistentVolumeClaim {
        metadata: ctx.meta(names::data_volume(&instance.name), labels.clone()),
        spec: Some(set.data_volume_claim_spec.0.clone()),
        ..Default::default()
    }];
    if let Some(wal) = &set.wal_volume_claim_spec {
        volumes.push(PersistentVolumeClaim {
            metadata: ctx.meta(names::wal_volume(&instance.name), labels.clone()),
            spec: Some(wal.0.clone()),
            ..Default::default()
        });
    }
    Parts {
        config: ConfigMap {
            metadata: ctx.meta(names::config(&instance.name), labels.clone()),
            // JSON is YAML to Patroni, and quotes every string: PyYAML would read a bare `on`
            // as a boolean.
            data: Some(BTreeMap::from([(
                PATRONI_FILE.to_string(),
                config_text + "\n",
            )])),
            ..Default::default()
        },
        volumes,
        stateful_set: stateful_set(ctx, instance, &set, labels, &config),
    }
}

/// Patroni's configuration, rendered as on every platform, with what Kubernetes adds:
/// passwords from the environment, TLS, and the WAL volume.
fn patroni_config(ctx: &Ctx, instance: &Instance, set: &InstanceSet) -> Value {
    let c = ctx.cluster;
    let v = c.spec.postgres_version;
    let placement = Placement {
        dcs: Dcs::Kubernetes {
            namespace: c.namespace().to_string(),
            cluster: c.name().to_string(),
        },
        data_dir: paths::data_dir(v),
        bin_dir: paths::bin_dir(v),
        pgpass: format!("{}/pgpass", paths::TMP),
        socket_dir: paths::TMP.into(),
        listen_host: "0.0.0.0".into(),
        connect_host: ctx.names.pod_host(&instance.name),
        pg_port: c.port(),
        api_port: patroni_port(ctx),
        // Any client may try; each must still present a password (scram-sha-256).
        client_networks: vec!["0.0.0.0/0".into(), "::/0".into()],
        restore: None,
    };
    let credentials = Credentials {
        superuser: String::new(),
        replication: String::new(),
    };
    let member = names::pod(&instance.name);
    let mut config = patroni::render(c, set, &member, &placement, &credentials);
    let pg = &mut config["postgresql"];
    // Passwords come from the Secrets, through PATRONI_*_PASSWORD: a ConfigMap holds none.
    for who in ["superuser", "replication", "rewind"] {
        if let Some(auth) = pg["authentication"][who].as_object_mut() {
            auth.remove("password");
        }
    }
    let server = paths::SERVER_TLS;
    let parameters = pg["parameters"]
        .as_object_mut()
        .expect("rendered as an object");
    parameters.insert("ssl".into(), "on".into());
    parameters.insert("ssl_cert_file".into(), format!("{server}/tls.crt").into());
    parameters.insert("ssl_key_file".into(), format!("{server}/tls.key").into());
    parameters.insert("ssl_ca_file".into(), format!("{server}/ca.crt").into());
    let replication = paths::REPLICATION_TLS;
    if let Some(auth) = pg["authentication"]["replication"].as_object_mut() {
        auth.insert("sslmode".into(), "verify-ca".into());
        auth.insert("sslrootcert".into(), format!("{server}/ca.crt").into());
        auth.insert("sslcert".into(), format!("{replication}/tls.crt").into());
        auth.insert("sslkey".into(), format!("{replication}/tls.key").into());
    }
    if set.wal_volume_claim_spec.is_some()
        && let Some(initdb) = config["bootstrap"]["initdb"].as_array_mut()
    {
        initdb.push(json!({ "waldir": paths::wal_dir(v) }));
    }
    config
}

fn patroni_port(ctx: &Ctx) -> i32 {
    ctx.cluster
        .patroni()
        .port
        .unwrap_or(crate::api::patroni::DEFAULT_PATRONI_PORT)
}

fn stateful_set(
    ctx: &Ctx,
    instance: &Instance,
    set: &InstanceSet,
    labels: BTreeMap<String, String>,
    config: &Value,
) -> StatefulSet {
    let selector: BTreeMap<String, String> = [names::CLUSTER, names::INSTANCE_SET, names::INSTANCE]
        .iter()
        .map(|k| (k.to_string(), labels[*k].clone()))
        .collect();
    let (set_labels, mut annotations) = user_metadata(set.metadata.as_ref());
    let (cluster_labels, cluster_annotations) = user_metadata(ctx.cluster.spec.metadata.as_ref());
    let mut pod_labels = cluster_labels;
    pod_labels.extend(set_labels);
    pod_labels.extend(labels.clone());
    // Patroni finds its members by this label (`scope_label`).
    pod_labels.insert(patroni::SCOPE_LABEL.into(), ctx.names.ha());
    annotations.extend(cluster_annotations);
    // Patroni reads its file at start: a change restarts the pod. The bootstrap section is
    // read only once, when the cluster is created, and changes through `PATCH /config`.
    let mut local = config.clone();
    local.as_object_mut().map(|o| o.remove("bootstrap"));
    annotations.insert(
        names::CONFIG_HASH.into(),
        names::digest(local.to_string().as_bytes()),
    );
    let shutdown = ctx.cluster.spec.shutdown == Some(true);
    StatefulSet {
        metadata: ctx.meta(instance.name.clone(), labels),
        spec: Some(StatefulSetSpec {
            replicas: Some(if shutdown { 0 } else { 1 }),
            service_name: Some(ctx.names.pods()),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(pod_spec(ctx, instance, set)),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_spec(ctx: &Ctx, instance: &Instance, set: &InstanceSet) -> PodSpec {
    let c = ctx.cluster;
    let volume_repos = c.repos().iter().any(|r| r.volume.is_some());
    let mut mounts = vec![
        mount("pgdata", paths::DATA),
        mount_ro("patroni-config", paths::PATRONI_CONFIG),
        mount_ro("postgres-tls", "/etc/postgres/tls"),
        mount("tmp", paths::TMP),
    ];
    let mut volumes = vec![
        Volume {
            name: "pgdata".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: names::data_volume(&instance.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "patroni-config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::config(&instance.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "postgres-tls".into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(PRIVATE),
                sources: Some(vec![
                    tls_projection(
                        c.spec.custom_tls_secret.as_ref(),
                        ctx.names.server_cert(),
                        "server",
                    ),
                    tls_projection(
                        c.spec.custom_replication_tls_secret.as_ref(),
                        ctx.names.replication_cert(),
                        "replication",
                    ),
                ]),
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    if set.wal_volume_claim_spec.is_some() {
        mounts.push(mount("pgwal", paths::WAL));
        volumes.push(Volume {
            name: "pgwal".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: names::wal_volume(&instance.name),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let mut env = vec![
        EnvVar {
            name: "PATRONI_KUBERNETES_POD_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        secret_env("PATRONI_SUPERUSER_PASSWORD", ctx.names.superuser()),
        secret_env("PATRONI_REWIND_PASSWORD", ctx.names.superuser()),
        secret_env("PATRONI_REPLICATION_PASSWORD", ctx.names.replication()),
        // `kubectl exec ... psql` connects to this instance.
        plain_env("PGHOST", paths::TMP),
        plain_env("PGPORT", &c.port().to_string()),
    ];
    if !c.repos().is_empty() {
        mounts.push(mount_ro("pgbackrest-config", paths::PGBACKREST_CONFIG_DIR));
        volumes.push(pgbackrest_volume(ctx, "instance.conf"));
        env.push(plain_env("PGBACKREST_CONFIG", paths::PGBACKREST_CONFIG));
    }
    let api_port = patroni_port(ctx);
    let mut containers = vec![Container {
        name: "database".into(),
        image: Some(ctx.image()),
        image_pull_policy: ctx.pull_policy(),
        command: Some(vec![
            "patroni".into(),
            format!("{}/{PATRONI_FILE}", paths::PATRONI_CONFIG),
        ]),
        env: Some(env.clone()),
        ports: Some(vec![port("postgres", c.port()), port("patroni", api_port)]),
        readiness_probe: Some(http_probe("/readiness", 5)),
        liveness_probe: Some(http_probe("/liveness", 10)),
        resources: set.resources.clone(),
        security_context: Some(restricted()),
        volume_mounts: Some(mounts.clone()),
        ..Default::default()
    }];
    if volume_repos {
        // The repository host reaches this instance's data through pgBackRest's TLS server.
        containers.push(pgbackrest_server(ctx, env, mounts));
    }
    PodSpec {
        containers,
        volumes: Some(volumes),
        service_account_name: Some(ctx.names.instance_account()),
        enable_service_links: Some(false),
        security_context: Some(pod_security(c.spec.supplemental_groups.clone())),
        affinity: Some(set.affinity.clone().unwrap_or_else(|| spread(ctx))),
        tolerations: set.tolerations.clone(),
        topology_spread_constraints: set.topology_spread_constraints.clone(),
        priority_class_name: set.priority_class_name.clone(),
        image_pull_secrets: c.spec.image_pull_secrets.clone(),
        ..Default::default()
    }
}

/// PGO's default placement: instances of a cluster on different nodes where possible.
fn spread(ctx: &Ctx) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 1,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: "kubernetes.io/hostname".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                names::CLUSTER.to_string(),
                                ctx.cluster.name().to_string(),
                            )])),
                            match_expressions: Some(vec![LabelSelectorRequirement {
                                key: names::INSTANCE.into(),
                                operator: "Exists".into(),
                                values: None,
                            }]),
                        }),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pgbackrest_server(ctx: &Ctx, env: Vec<EnvVar>, mounts: Vec<VolumeMount>) -> Container {
    Container {
        name: "pgbackrest".into(),
        image: Some(ctx.image()),
        image_pull_policy: ctx.pull_policy(),
        command: Some(vec!["pgbackrest".into(), "server".into()]),
        env: Some(
            env.into_iter()
                .filter(|e| e.name.starts_with("PG"))
                .collect(),
        ),
        ports: Some(vec![port("pgbackrest", PGBACKREST_PORT)]),
        readiness_probe: Some(tcp_probe(PGBACKREST_PORT)),
        security_context: Some(restricted()),
        // The data and WAL, the configuration, and the socket directory: not Patroni's files.
        volume_mounts: Some(
            mounts
                .into_iter()
                .filter(|m| !matches!(m.name.as_str(), "patroni-config" | "postgres-tls"))
                .collect(),
        ),
        ..Default::default()
    }
}

/// Files readable by the owner and the pod's group only: PostgreSQL refuses keys readable by
/// others.
pub(super) const PRIVATE: i32 = 0o640;

/// A TLS Secret's `tls.crt`, `tls.key` and `ca.crt` under `dir/`: the spec's own Secret (with
/// its item mapping) or pgdeck's.
fn tls_projection(
    custom: Option<&SecretProjection>,
    generated: String,
    dir: &str,
) -> VolumeProjection {
    let mut secret = custom.cloned().unwrap_or(SecretProjection {
        name: generated,
        ..Default::default()
    });
    let items = secret.items.take().unwrap_or_else(|| {
        ["tls.crt", "tls.key", "ca.crt"]
            .iter()
            .map(|k| KeyToPath {
                key: k.to_string(),
                path: k.to_string(),
                mode: None,
            })
            .collect()
    });
    secret.items = Some(
        items
            .into_iter()
            .map(|i| KeyToPath {
                path: format!("{dir}/{}", i.path),
                ..i
            })
            .collect(),
    );
    VolumeProjection {
        secret: Some(secret),
        ..Default::default()
    }
}

/// pgBackRest's configuration file (`file` of the cluster's ConfigMap) and its TLS files.
pub(super) fn pgbackrest_volume(ctx: &Ctx, file: &str) -> Volume {
    let mut sources = vec![VolumeProjection {
        config_map: Some(ConfigMapProjection {
            name: ctx.names.pgbackrest_config(),
            items: Some(vec![KeyToPath {
                key: file.into(),
                path: "pgbackrest.conf".into(),
                mode: None,
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if ctx.cluster.repos().iter().any(|r| r.volume.is_some()) {
        sources.push(tls_projection(None, ctx.names.pgbackrest_cert(), "tls"));
    }
    Volume {
        name: "pgbackrest-config".into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(PRIVATE),
            sources: Some(sources),
        }),
        ..Default::default()
    }
}

pub(super) fn pod_security(supplemental_groups: Option<Vec<i64>>) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(POSTGRES_UID),
        run_as_group: Some(POSTGRES_UID),
        fs_group: Some(POSTGRES_UID),
        fs_group_change_policy: Some("OnRootMismatch".into()),
        supplemental_groups,
        ..Default::default()
    }
}

pub(super) fn restricted() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

pub(super) fn mount_ro(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        read_only: Some(true),
        ..mount(name, path)
    }
}

pub(super) fn plain_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

pub(super) fn secret_env(name: &str, secret: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret,
                key: "password".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("patroni".into()),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

pub(super) fn tcp_probe(port: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        period_seconds: Some(10),
        ..Default::default()
    }
}
