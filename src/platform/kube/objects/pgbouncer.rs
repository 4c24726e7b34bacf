//! pgBouncer (`spec.proxy.pgBouncer`) as PGO runs it: a `<c>-pgbouncer` Deployment of
//! `replicas` pods behind the `<c>-pgbouncer` Service, its `pgbouncer.ini` in the
//! `<c>-pgbouncer` ConfigMap (rendered by `plan::pgbouncer`, every pool at the primary's
//! Service over verified TLS), its login and certificate in the `<c>-pgbouncer` Secret (see
//! `secrets`), and a PodDisruptionBudget when more than one runs or `minAvailable` asks. A
//! change of its configuration or Secret rolls the pods (a digest in the pod template).
//! The role and function it authenticates clients through are the users Job's (see `users`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapProjection, Container, KeyToPath, PodTemplateSpec, ProjectedVolumeSource,
    Secret, SecretProjection, Service, ServicePort, Volume, VolumeProjection,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pods::{self, Placement};
use super::{Ctx, collector, instances, services};
use crate::api::addons::PgBouncer;
use crate::plan::pgbouncer;
use crate::platform::kube::names;

/// Where the configuration, the authentication file and the certificate are in the pod.
pub const CONFIG_DIR: &str = "/etc/pgbouncer";
/// The ConfigMap's key with pgdeck's `pgbouncer.ini`, projected as [`OWN_INI`] (PGO's names).
pub const INI: &str = "pgbouncer.ini";
/// pgdeck's configuration file in the pod: what pgBouncer starts with.
const OWN_INI: &str = "~postgres-operator.ini";
/// The ConfigMap's key with an empty file, projected as `pgbouncer.ini` before the spec's
/// `config.files` so that the `%include` of it always finds a file; theirs may replace it.
const EMPTY: &str = "pgbouncer-empty";
/// The Secret's key (and file) with the pooler user's password, for pgBouncer's `auth_user`.
pub const USERS_FILE: &str = "users.txt";
/// The directory of its certificate for clients (`tls.crt`, `tls.key`, `ca.crt`).
const FRONTEND: &str = "frontend";
/// The CA that PostgreSQL's certificate must chain to.
const SERVER_CA: &str = "server-ca.crt";

/// The pooler's objects; none without `spec.proxy.pgBouncer`.
pub struct Parts {
    pub config: ConfigMap,
    pub deployment: Deployment,
    pub service: Service,
    pub budget: Option<PodDisruptionBudget>,
}

pub fn spec<'a>(ctx: &Ctx<'a>) -> Option<&'a PgBouncer> {
    ctx.cluster.spec.proxy.as_ref().map(|p| &p.pg_bouncer)
}

pub fn port(spec: &PgBouncer) -> i32 {
    spec.port.unwrap_or(pgbouncer::DEFAULT_PORT)
}

/// pgBouncer's command. With a collector reading its log file, a shell runs it and, as
/// nothing else rotates that file, renames it to `.log.1` when it passes 16 MiB and has
/// pgBouncer reopen it (SIGHUP), so that it never fills the pod's `/tmp`.
fn command(ini: &str, rotated: bool) -> Vec<String> {
    if !rotated {
        return vec!["pgbouncer".into(), ini.into()];
    }
    let script = r#"mkdir -p "${2%/*}"
pgbouncer "$1" &
pid=$!
trap 'kill -TERM $pid' TERM INT
while kill -0 "$pid" 2>/dev/null; do
  # A signal (the trap) ends the wait: then only pgBouncer's exit is awaited.
  sleep 60 & wait $! || break
  if [ "$(stat -c %s "$2" 2>/dev/null || echo 0)" -gt 16777216 ]; then
    mv -f "$2" "$2.1" && kill -HUP "$pid"
  fi
done
wait "$pid"
"#;
    [
        "bash",
        "-ceu",
        "--",
        script,
        "pgbouncer",
        ini,
        collector::PGBOUNCER_LOG,
    ]
    .map(String::from)
    .into()
}

