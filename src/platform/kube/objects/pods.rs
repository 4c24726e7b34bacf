//! What the pods pgdeck runs have in common: the instance image run as the postgres account,
//! a private `/tmp`, no service links, placement from the spec; and the small parts they are
//! built from.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapProjection, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, KeyToPath, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SecretKeySelector, SecurityContext,
    TCPSocketAction, Toleration, TopologySpreadConstraint, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Ctx, POSTGRES_UID, paths, user_metadata};
use crate::api::cluster::Metadata;

/// Where the spec says a pod goes.
#[derive(Default)]
pub(super) struct Placement {
    pub affinity: Option<Affinity>,
    pub tolerations: Option<Vec<Toleration>>,
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    pub priority_class_name: Option<String>,
}

/// A pod of pgdeck's: `account` its ServiceAccount (none, and no API token, when `None`).
pub(super) fn pod(
    ctx: &Ctx,
    containers: Vec<Container>,
    mut volumes: Vec<Volume>,
    account: Option<String>,
    placement: Placement,
) -> PodSpec {
    volumes.push(Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    PodSpec {
        containers,
        volumes: Some(volumes),
        automount_service_account_token: account.is_none().then_some(false),
        service_account_name: account,
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(POSTGRES_UID),
            run_as_group: Some(POSTGRES_UID),
            fs_group: Some(POSTGRES_UID),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            supplemental_groups: ctx.cluster.spec.supplemental_groups.clone(),
            ..Default::default()
        }),
        affinity: placement.affinity,
        tolerations: placement.tolerations,
        topology_spread_constraints: placement.topology_spread_constraints,
        priority_class_name: placement.priority_class_name,
        image_pull_secrets: ctx.cluster.spec.image_pull_secrets.clone(),
        ..Default::default()
    }
}

/// A container of the instance image, locked down; with the pod's private `/tmp` mounted.
pub(super) fn container(ctx: &Ctx, name: &str, command: Vec<String>) -> Container {
    Container {
        name: name.into(),
        image: Some(ctx.image()),
        image_pull_policy: ctx.pull_policy(),
        command: Some(command),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![mount("tmp", paths::TMP)]),
        ..Default::default()
    }
}

/// A pod template's metadata: the spec's labels and annotations (`spec.metadata`, then the
/// part's own `metadata`) under pgdeck's `labels`.
pub(super) fn template(
    ctx: &Ctx,
    part: Option<&Metadata>,
    labels: &BTreeMap<String, String>,
) -> ObjectMeta {
    let (mut all_labels, mut annotations) = user_metadata(ctx.cluster.spec.metadata.as_ref());
    let (part_labels, part_annotations) = user_metadata(part);
    all_labels.extend(part_labels);
    all_labels.extend(labels.clone());
    annotations.extend(part_annotations);
    ObjectMeta {
        labels: Some(all_labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    }
}

/// A StatefulSet of one pod (none when `running` is false), its DNS name through `<c>-pods`,
/// selected by the `selector` keys of its `labels`.
pub(super) fn stateful_set(
    ctx: &Ctx,
    name: String,
    labels: BTreeMap<String, String>,
    selector: &[&str],
    running: bool,
    pod: PodTemplateSpec,
) -> StatefulSet {
    let selector = selector
        .iter()
        .map(|k| (k.to_string(), labels[*k].clone()))
        .collect();
    StatefulSet {
        metadata: ctx.meta(name, labels),
        spec: Some(StatefulSetSpec {
            replicas: Some(if running { 1 } else { 0 }),
            service_name: Some(ctx.names.pods()),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: pod,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Job's script, run with bash in the instance image.
pub(super) struct Script {
    pub container: &'static str,
    pub script: String,
    pub env: Vec<EnvVar>,
    pub resources: Option<ResourceRequirements>,
}

/// A Job that runs `script` once, retrying a few times.
pub(super) fn script_job(
    ctx: &Ctx,
    labels: BTreeMap<String, String>,
    script: Script,
    account: Option<String>,
    placement: Placement,
) -> JobSpec {
    let mut env = vec![plain_env("HOME", paths::TMP)];
    env.extend(script.env);
    let container = Container {
        env: Some(env),
        resources: script.resources,
        ..container(
            ctx,
            script.container,
            vec!["bash".into(), "-ceu".into(), script.script],
        )
    };
    let mut spec = pod(ctx, vec![container], Vec::new(), account, placement);
    spec.restart_policy = Some("Never".into());
    JobSpec {
        backoff_limit: Some(6),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..Default::default()
            }),
            spec: Some(spec),
        },
        ..Default::default()
    }
}

/// A volume of the claim `claim`.
pub(super) fn claim(name: &str, claim: String) -> Volume {
    Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim,
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

/// The `password` of Secret `secret`.
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

/// The key `key` of ConfigMap `config_map`, projected as the file `path`.
pub(super) fn config_file(config_map: String, key: &str, path: &str) -> VolumeProjection {
    VolumeProjection {
        config_map: Some(ConfigMapProjection {
            name: config_map,
            items: Some(vec![KeyToPath {
                key: key.into(),
                path: path.into(),
                mode: None,
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
