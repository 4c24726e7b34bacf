//! One instance: a StatefulSet of one pod running Patroni (and, with a repository host,
//! pgBackRest's TLS server beside it), its volumes, and its Patroni configuration in a ConfigMap.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource,
    EphemeralVolumeSource, HTTPGetAction, KeyToPath, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimTemplate, PodAffinityTerm, PodAntiAffinity, PodSpec, PodTemplateSpec,
    Probe, ProjectedVolumeSource, SecretProjection, Volume, VolumeMount, VolumeProjection,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::adopt::{self, Adopted};
use super::pods::{self, mount, mount_ro, plain_env, port, secret_env, tcp_probe};
use super::{Ctx, PGBACKREST_PORT, backups, collector, exporter, paths, restore};
use crate::api::annotations;
use crate::api::instances::InstanceSet;
use crate::api::patroni::{MIN_LOG_STORAGE_BYTES, PatroniLogging};
use crate::plan::adopt::Role;
use crate::plan::monitoring;
use crate::plan::patroni::{self, Credentials, Dcs, Placement, Tls};
use crate::plan::standby;
use crate::plan::temp_volume;
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
        .sets()
        .into_iter()
        .find(|(name, _)| name == &instance.set)
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let labels = ctx.labels_with(&[
        (names::INSTANCE_SET, &instance.set),
        (names::INSTANCE, &instance.name),
        (names::COMPONENT, "instance"),
    ]);
    let config = patroni_config(ctx, instance, &set);
    let config_text = serde_json::to_string_pretty(&config).expect("a JSON value serializes");
    let keep = ctx.keeps(annotations::KEEP_DATA);
    // An adopted volume is the DBA's, made before the cluster: it is never rendered.
    let adopted = |role| Adopted::claim(ctx.inputs.adopted.as_ref(), &instance.name, role);
    let mut volumes = Vec::new();
    if adopted(Role::Data).is_none() {
        volumes.push(PersistentVolumeClaim {
            metadata: ctx.volume_meta(names::data_volume(&instance.name), labels.clone(), keep),
            spec: Some(set.data_volume_claim_spec.0.clone()),
            ..Default::default()
        });
    }
    if let Some(wal) = set
        .wal_volume_claim_spec
        .as_ref()
        .filter(|_| adopted(Role::Wal).is_none())
    {
        volumes.push(PersistentVolumeClaim {
            metadata: ctx.volume_meta(names::wal_volume(&instance.name), labels.clone(), keep),
            spec: Some(wal.0.clone()),
            ..Default::default()
        });
    }
    for t in &set.tablespace_volumes {
        // PGO's label names the tablespace its volume holds.
        let mut labels = labels.clone();
        labels.insert(names::TABLESPACE.into(), t.name.clone());
        volumes.push(PersistentVolumeClaim {
            metadata: ctx.volume_meta(
                names::tablespace_volume(&instance.name, &t.name),
                labels,
                keep,
            ),
            spec: Some(t.data_volume_claim_spec.0.clone()),
            ..Default::default()
        });
    }
    // JSON is YAML to Patroni, and quotes every string: PyYAML would read a bare `on` as a
    // boolean.
    let mut files = BTreeMap::from([(PATRONI_FILE.to_string(), config_text + "\n")]);
    if let Some(text) = restore::config(ctx) {
        files.insert(restore::CONFIG_FILE.into(), text);
    }
    if let Some(text) = collector::config_text(ctx) {
        files.insert(collector::CONFIG_KEY.into(), text);
    }
    Parts {
        config: ConfigMap {
            metadata: ctx.meta(names::config(&instance.name), labels.clone()),
            data: Some(files),
            ..Default::default()
        },
        volumes,
        stateful_set: stateful_set(ctx, instance, &set, labels, &config),
    }
}