pub fn render(ctx: &Ctx, secrets: &[Secret]) -> Option<Parts> {
    let spec = spec(ctx)?;
    let name = ctx.names.pgbouncer();
    let port = port(spec);
    let collector = collector::pgbouncer_config_text(ctx, port);
    let file = |f: &str| format!("{CONFIG_DIR}/{f}");
    let at = pgbouncer::Placement {
        listen_addr: "*".into(),
        listen_port: port as u16,
        // No socket: the root filesystem is read-only, and nothing in the pod uses one.
        unix_socket_dir: String::new(),
        auth_file: file(USERS_FILE),
        ca_file: file(&format!("{FRONTEND}/ca.crt")),
        cert_file: file(&format!("{FRONTEND}/tls.crt")),
        key_file: file(&format!("{FRONTEND}/tls.key")),
        server_ca_file: file(SERVER_CA),
        primary_host: ctx.names.service_host(&ctx.names.primary()),
        primary_port: ctx.cluster.port() as u16,
        admin_users: None,
        // Its login, in the authentication file, reads the pools (the console's `SHOW POOLS`).
        stats_user: Some(pgbouncer::POOLER_USER.into()),
        include: Some(file(INI)),
        logfile: collector.is_some().then(|| collector::PGBOUNCER_LOG.into()),
    };
    let ini = pgbouncer::render(ctx.cluster, &at);
    let labels = ctx.labels_with(&[(names::COMPONENT, names::PGBOUNCER)]);
    let selector = BTreeMap::from([
        (names::CLUSTER.to_string(), ctx.cluster.name().to_string()),
        (names::COMPONENT.to_string(), names::PGBOUNCER.to_string()),
    ]);

    // What the pods read: a change rolls them (pgBouncer reads its files only at start).
    let mut fingerprint = ini.clone().into_bytes();
    fingerprint.extend(collector.iter().flat_map(|c| c.bytes()));
    if let Some(data) = secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(&name))
        .and_then(|s| s.data.as_ref())
    {
        fingerprint.extend(serde_json::to_vec(data).expect("data serializes"));
    }
    let mut template = pods::template(ctx, spec.metadata.as_ref(), &labels);
    template
        .labels
        .get_or_insert_with(Default::default)
        .extend(collector::labels(ctx));
    template
        .annotations
        .get_or_insert_with(Default::default)
        .insert(names::CONFIG_HASH.into(), names::digest(&fingerprint));

    let mut container = Container {
        ports: Some(vec![pods::port(names::PGBOUNCER, port)]),
        readiness_probe: Some(pods::tcp_probe(port)),
        liveness_probe: Some(pods::tcp_probe(port)),
        resources: spec.resources.clone(),
        ..pods::container(
            ctx,
            "pgbouncer",
            command(&file(OWN_INI), collector.is_some()),
        )
    };
    if let Some(image) = &spec.image {
        container.image = Some(image.clone());
    }
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(pods::mount_ro("pgbouncer-config", CONFIG_DIR));
    let item = |key: &str, path: &str| KeyToPath {
        key: key.into(),
        path: path.into(),
        ..Default::default()
    };
    let secret = |name: String, items: Vec<KeyToPath>| VolumeProjection {
        secret: Some(SecretProjection {
            name,
            items: Some(items),
            ..Default::default()
        }),
        ..Default::default()
    };
    // PostgreSQL's CA: the cluster's, or that of the spec's server certificate (only its
    // `ca.crt`, never its key).
    let server_ca = match &ctx.cluster.spec.custom_tls_secret {
        None => secret(ctx.names.ca(), vec![item("ca.crt", SERVER_CA)]),
        Some(custom) => {
            let key = custom
                .items
                .iter()
                .flatten()
                .find(|i| i.path == "ca.crt")
                .map_or("ca.crt", |i| i.key.as_str());
            secret(custom.name.clone(), vec![item(key, SERVER_CA)])
        }
    };
    let config_map = |key: &str, path: &str| VolumeProjection {
        config_map: Some(ConfigMapProjection {
            name: name.clone(),
            items: Some(vec![item(key, path)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    // As PGO: the empty `pgbouncer.ini`, the spec's files (a `pgbouncer.ini` of theirs
    // replaces it), then pgdeck's own files, last so that no file of theirs replaces one.
    let mut sources = vec![config_map(EMPTY, INI)];
    sources.extend(
        spec.config
            .iter()
            .flat_map(|c| c.files.iter().flatten().cloned()),
    );
    sources.extend([
        config_map(INI, OWN_INI),
        secret(name.clone(), vec![item(USERS_FILE, USERS_FILE)]),
        // Its certificate for clients: the spec's, or the one pgdeck issues.
        instances::tls_projection(spec.custom_tls_secret.as_ref(), name.clone(), FRONTEND),
        server_ca,
    ]);
    let volume = Volume {
        name: "pgbouncer-config".into(),
        projected: Some(ProjectedVolumeSource {
            // Readable by the pod's group only (fsGroup): the key and the pooler's password.
            default_mode: Some(0o440),
            sources: Some(sources),
        }),
        ..Default::default()
    };
    let placement = Placement {
        affinity: spec.affinity.clone(),
        tolerations: spec.tolerations.clone(),
        topology_spread_constraints: spec.topology_spread_constraints.clone(),
        priority_class_name: spec.priority_class_name.clone(),
    };
    // No ServiceAccount and no API token: pgBouncer needs no API access.
    let mut containers = vec![container];
    let mut volumes = vec![volume];
    if let Some((container, volume)) = collector::sidecar(ctx, collector::Pod::PgBouncer) {
        containers.push(container);
        volumes.push(volume);
    }
    containers.extend(spec.containers.iter().flat_map(|c| c.0.iter().cloned()));
    let pod = pods::pod(ctx, containers, volumes, None, placement);
    let replicas = spec.replicas.unwrap_or(1);
    let deployment = Deployment {
        metadata: ctx.meta(name.clone(), labels.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(template),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    };

    let service = services::exposed(
        ctx,
        name.clone(),
        spec.service.as_ref(),
        selector.clone(),
        ServicePort {
            name: Some(names::PGBOUNCER.into()),
            port,
            protocol: Some("TCP".into()),
            target_port: Some(IntOrString::String(names::PGBOUNCER.into())),
            ..Default::default()
        },
    );

    // As PGO: one pod kept through a drain when more than one runs, unless the spec says.
    let min_available = spec
        .min_available
        .clone()
        .or_else(|| (replicas > 1).then_some(IntOrString::Int(1)));
    let budget = min_available.map(|min| PodDisruptionBudget {
        metadata: ctx.meta(name.clone(), labels.clone()),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(min),
            selector: Some(LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });

    Some(Parts {
        config: ConfigMap {
            metadata: ctx.meta(name, labels),
            data: Some(
                [
                    (INI.to_string(), Some(ini)),
                    (EMPTY.to_string(), Some(String::new())),
                    (collector::CONFIG_KEY.to_string(), collector),
                ]
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect(),
            ),
            ..Default::default()
        },
        deployment,
        service,
        budget,
    })
}