/// Patroni's configuration, rendered as on every platform, with what Kubernetes adds:
/// passwords from the environment, the REST API's TLS, and the WAL volume.
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
        client_networks: vec!["0.0.0.0/0".into(), "::/0".into()],
        // The image runs everything as its postgres account.
        peer_users: vec![patroni::SUPERUSER.into()],
        log_dir: paths::PATRONI_LOG.into(),
        restore: restore::command(ctx),
        standby: c
            .spec
            .standby
            .as_ref()
            .filter(|s| standby::wanted(Some(s)))
            .map(standby::as_given),
        replica_restore: None,
        temp_volume: set.temp_volume().map(|_| paths::TEMP.into()),
        tls: Tls {
            ca_file: format!("{}/ca.crt", paths::SERVER_TLS),
            cert_file: format!("{}/tls.crt", paths::SERVER_TLS),
            key_file: format!("{}/tls.key", paths::SERVER_TLS),
            // Members connect to each other by pod name, which the wildcard names cover; a
            // custom certificate need not.
            verify: "verify-ca",
            replication_client: Some((
                format!("{}/tls.crt", paths::REPLICATION_TLS),
                format!("{}/tls.key", paths::REPLICATION_TLS),
            )),
            // Any client may connect in plain text, with a password (scram-sha-256).
            required: false,
        },
    };
    let credentials = Credentials {
        replication: String::new(),
        rest_api: None,
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
    // The REST API over TLS; its unsafe endpoints (switchover, PATCH /config, restart, ...)
    // only for clients with a certificate of the cluster's Patroni CA: the operator, which
    // calls them directly, and the members. Reads need none: the console and the operator
    // read through the API server's pod proxy (`pods/https:...`), which can present no client
    // certificate, and the kubelet's probes. Members check each other by the same CA.
    let tls = paths::PATRONI_TLS;
    let restapi = config["restapi"]
        .as_object_mut()
        .expect("rendered as an object");
    restapi.insert("certfile".into(), format!("{tls}/tls.crt").into());
    restapi.insert("keyfile".into(), format!("{tls}/tls.key").into());
    restapi.insert("cafile".into(), format!("{tls}/ca.crt").into());
    restapi.insert("verify_client".into(), "optional".into());
    config["ctl"] = json!({ "cacert": format!("{tls}/ca.crt") });
    if let Some(parameters) = collector::postgres_parameters(ctx) {
        let pg = config["postgresql"]["parameters"]
            .as_object_mut()
            .expect("rendered as an object");
        pg.extend(parameters);
        // The collector reads Patroni's log from files: Patroni writes them with PGO's
        // defaults when `spec.patroni.logging` says nothing.
        if config["log"].is_null() {
            let logging = PatroniLogging {
                storage_limit: Quantity(MIN_LOG_STORAGE_BYTES.to_string()),
                level: None,
            };
            config["log"] = patroni::log(&logging, paths::PATRONI_LOG);
        }
    }
    if set.wal_volume_claim_spec.is_some()
        && let Some(initdb) = config["bootstrap"]["initdb"].as_array_mut()
    {
        initdb.push(json!({ "waldir": paths::wal_dir(v) }));
    }
    if let Some(existing) = adopt::bootstrap(ctx, &instance.name) {
        config["bootstrap"]["method"] = json!("existing");
        config["bootstrap"]["existing"] = existing;
    }
    config
}

pub(super) fn patroni_port(ctx: &Ctx) -> i32 {
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
    let mut template = pods::template(ctx, set.metadata.as_ref(), &labels);
    // Patroni finds its members by this label (`scope_label`).
    template
        .labels
        .get_or_insert_with(Default::default)
        .insert(patroni::SCOPE_LABEL.into(), ctx.names.ha());
    if monitoring::exporter(ctx.cluster).is_some() {
        // pgMonitor's Prometheus finds the exporters by this label.
        let labels = template.labels.get_or_insert_with(Default::default);
        labels.insert(exporter::DISCOVERY_LABEL.into(), "true".into());
    }
    template
        .labels
        .get_or_insert_with(Default::default)
        .extend(collector::labels(ctx));
    // Patroni reads its file at start: a change restarts the pod. The bootstrap section is
    // read only once, when the cluster is created, and changes through `PATCH /config`.
    let mut local = config.clone();
    local.as_object_mut().map(|o| o.remove("bootstrap"));
    // So does the collector its configuration.
    let files = local.to_string() + &collector::config_text(ctx).unwrap_or_default();
    template
        .annotations
        .get_or_insert_with(Default::default)
        .insert(names::CONFIG_HASH.into(), names::digest(files.as_bytes()));
    let mut template = PodTemplateSpec {
        metadata: Some(template),
        spec: Some(pod_spec(ctx, instance, set)),
    };
    let digest = names::digest(&serde_json::to_vec(&template).expect("a template serializes"));
    template
        .metadata
        .as_mut()
        .and_then(|m| m.annotations.as_mut())
        .expect("annotated above")
        .insert(names::TEMPLATE_HASH.into(), digest);
    pods::stateful_set(
        ctx,
        instance.name.clone(),
        labels,
        &[names::CLUSTER, names::INSTANCE_SET, names::INSTANCE],
        ctx.cluster.spec.shutdown != Some(true),
        template,
    )
}

fn pod_spec(ctx: &Ctx, instance: &Instance, set: &InstanceSet) -> PodSpec {
    let c = ctx.cluster;
    let (files_mount, files) = postgres_files(ctx);
    let adopted = |role| Adopted::claim(ctx.inputs.adopted.as_ref(), &instance.name, role);
    let mut mounts = vec![
        mount("pgdata", paths::DATA),
        mount_ro("patroni-config", paths::PATRONI_CONFIG),
        files_mount,
        mount_ro("patroni-tls", paths::PATRONI_TLS),
    ];
    let mut volumes = vec![
        pods::claim(
            "pgdata",
            adopted(Role::Data).unwrap_or_else(|| names::data_volume(&instance.name)),
        ),
        Volume {
            name: "patroni-config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::config(&instance.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        files,
        patroni_tls(ctx),
    ];
    if let Some(claim) = adopted(Role::Wal)
        .or_else(|| (set.wal_volume_claim_spec.as_ref()).map(|_| names::wal_volume(&instance.name)))
    {
        mounts.push(mount("pgwal", paths::WAL));
        volumes.push(pods::claim("pgwal", claim));
    }
    if let Some(temp) = temp_claim(set) {
        mounts.push(mount("pgtmp", paths::TEMP));
        volumes.push(temp);
    }
    // At the same path in every instance, as PGO mounts them: a replica's base backup or a
    // restore puts each tablespace where the primary has it, with no mapping.
    for t in &set.tablespace_volumes {
        let volume = format!("tablespace-{}", t.name);
        mounts.push(mount(&volume, &paths::tablespace(&t.name)));
        volumes.push(pods::claim(
            &volume,
            names::tablespace_volume(&instance.name, &t.name),
        ));
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
        // Patroni gives the superuser this password when it bootstraps the cluster (the users
        // Job signs in with it); Patroni itself comes in through the socket by peer.
        secret_env("PATRONI_SUPERUSER_PASSWORD", ctx.names.superuser()),
        // pg_rewind runs as the replication user.
        secret_env("PATRONI_REWIND_PASSWORD", ctx.names.replication()),
        secret_env("PATRONI_REPLICATION_PASSWORD", ctx.names.replication()),
        // `kubectl exec ... psql` connects to this instance.
        plain_env("PGHOST", paths::TMP),
        plain_env("PGPORT", &c.port().to_string()),
    ];
    if !c.repos().is_empty() {
        let files = pgbackrest_files(ctx, "instance.conf");
        mounts.extend(files.mounts);
        volumes.extend(files.volumes);
        env.extend(files.env);
    }
    let database = pods::container(ctx, "database", patroni_command(ctx, set));
    let mut database = Container {
        env: Some(env.clone()),
        ports: Some(vec![
            port("postgres", c.port()),
            port("patroni", patroni_port(ctx)),
        ]),
        readiness_probe: Some(http_probe("/readiness", 5)),
        liveness_probe: Some(http_probe("/liveness", 10)),
        resources: set.resources.clone(),
        ..database
    };
    let database_mounts = database.volume_mounts.get_or_insert_with(Default::default);
    database_mounts.extend(mounts.clone());
    // Only Patroni's bootstrap restores.
    for (volume, mount) in restore::volumes(ctx, &instance.name) {
        volumes.push(volume);
        database_mounts.push(mount);
    }
    let mut containers = vec![database];
    if let Some((exporter, its_volumes)) = exporter::sidecar(ctx) {
        containers.push(exporter);
        volumes.extend(its_volumes);
    }
    if let Some((collector, its_volume)) = collector::sidecar(
        ctx,
        collector::Pod::Instance(&names::config(&instance.name)),
    ) {
        containers.push(collector);
        volumes.push(its_volume);
    }
    let pg_env = || env.iter().filter(|e| e.name.starts_with("PG")).cloned();
    let own_repos = (!c.repos().is_empty()).then(|| pgbackrest_files(ctx, "instance.conf"));
    // pgBackRest's own variables come with its files, once.
    let socket_env = pg_env()
        .filter(|e| !e.name.starts_with("PGBACKREST"))
        .collect();
    if let Some((info, its_volume)) = backups::instance_info(ctx, socket_env, own_repos) {
        containers.push(info);
        volumes.push(its_volume);
    }
    if c.repos().iter().any(|r| r.volume.is_some()) {
        // The repository host reaches this instance's data through pgBackRest's TLS server.
        let mut server = Container {
            env: Some(pg_env().collect()),
            ports: Some(vec![port("pgbackrest", PGBACKREST_PORT)]),
            readiness_probe: Some(tcp_probe(PGBACKREST_PORT)),
            ..pods::container(
                ctx,
                "pgbackrest",
                vec!["pgbackrest".into(), "server".into()],
            )
        };
        // The data and WAL and pgBackRest's configuration: not Patroni's files.
        server
            .volume_mounts
            .get_or_insert_with(Default::default)
            .extend(mounts.into_iter().filter(|m| {
                !matches!(
                    m.name.as_str(),
                    "patroni-config" | "postgres-tls" | "postgres-config" | "patroni-tls"
                )
            }));
        containers.push(server);
    }
    // The DBA's sidecars, after pgdeck's (validation keeps their names apart).
    containers.extend(set.containers.iter().flat_map(|c| c.0.iter().cloned()));
    for v in set.volumes.iter().flat_map(|v| &v.additional) {
        let volume = format!("volumes-{}", v.name);
        let read_only = v.read_only == Some(true);
        for c in containers.iter_mut().filter(|c| {
            v.containers
                .as_ref()
                .is_none_or(|only| only.contains(&c.name))
        }) {
            c.volume_mounts
                .get_or_insert_with(Vec::new)
                .push(VolumeMount {
                    read_only: Some(read_only),
                    ..mount(&volume, &format!("/volumes/{}", v.name))
                });
        }
        let mut claim = pods::claim(&volume, v.claim_name.clone());
        if let Some(source) = claim.persistent_volume_claim.as_mut() {
            source.read_only = Some(read_only);
        }
        volumes.push(claim);
    }
    pods::pod(
        ctx,
        containers,
        volumes,
        Some(ctx.names.instance_account()),
        pods::Placement {
            affinity: Some(set.affinity.clone().unwrap_or_else(|| spread(ctx))),
            tolerations: set.tolerations.clone(),
            topology_spread_constraints: set.topology_spread_constraints.clone(),
            priority_class_name: set.priority_class_name.clone(),
        },
    )
}

/// Patroni with its file, after the directories it needs that a fresh volume has not: with
/// `spec.patroni.logging` or a collector its log directory on the data volume (Patroni makes
/// none), with a collector PostgreSQL's log directory, and each
/// tablespace's `data` directory, owned by PostgreSQL's account as `CREATE TABLESPACE` wants
/// (the volume's root is the filesystem's, with `lost+found`); and with a temporary volume,
/// after pointing PostgreSQL's temporary files at it (see `plan::temp_volume`).
fn patroni_command(ctx: &Ctx, set: &InstanceSet) -> Vec<String> {
    let config = format!("{}/{PATRONI_FILE}", paths::PATRONI_CONFIG);
    let mut dirs: Vec<String> = set
        .tablespace_volumes
        .iter()
        .map(|t| paths::tablespace_data(&t.name))
        .collect();
    if ctx.cluster.patroni().logging.is_some() || collector::spec(ctx).is_some() {
        dirs.insert(0, paths::PATRONI_LOG.into());
    }
    // PostgreSQL makes the last directory of `log_directory` only.
    if collector::spec(ctx).is_some() {
        dirs.insert(1, collector::POSTGRES_LOG.into());
    }
    let mut steps = Vec::new();
    if !dirs.is_empty() {
        steps.push(r#"mkdir -p -m 0700 -- "${@:2}""#.to_string());
    }
    if set.temp_volume().is_some() {
        let data = paths::data_dir(ctx.cluster.spec.postgres_version);
        steps.push(temp_volume::before_start(&data, paths::TEMP));
    }
    if steps.is_empty() {
        return vec!["patroni".into(), config];
    }
    let script = format!(r#"{} && exec patroni "$1""#, steps.join(" && "));
    ["bash", "-c", &script, "patroni", &config]
        .map(String::from)
        .into_iter()
        .chain(dirs)
        .collect()
}

/// The instance set's volume for temporary files (`volumes.temp`): a claim made with the pod
/// and gone with it, as the files it holds are.
fn temp_claim(set: &InstanceSet) -> Option<Volume> {
    let spec = set.temp_volume()?;
    Some(Volume {
        name: "pgtmp".into(),
        ephemeral: Some(EphemeralVolumeSource {
            volume_claim_template: Some(PersistentVolumeClaimTemplate {
                metadata: None,
                spec: spec.0.clone(),
            }),
        }),
        ..Default::default()
    })
}

/// Patroni's REST API certificate, and its CA's (never the operator's key).
fn patroni_tls(ctx: &Ctx) -> Volume {
    Volume {
        name: "patroni-tls".into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(PRIVATE),
            sources: Some(vec![VolumeProjection {
                secret: Some(SecretProjection {
                    name: ctx.names.patroni_cert(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
        }),
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

/// PostgreSQL's certificates, in `/etc/postgres/tls`; with `spec.config.files` the DBA's files
/// in `/etc/postgres` as PGO projects them, the certificates under `tls/` of the same volume
/// (a mount nested in a read-only volume cannot be made). Ours come last: a path both name is
/// ours. The files are the owner's and the pod group's only, as the keys must be.
fn postgres_files(ctx: &Ctx) -> (VolumeMount, Volume) {
    let c = ctx.cluster;
    let files = (c.spec.config.as_ref())
        .and_then(|f| f.files.clone())
        .unwrap_or_default();
    let (name, at, under) = match files.is_empty() {
        true => ("postgres-tls", paths::POSTGRES_TLS, ""),
        false => ("postgres-config", paths::POSTGRES_CONFIG, "tls/"),
    };
    let mut sources = files;
    sources.extend([
        tls_projection(
            c.spec.custom_tls_secret.as_ref(),
            ctx.names.server_cert(),
            &format!("{under}server"),
        ),
        tls_projection(
            c.spec.custom_replication_tls_secret.as_ref(),
            ctx.names.replication_cert(),
            &format!("{under}replication"),
        ),
    ]);
    let volume = Volume {
        name: name.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(PRIVATE),
            sources: Some(sources),
        }),
        ..Default::default()
    };
    (mount_ro(name, at), volume)
}

/// Files readable by the owner and the pod's group only: PostgreSQL refuses keys readable by
/// others.
pub(super) const PRIVATE: i32 = 0o640;

/// A TLS Secret's `tls.crt`, `tls.key` and `ca.crt` under `dir/`: the spec's own Secret (with
/// its item mapping) or pgdeck's.
pub(super) fn tls_projection(
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

/// What a container running pgBackRest needs: its configuration file (`file` of the cluster's
/// ConfigMap) with the TLS files beside it, and the DBA's own files (`configuration`: S3 keys
/// and the like) where pgBackRest includes extra configuration.
pub(super) struct PgbackrestFiles {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    pub env: Vec<EnvVar>,
}

pub(super) fn pgbackrest_files(ctx: &Ctx, file: &str) -> PgbackrestFiles {
    let mut sources = vec![pods::config_file(
        ctx.names.pgbackrest_config(),
        file,
        "pgbackrest.conf",
    )];
    if ctx.cluster.repos().iter().any(|r| r.volume.is_some()) {
        sources.push(tls_projection(None, ctx.names.pgbackrest_cert(), "tls"));
    }
    let projected = |name: &str, sources| Volume {
        name: name.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(PRIVATE),
            sources: Some(sources),
        }),
        ..Default::default()
    };
    let mut out = PgbackrestFiles {
        volumes: vec![projected("pgbackrest-config", sources)],
        mounts: vec![mount_ro("pgbackrest-config", paths::PGBACKREST_CONFIG_DIR)],
        env: vec![plain_env("PGBACKREST_CONFIG", paths::PGBACKREST_CONFIG)],
    };
    let configuration = ctx.pgbackrest().configuration.unwrap_or_default();
    if !configuration.is_empty() {
        out.volumes
            .push(projected("pgbackrest-conf-d", configuration));
        out.mounts
            .push(mount_ro("pgbackrest-conf-d", paths::PGBACKREST_INCLUDE));
        out.env.push(plain_env(
            "PGBACKREST_CONFIG_INCLUDE_PATH",
            paths::PGBACKREST_INCLUDE,
        ));
    }
    out
}

fn http_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("patroni".into()),
            // The kubelet does not check the certificate, and reads need no client's.
            scheme: Some("HTTPS".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    }
}
