//! The rules a PostgresCluster follows beyond its shape. Each error names the field path and the
//! rule. The CRD carries what its schema can (ranges, patterns, CEL rules); these rules are the
//! complete set and run wherever a manifest enters: files, the console's editor, the local store.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::PostgresCluster;
use super::backups::{Cloud, PgBackRest, Repo};
use super::cluster::{ServiceSpec, ServiceType};
use super::instances::{InstanceSet, set_name};
use super::manifest::FieldError;
use super::patroni::{MIN_LOG_STORAGE_BYTES, PatroniSpec, SwitchoverType};
use super::quantity;
use super::sidecars::Sidecars;
use super::sources::PgBackRestDataSource;
use super::users::{REPLICATION_USER, SUPERUSER, UserSpec};
use super::volume::VolumeClaimSpec;
use crate::plan::pgbackrest_options::Command;

/// PostgreSQL parameters pgdeck sets itself: the DBA's value would break the instance's wiring.
const MANAGED_PARAMETERS: &[&str] = &[
    "archive_command",
    "archive_mode",
    "config_file",
    "data_directory",
    "hba_file",
    "ident_file",
    "listen_addresses",
    "port",
    "restore_command",
    "unix_socket_directories",
];

/// The longest cluster name plus set name: instance names `<cluster>-<set>-<4 chars>` and their
/// pods' hostnames must stay within 63 characters with room for suffixes (PGO's limit).
const MAX_CLUSTER_AND_SET_NAME: usize = 46;

#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    fn check(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.fail(path, message);
        }
    }

    fn dns_label(&mut self, path: &str, value: &str) {
        if let Err(why) = dns_label(value) {
            self.fail(path, why);
        }
    }

    fn range(&mut self, path: &str, value: Option<i32>, min: i32, max: i32) {
        if let Some(v) = value
            && !(min..=max).contains(&v)
        {
            self.fail(path, format!("must be between {min} and {max}, not {v}"));
        }
    }

    /// A quantity that parses and is greater than zero.
    fn positive_quantity(&mut self, path: &str, q: &Quantity) -> Option<f64> {
        match quantity::value(q) {
            Ok(v) if v > 0.0 => Some(v),
            Ok(_) => {
                self.fail(path, format!("must be greater than zero, not {:?}", q.0));
                None
            }
            Err(why) => {
                self.fail(path, why);
                None
            }
        }
    }

    fn resources(&mut self, path: &str, r: &ResourceRequirements) {
        let mut parse_all = |section: &str, map: &Option<BTreeMap<String, Quantity>>| {
            map.iter()
                .flatten()
                .filter_map(|(name, q)| {
                    let v = self.positive_quantity(&format!("{path}.{section}.{name}"), q)?;
                    Some((name.clone(), v))
                })
                .collect::<BTreeMap<_, _>>()
        };
        let requests = parse_all("requests", &r.requests);
        let limits = parse_all("limits", &r.limits);
        for (name, request) in &requests {
            if let Some(limit) = limits.get(name)
                && request > limit
            {
                self.fail(
                    format!("{path}.requests.{name}"),
                    format!("must not exceed limits.{name} (Kubernetes refuses a request above its limit)"),
                );
            }
        }
    }

    fn volume(&mut self, path: &str, v: &VolumeClaimSpec) {
        let modes = v.0.access_modes.as_deref().unwrap_or_default();
        self.check(
            !modes.is_empty(),
            format!("{path}.accessModes"),
            "missing accessModes: a volume claim needs at least one access mode, e.g. [ReadWriteOnce]",
        );
        match v.storage() {
            Some(q) => {
                self.positive_quantity(&format!("{path}.resources.requests.storage"), q);
            }
            None => self.fail(
                format!("{path}.resources.requests.storage"),
                "missing storage request: a volume claim needs a size, e.g. 1Gi",
            ),
        }
    }
}

/// Check a cluster against every rule; an empty list means it is valid.
pub fn validate(c: &PostgresCluster) -> Vec<FieldError> {
    let mut k = Checker::default();
    metadata(&mut k, c);
    let spec = &c.spec;
    k.range(
        "spec.postgresVersion",
        Some(spec.postgres_version),
        *super::POSTGRES_MAJORS.start(),
        *super::POSTGRES_MAJORS.end(),
    );
    k.range("spec.port", spec.port, 1024, 65535);
    if let Some(image) = &spec.image {
        k.check(
            !image.trim().is_empty(),
            "spec.image",
            "must not be empty when given",
        );
    }
    for (path, service) in [
        ("spec.service", &spec.service),
        ("spec.replicaService", &spec.replica_service),
    ] {
        if let Some(s) = service {
            exposure(&mut k, path, s);
        }
    }
    instance_sets(&mut k, c);
    if let Some(b) = &spec.backups {
        pgbackrest(&mut k, &b.pgbackrest);
    }
    patroni(&mut k, c);
    config_parameters(&mut k, c);
    config_files(&mut k, c);
    authentication(&mut k, c);
    users(&mut k, spec.users.as_deref().unwrap_or_default());
    tls(&mut k, c);
    sources(&mut k, c);
    k.errors.extend(super::instrumentation::problems(c));
    k.errors
}

/// What only a Service reachable from outside the cluster takes: a node port, an external
/// traffic policy (the API server refuses both on a ClusterIP Service).
fn exposure(k: &mut Checker, path: &str, s: &ServiceSpec) {
    k.range(&format!("{path}.nodePort"), s.node_port, 1, 65535);
    let outside = matches!(
        s.type_,
        Some(ServiceType::NodePort | ServiceType::LoadBalancer)
    );
    for (field, set) in [
        ("nodePort", s.node_port.is_some()),
        ("externalTrafficPolicy", s.external_traffic_policy.is_some()),
    ] {
        k.check(
            !set || outside,
            format!("{path}.{field}"),
            "needs type NodePort or LoadBalancer",
        );
    }
}

fn metadata(k: &mut Checker, c: &PostgresCluster) {
    match c.metadata.name.as_deref() {
        None | Some("") => k.fail("metadata.name", "required: the cluster needs a name"),
        Some(name) => k.dns_label("metadata.name", name),
    }
    if let Some(ns) = &c.metadata.namespace {
        k.dns_label("metadata.namespace", ns);
    }
}

fn instance_sets(k: &mut Checker, c: &PostgresCluster) {
    let sets = &c.spec.instances;
    k.check(
        !sets.is_empty(),
        "spec.instances",
        "at least one instance set is required",
    );
    let mut seen = HashSet::new();
    for (i, set) in sets.iter().enumerate() {
        let path = format!("spec.instances[{i}]");
        instance_set(k, &path, set);
        additional_volumes(k, &path, set, &pod_containers(c, set));
        let name = set_name(set, i);
        if !seen.insert(name.clone()) {
            k.fail(
                format!("{path}.name"),
                format!("duplicate instance set name {name:?}: names must be unique"),
            );
        }
        let combined = c.name().len() + name.len();
        k.check(
            combined <= MAX_CLUSTER_AND_SET_NAME,
            format!("{path}.name"),
            format!(
                "cluster name and set name together must be at most {MAX_CLUSTER_AND_SET_NAME} characters, not {combined}"
            ),
        );
    }
}

fn instance_set(k: &mut Checker, path: &str, set: &InstanceSet) {
    if !set.name.is_empty() {
        k.dns_label(&format!("{path}.name"), &set.name);
    }
    if let Some(r) = set.replicas {
        k.check(
            r >= 1,
            format!("{path}.replicas"),
            format!("must be at least 1, not {r}"),
        );
    }
    if let Some(r) = &set.resources {
        k.resources(&format!("{path}.resources"), r);
    }
    k.volume(
        &format!("{path}.dataVolumeClaimSpec"),
        &set.data_volume_claim_spec,
    );
    if let Some(wal) = &set.wal_volume_claim_spec {
        k.volume(&format!("{path}.walVolumeClaimSpec"), wal);
    }
    if let Some(temp) = set.volumes.as_ref().and_then(|v| v.temp.as_ref()) {
        k.volume(&format!("{path}.volumes.temp"), temp);
    }
    if let Some(min) = &set.min_available {
        min_available(k, &format!("{path}.minAvailable"), min);
    }
    if let Some(pc) = &set.priority_class_name {
        k.dns_label(&format!("{path}.priorityClassName"), pc);
    }
    tablespace_volumes(k, path, set);
    sidecars(
        k,
        &format!("{path}.containers"),
        set.containers.as_ref(),
        INSTANCE_CONTAINERS,
    );
}

/// The containers of an instance's pod on Kubernetes: pgdeck's (the pgBackRest server beside a
/// volume repository, the exporter with monitoring, the collector with instrumentation, the
/// `info` server of a standby or a cluster with cloud repositories only) and the set's sidecars.
fn pod_containers<'a>(c: &PostgresCluster, set: &'a InstanceSet) -> Vec<&'a str> {
    let mut names = vec!["database"];
    if c.repos().iter().any(|r| r.volume.is_some()) {
        names.push("pgbackrest");
    }
    if crate::plan::monitoring::exporter(c).is_some() {
        names.push("exporter");
    }
    if c.spec.instrumentation.is_some() {
        names.push("collector");
    }
    if instance_info(c) {
        names.push("info");
    }
    names.extend(
        set.containers
            .iter()
            .flat_map(|s| s.0.iter().map(|c| c.name.as_str())),
    );
    names
}

/// The longest additional volume name: its pod volume, `volumes-<name>`, is a DNS label.
const MAX_ADDITIONAL_NAME: usize = 55;

fn additional_volumes(k: &mut Checker, path: &str, set: &InstanceSet, containers: &[&str]) {
    let Some(volumes) = &set.volumes else {
        return;
    };
    let mut seen = HashSet::new();
    for (i, v) in volumes.additional.iter().enumerate() {
        let path = format!("{path}.volumes.additional[{i}]");
        k.dns_label(&format!("{path}.name"), &v.name);
        k.check(
            v.name.len() <= MAX_ADDITIONAL_NAME,
            format!("{path}.name"),
            format!(
                "at most {MAX_ADDITIONAL_NAME} characters: it names the pod's volume volumes-<name>"
            ),
        );
        k.check(
            seen.insert(v.name.as_str()),
            format!("{path}.name"),
            format!(
                "duplicate additional volume {:?}: names must be unique in the set",
                v.name
            ),
        );
        let subdomain = !v.claim_name.is_empty()
            && v.claim_name.len() <= 253
            && v.claim_name.split('.').all(|part| dns_label(part).is_ok());
        k.check(
            subdomain,
            format!("{path}.claimName"),
            format!(
                "{:?} is not a PersistentVolumeClaim name (RFC 1123 subdomain)",
                v.claim_name
            ),
        );
        for (j, name) in v.containers.iter().flatten().enumerate() {
            k.check(
                containers.contains(&name.as_str()),
                format!("{path}.containers[{j}]"),
                format!(
                    "the instance's pod has no container {name:?}: it has {}",
                    containers.join(", ")
                ),
            );
        }
    }
}

/// Whether an instance's pod on Kubernetes has an `info` container: a standby's (its WAL
/// receiver, for how far behind it is), and one whose repositories are all in the cloud (no
/// repository host serves what pgBackRest says of them).
pub fn instance_info(c: &PostgresCluster) -> bool {
    let repos = c.repos();
    crate::plan::standby::reported(c.spec.standby.as_ref())
        || (!repos.is_empty() && repos.iter().all(|r| r.volume.is_none()))
}

/// The containers pgdeck puts in an instance's pod, and in pgBouncer's.
const INSTANCE_CONTAINERS: &[&str] = &["database", "pgbackrest", "exporter", "collector", "info"];
const POOLER_CONTAINERS: &[&str] = &["pgbouncer", "collector"];

/// Sidecars: each named (a DNS label, unique, none of pgdeck's own in that pod) with an image,
/// which Kubernetes wants of every container of a workload's pods.
fn sidecars(k: &mut Checker, path: &str, containers: Option<&Sidecars>, ours: &[&str]) {
    let mut seen = HashSet::new();
    for (i, c) in containers.iter().flat_map(|c| c.0.iter()).enumerate() {
        let path = format!("{path}[{i}]");
        k.dns_label(&format!("{path}.name"), &c.name);
        k.check(
            !ours.contains(&c.name.as_str()),
            format!("{path}.name"),
            format!(
                "{:?} is a container pgdeck runs in this pod ({}): name the sidecar otherwise",
                c.name,
                ours.join(", ")
            ),
        );
        k.check(
            seen.insert(c.name.as_str()),
            format!("{path}.name"),
            format!("duplicate container name {:?}", c.name),
        );
        k.check(
            c.image.as_deref().is_some_and(|i| !i.trim().is_empty()),
            format!("{path}.image"),
            "required: a sidecar needs an image",
        );
    }
}

/// The longest tablespace name: its pod volume, `tablespace-<name>`, is a DNS label.
const MAX_TABLESPACE_NAME: usize = 52;

fn tablespace_volumes(k: &mut Checker, path: &str, set: &InstanceSet) {
    let mut seen = HashSet::new();
    for (i, t) in set.tablespace_volumes.iter().enumerate() {
        let path = format!("{path}.tablespaceVolumes[{i}]");
        let name = &t.name;
        let lower_alnum = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        k.check(
            lower_alnum && name.len() <= MAX_TABLESPACE_NAME,
            format!("{path}.name"),
            format!(
                "{name:?} is not a valid tablespace volume name: use 1 to {MAX_TABLESPACE_NAME} lowercase letters and digits, starting with a letter (it names a volume, a label and a directory)"
            ),
        );
        k.check(
            seen.insert(name),
            format!("{path}.name"),
            format!("duplicate tablespace volume {name:?}: names must be unique in the set"),
        );
        k.volume(
            &format!("{path}.dataVolumeClaimSpec"),
            &t.data_volume_claim_spec,
        );
    }
}

fn min_available(
    k: &mut Checker,
    path: &str,
    v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
) {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let ok = match v {
        IntOrString::Int(n) => *n >= 0,
        IntOrString::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<u8>().ok())
            .is_some_and(|p| p <= 100),
    };
    k.check(
        ok,
        path,
        "must be a count of at least 0 or a percentage like 50%",
    );
}

fn pgbackrest(k: &mut Checker, p: &PgBackRest) {
    let base = "spec.backups.pgbackrest";
    k.check(
        !p.repos.is_empty(),
        format!("{base}.repos"),
        "at least one repository is required",
    );
    k.check(
        p.repos.len() <= 4,
        format!("{base}.repos"),
        "at most four repositories (repo1 to repo4)",
    );
    let mut names = HashSet::new();
    for (i, repo) in p.repos.iter().enumerate() {
        let path = format!("{base}.repos[{i}]");
        self::repo(k, &path, repo);
        if !names.insert(repo.name.as_str()) {
            k.fail(
                format!("{path}.name"),
                format!("duplicate repository name {:?}", repo.name),
            );
        }
    }
    let known = |name: &str| p.repos.iter().any(|r| r.name == name);
    if let Some(m) = &p.manual {
        repo_name(
            k,
            &format!("{base}.manual.repoName"),
            &m.repo_name,
            known(&m.repo_name),
        );
        pgbackrest_options(
            k,
            &format!("{base}.manual.options"),
            m.options.as_deref(),
            Command::Backup,
        );
    }
    if let Some(r) = &p.restore {
        repo_name(
            k,
            &format!("{base}.restore.repoName"),
            &r.repo_name,
            known(&r.repo_name),
        );
        pgbackrest_options(
            k,
            &format!("{base}.restore.options"),
            r.options.as_deref(),
            Command::Restore,
        );
    }
    pgbackrest_global(k, &format!("{base}.global"), p.global.as_ref());
}

/// Options of a pgBackRest `[global]` section: each a plain name and a one-line value, so none
/// can add an option or a section of its own.
fn pgbackrest_global(k: &mut Checker, path: &str, global: Option<&BTreeMap<String, String>>) {
    for (key, value) in global.into_iter().flatten() {
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        k.check(
            ok,
            format!("{path}.{key}"),
            "must be a pgBackRest option name (lowercase, digits, dashes), e.g. repo1-retention-full",
        );
        k.check(
            !value.contains(['\n', '\r']),
            format!("{path}.{key}"),
            "must be one line",
        );
    }
}

/// A cloud repository to restore from: one data source at a time, a plain stanza name.
fn pgbackrest_source(k: &mut Checker, c: &PostgresCluster, src: &PgBackRestDataSource) {
    let base = "spec.dataSource.pgbackrest";
    let both = c
        .spec
        .data_source
        .as_ref()
        .is_some_and(|d| d.postgres_cluster.is_some());
    k.check(
        !both,
        base,
        "one data source at a time: spec.dataSource.postgresCluster or spec.dataSource.pgbackrest",
    );
    let stanza = src.stanza();
    k.check(
        !stanza.is_empty()
            && stanza
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        format!("{base}.stanza"),
        format!("must be a stanza name (letters, digits, - and _), not {stanza:?}"),
    );
    repo(k, &format!("{base}.repo"), &src.repo);
    pgbackrest_global(k, &format!("{base}.global"), src.global.as_ref());
    pgbackrest_options(
        k,
        &format!("{base}.options"),
        src.options.as_deref(),
        Command::Restore,
    );
    gcs_source_key(k, base, src);
}

/// pgBackRest reads a GCS bucket with a key (`repoN-gcs-key`, a key file by default) unless
/// it asks the instance's metadata server (`repoN-gcs-key-type: auto`): without files of the
/// data source's, only its `global` can give either, and without them every restore would
/// fail ("restore command requires option: repoN-gcs-key").
fn gcs_source_key(k: &mut Checker, base: &str, src: &PgBackRestDataSource) {
    let files = src.configuration.as_deref().unwrap_or_default();
    if src.repo.gcs.is_none() || !files.is_empty() {
        return;
    }
    let n = &src.repo.name;
    let set = |option: &str| src.global.as_ref()?.get(&format!("{n}-{option}"));
    let keyed = set("gcs-key").is_some() || set("gcs-key-type").is_some_and(|t| t == "auto");
    k.check(
        keyed,
        format!("{base}.configuration"),
        format!(
            "a GCS repository is read with a key: give the data source's files (PGO's gcs.conf \
             and its key file, in a Secret), or {n}-gcs-key or {n}-gcs-key-type: auto in \
             spec.dataSource.pgbackrest.global"
        ),
    );
}

fn repo_name(k: &mut Checker, path: &str, name: &str, exists: bool) {
    if !is_repo_name(name) {
        k.fail(
            path,
            format!("must be repo1, repo2, repo3 or repo4, not {name:?}"),
        );
    } else if !exists {
        k.fail(
            path,
            format!("{name} is not in spec.backups.pgbackrest.repos"),
        );
    }
}

fn is_repo_name(name: &str) -> bool {
    matches!(name, "repo1" | "repo2" | "repo3" | "repo4")
}

fn repo(k: &mut Checker, path: &str, repo: &Repo) {
    k.check(
        is_repo_name(&repo.name),
        format!("{path}.name"),
        format!("must be repo1, repo2, repo3 or repo4, not {:?}", repo.name),
    );
    let kinds = [
        repo.volume.is_some(),
        repo.s3.is_some(),
        repo.gcs.is_some(),
        repo.azure.is_some(),
    ];
    k.check(
        kinds.iter().filter(|&&x| x).count() == 1,
        path,
        "a repository needs exactly one of volume, s3, gcs or azure",
    );
    if let Some(v) = &repo.volume {
        k.volume(
            &format!("{path}.volume.volumeClaimSpec"),
            &v.volume_claim_spec,
        );
    }
    let named = match repo.cloud() {
        Some(Cloud::S3(s3)) => vec![
            ("s3.bucket", &s3.bucket),
            ("s3.endpoint", &s3.endpoint),
            ("s3.region", &s3.region),
        ],
        Some(Cloud::Gcs(gcs)) => vec![("gcs.bucket", &gcs.bucket)],
        Some(Cloud::Azure(azure)) => vec![("azure.container", &azure.container)],
        None => vec![],
    };
    for (field, value) in named {
        k.check(
            !value.is_empty(),
            format!("{path}.{field}"),
            "must not be empty",
        );
    }
    if let Some(s) = &repo.schedules {
        for (field, cron) in [
            ("full", &s.full),
            ("differential", &s.differential),
            ("incremental", &s.incremental),
        ] {
            if let Some(cron) = cron
                && let Err(why) = parse_cron(cron)
            {
                k.fail(format!("{path}.schedules.{field}"), why);
            }
        }
    }
}

/// A schedule in CronJob syntax: five fields, minute to day of week.
pub fn parse_cron(cron: &str) -> Result<croner::Cron, String> {
    let fields = cron.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "{cron:?} is not a cron schedule: it needs five fields (minute hour day-of-month month day-of-week), found {fields}"
        ));
    }
    cron.parse::<croner::Cron>()
        .map_err(|e| format!("{cron:?} is not a cron schedule: {e}"))
}

/// `pgbackrest` options, each one word as PGO's users write them (a shell's quoting), none of
/// pgdeck's own.
fn pgbackrest_options(k: &mut Checker, path: &str, options: Option<&[String]>, command: Command) {
    for (i, opt) in options.unwrap_or_default().iter().enumerate() {
        if let Err(e) = crate::plan::pgbackrest_options::read(opt, command) {
            k.fail(format!("{path}[{i}]"), e);
        }
    }
}

fn patroni(k: &mut Checker, c: &PostgresCluster) {
    let Some(p) = &c.spec.patroni else { return };
    let base = "spec.patroni";
    k.range(&format!("{base}.port"), p.port, 1024, 65535);
    if let Some(v) = p.leader_lease_duration_seconds {
        k.check(
            v >= 3,
            format!("{base}.leaderLeaseDurationSeconds"),
            format!("must be at least 3, not {v}"),
        );
    }
    if let Some(v) = p.sync_period_seconds {
        k.check(
            v >= 1,
            format!("{base}.syncPeriodSeconds"),
            format!("must be at least 1, not {v}"),
        );
    }
    timing(k, p);
    k.check(
        p.port.unwrap_or(super::patroni::DEFAULT_PATRONI_PORT) != c.port(),
        format!("{base}.port"),
        "must differ from spec.port: PostgreSQL and Patroni's REST API cannot share a port",
    );
    if let Some(s) = &p.switchover {
        if let Some(target) = &s.target_instance {
            k.dns_label(&format!("{base}.switchover.targetInstance"), target);
        }
        k.check(
            s.type_ != Some(SwitchoverType::Failover) || s.target_instance.is_some(),
            format!("{base}.switchover.targetInstance"),
            "required when type is Failover: a failover needs the instance to promote",
        );
    }
    if let Some(d) = &p.dynamic_configuration {
        dynamic_configuration(k, &d.0);
    }
    if let Some(logging) = &p.logging {
        log_storage(k, &logging.storage_limit);
    }
}

/// PGO's floor: room for Patroni's log file and the one it rotates to.
fn log_storage(k: &mut Checker, limit: &Quantity) {
    let path = "spec.patroni.logging.storageLimit";
    if let Some(bytes) = k.positive_quantity(path, limit) {
        k.check(
            bytes >= MIN_LOG_STORAGE_BYTES as f64,
            path,
            format!("must be at least 25MB, not {:?}", limit.0),
        );
    }
}

/// Patroni refuses a leader lease that does not outlast its loop.
fn timing(k: &mut Checker, p: &PatroniSpec) {
    let (ttl, loop_wait) = (p.leader_lease_seconds(), p.sync_period_seconds());
    k.check(
        ttl > loop_wait,
        "spec.patroni.leaderLeaseDurationSeconds",
        format!("must be greater than syncPeriodSeconds ({loop_wait}), not {ttl}"),
    );
}

fn dynamic_configuration(k: &mut Checker, d: &serde_json::Map<String, Value>) {
    let base = "spec.patroni.dynamicConfiguration";
    for key in ["synchronous_mode", "synchronous_mode_strict"] {
        if let Some(v) = d.get(key) {
            k.check(
                v.is_boolean(),
                format!("{base}.{key}"),
                format!("must be true or false, not {v}"),
            );
        }
    }
    if d.get("synchronous_mode_strict") == Some(&Value::Bool(true)) {
        k.check(
            d.get("synchronous_mode") == Some(&Value::Bool(true)),
            format!("{base}.synchronous_mode_strict"),
            "needs synchronous_mode: true (strict mode refines synchronous mode)",
        );
    }
    for (key, field) in [
        ("ttl", "leaderLeaseDurationSeconds"),
        ("loop_wait", "syncPeriodSeconds"),
    ] {
        k.check(
            !d.contains_key(key),
            format!("{base}.{key}"),
            format!("is set by spec.patroni.{field}; set that instead"),
        );
    }
    // pgdeck would remove such a slot as one of its own that no standby follows.
    if let Some(Value::Object(slots)) = d.get("slots") {
        for name in slots.keys() {
            k.check(
                !crate::plan::standby_slots::ours(name),
                format!("{base}.slots.{name}"),
                format!(
                    "names starting {} are pgdeck's own slots for standby clusters: choose \
                     another name",
                    crate::plan::standby_slots::PREFIX
                ),
            );
        }
    }
    for key in [
        "retry_timeout",
        "maximum_lag_on_failover",
        "synchronous_node_count",
    ] {
        if let Some(v) = d.get(key) {
            k.check(
                v.is_u64(),
                format!("{base}.{key}"),
                format!("must be a whole number of at least 0, not {v}"),
            );
        }
    }
    let Some(pg) = d.get("postgresql") else {
        return;
    };
    let Some(pg) = pg.as_object() else {
        k.fail(format!("{base}.postgresql"), "must be a mapping");
        return;
    };
    let Some(params) = pg.get("parameters") else {
        return;
    };
    let Some(params) = params.as_object() else {
        k.fail(
            format!("{base}.postgresql.parameters"),
            "must be a mapping of parameter: value",
        );
        return;
    };
    for (name, value) in params {
        let path = format!("{base}.postgresql.parameters.{name}");
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            k.fail(
                &path,
                format!("must be a string, number or boolean, not {value}"),
            );
        }
        parameter(k, &path, name, value.as_str());
    }
}

/// `spec.config.parameters` (PGO 5.8+), held to the rules of the Patroni section's.
fn config_parameters(k: &mut Checker, c: &PostgresCluster) {
    let given = c.spec.config.as_ref().and_then(|c| c.parameters.as_ref());
    for (name, value) in given.into_iter().flatten() {
        let text = match value {
            IntOrString::String(s) => Some(s.as_str()),
            IntOrString::Int(_) => None,
        };
        parameter(k, &format!("spec.config.parameters.{name}"), name, text);
    }
}

/// `spec.config.files` share `/etc/postgres` with PostgreSQL's certificates, under `tls/`: a
/// file there would be two files at one path, which the API server refuses in a pod.
fn config_files(k: &mut Checker, c: &PostgresCluster) {
    let files = c.spec.config.as_ref().and_then(|c| c.files.as_ref());
    for (i, file) in files.into_iter().flatten().enumerate() {
        let items = [
            (
                "secret",
                file.secret.as_ref().and_then(|s| s.items.as_ref()),
            ),
            (
                "configMap",
                file.config_map.as_ref().and_then(|m| m.items.as_ref()),
            ),
        ];
        for (source, items) in items {
            for (j, item) in items.into_iter().flatten().enumerate() {
                let path = item.path.trim_start_matches("./");
                k.check(
                    path != "tls" && !path.starts_with("tls/"),
                    format!("spec.config.files[{i}].{source}.items[{j}].path"),
                    "tls/ under /etc/postgres holds PostgreSQL's certificates",
                );
            }
        }
    }
}

/// One PostgreSQL parameter, wherever it is set: not one pgdeck wires itself, and no line
/// breaks or control characters, which end a postgresql.conf line early.
fn parameter(k: &mut Checker, path: &str, name: &str, text: Option<&str>) {
    if MANAGED_PARAMETERS.contains(&name) {
        k.fail(path, "is managed by pgdeck and cannot be set");
    }
    k.check(
        !text.is_some_and(|t| t.chars().any(char::is_control)),
        path,
        "must not contain line breaks or control characters",
    );
}

/// `spec.authentication.rules`, with PGO's rules, and no character that could end a pg_hba
/// line or token early.
fn authentication(k: &mut Checker, c: &PostgresCluster) {
    let rules = c
        .spec
        .authentication
        .as_ref()
        .and_then(|a| a.rules.as_ref());
    for (i, r) in rules.into_iter().flatten().enumerate() {
        let path = format!("spec.authentication.rules[{i}]");
        let parts = r.connection.is_some()
            || r.databases.is_some()
            || r.method.is_some()
            || r.options.is_some()
            || r.users.is_some();
        if let Some(hba) = &r.hba {
            k.check(
                !parts,
                format!("{path}.hba"),
                "cannot be combined with other fields",
            );
            k.check(
                !hba.is_empty() && hba.len() <= 100 && !hba.chars().any(char::is_control),
                format!("{path}.hba"),
                "must be one line of 1 to 100 printable characters",
            );
            k.check(
                !hba.trim_start().starts_with("include"),
                format!("{path}.hba"),
                "cannot include other files",
            );
            continue;
        }
        for (field, value) in [("connection", &r.connection), ("method", &r.method)] {
            match value {
                None => k.fail(
                    format!("{path}.{field}"),
                    "required: a rule without hba needs connection and method",
                ),
                Some(v) => k.check(
                    !v.is_empty()
                        && v.len() <= 20
                        && v.chars()
                            .all(|ch| matches!(ch, 'a'..='z' | '0'..='9' | '-')),
                    format!("{path}.{field}"),
                    "must be 1 to 20 lowercase letters, digits or hyphens",
                ),
            }
        }
        k.check(
            r.method.as_deref() != Some("trust"),
            format!("{path}.method"),
            "the \"trust\" method is unsafe: it lets anyone in without proof",
        );
        for (field, list) in [("databases", &r.databases), ("users", &r.users)] {
            for (j, name) in list.iter().flatten().enumerate() {
                k.check(
                    !name.is_empty() && name.len() <= 63 && !name.chars().any(char::is_control),
                    format!("{path}.{field}[{j}]"),
                    "must be a name of 1 to 63 characters without control characters",
                );
            }
        }
        let options = r.options.as_ref();
        for (key, value) in options.into_iter().flatten() {
            let text = match value {
                IntOrString::String(s) => s.as_str(),
                IntOrString::Int(_) => "",
            };
            k.check(
                !key.is_empty() && key.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                format!("{path}.options.{key}"),
                "must be an option name: lowercase letters and underscores",
            );
            k.check(
                !text.chars().any(char::is_control),
                format!("{path}.options.{key}"),
                "must not contain line breaks or control characters",
            );
        }
        let has = |key: &str| options.is_some_and(|o| o.contains_key(key));
        match r.method.as_deref() {
            Some("ldap") => k.check(
                ["ldapbasedn", "ldapprefix", "ldapsuffix"].iter().any(|o| has(o)),
                format!("{path}.options"),
                "the \"ldap\" method requires an \"ldapbasedn\", \"ldapprefix\", or \"ldapsuffix\" option",
            ),
            Some("radius") => k.check(
                has("radiusservers") && has("radiussecrets"),
                format!("{path}.options"),
                "the \"radius\" method requires \"radiusservers\" and \"radiussecrets\" options",
            ),
            _ => {}
        }
    }
}

fn users(k: &mut Checker, users: &[UserSpec]) {
    let mut seen = HashSet::new();
    for (i, u) in users.iter().enumerate() {
        let path = format!("spec.users[{i}]");
        k.dns_label(&format!("{path}.name"), &u.name);
        if !seen.insert(&u.name) {
            k.fail(
                format!("{path}.name"),
                format!("duplicate user {:?}", u.name),
            );
        }
        for (j, db) in u.databases.iter().flatten().enumerate() {
            let ok = !db.is_empty() && db.len() <= 63 && !db.contains('\0');
            k.check(
                ok,
                format!("{path}.databases[{j}]"),
                "must be a database name of 1 to 63 characters",
            );
        }
        k.check(
            u.name != REPLICATION_USER,
            format!("{path}.name"),
            format!(
                "{REPLICATION_USER} is reserved: pgdeck replicates and runs pg_rewind as this role, \
                 with a password of its own that a user entry would replace"
            ),
        );
        if let Some(opts) = &u.options {
            user_options(k, &format!("{path}.options"), &u.name, opts);
        }
    }
}

/// `options` are role attributes that pgdeck places into `CREATE/ALTER ROLE`: one clause, no
/// password, nothing that could end the statement or hide the rest of it.
fn user_options(k: &mut Checker, path: &str, user: &str, opts: &str) {
    let upper = opts.to_ascii_uppercase();
    k.check(
        !upper.contains("PASSWORD"),
        path,
        "cannot assign password: pgdeck generates and stores passwords",
    );
    k.check(
        !opts.contains(';') && !opts.contains("--") && !opts.contains("/*"),
        path,
        "must not contain `;`, `--` or `/*`: role attributes are one clause of ALTER ROLE",
    );
    k.check(
        !opts.chars().any(|c| c.is_control() || c == '\\'),
        path,
        "must not contain newlines, control characters or backslashes",
    );
    if user == SUPERUSER {
        let words: Vec<&str> = upper.split_whitespace().collect();
        k.check(
            !words.contains(&"NOSUPERUSER") && !words.contains(&"NOLOGIN"),
            path,
            format!(
                "{SUPERUSER} must stay a superuser that can log in: Patroni and pgdeck manage \
                 the cluster as {SUPERUSER}"
            ),
        );
    }
}

fn tls(k: &mut Checker, c: &PostgresCluster) {
    let spec = &c.spec;
    k.check(
        spec.custom_tls_secret.is_none() || spec.custom_replication_tls_secret.is_some(),
        "spec.customReplicationTLSSecret",
        "required when customTLSSecret is set: both must come from the same CA",
    );
    for (path, secret) in [
        ("spec.customTLSSecret", &spec.custom_tls_secret),
        (
            "spec.customReplicationTLSSecret",
            &spec.custom_replication_tls_secret,
        ),
    ] {
        if let Some(s) = secret {
            k.check(
                !s.name.is_empty(),
                format!("{path}.name"),
                "required: the Secret's name",
            );
        }
    }
    if let Some(sql) = &spec.database_init_sql {
        if sql.name.is_empty() {
            k.fail(
                "spec.databaseInitSQL.name",
                "required: the ConfigMap's name",
            );
        } else if let Err(why) = super::objects::dns_subdomain(&sql.name) {
            k.fail("spec.databaseInitSQL.name", why);
        }
        if sql.key.is_empty() {
            k.fail(
                "spec.databaseInitSQL.key",
                "required: the key in the ConfigMap",
            );
        } else if let Err(why) = super::objects::data_key(&sql.key) {
            k.fail("spec.databaseInitSQL.key", why);
        }
    }
}

fn sources(k: &mut Checker, c: &PostgresCluster) {
    if let Some(src) = c
        .spec
        .data_source
        .as_ref()
        .and_then(|d| d.postgres_cluster.as_ref())
    {
        let base = "spec.dataSource.postgresCluster";
        match &src.cluster_name {
            Some(name) => {
                k.dns_label(&format!("{base}.clusterName"), name);
                let same_namespace =
                    src.cluster_namespace.as_deref().unwrap_or(c.namespace()) == c.namespace();
                k.check(
                    !(name == c.name() && same_namespace),
                    format!("{base}.clusterName"),
                    "a cluster cannot be created from itself; use spec.backups.pgbackrest.restore for an in-place restore",
                );
            }
            None => k.fail(
                format!("{base}.clusterName"),
                "required: the cluster whose repository to restore from",
            ),
        }
        if let Some(ns) = &src.cluster_namespace {
            k.dns_label(&format!("{base}.clusterNamespace"), ns);
        }
        k.check(
            is_repo_name(&src.repo_name),
            format!("{base}.repoName"),
            format!(
                "must be repo1, repo2, repo3 or repo4, not {:?}",
                src.repo_name
            ),
        );
        pgbackrest_options(
            k,
            &format!("{base}.options"),
            src.options.as_deref(),
            Command::Restore,
        );
    }
    if let Some(src) = c
        .spec
        .data_source
        .as_ref()
        .and_then(|d| d.pgbackrest.as_ref())
    {
        pgbackrest_source(k, c, src);
    }
    if let Some(d) = &c.spec.data_source
        && let Some(v) = &d.volumes
    {
        k.check(
            d.postgres_cluster.is_none() && d.pgbackrest.is_none(),
            "spec.dataSource.volumes",
            "the cluster starts from its adopted volumes or from backups, not both",
        );
        for (path, why) in crate::plan::adopt::spec_problems(v) {
            k.fail(path, why);
        }
        k.check(
            v.pg_back_rest_volume.is_none()
                || c.repos().first().is_some_and(|r| r.volume.is_some()),
            "spec.dataSource.volumes.pgBackRestVolume",
            "becomes the first repository's volume: spec.backups.pgbackrest.repos[0] must be \
             a volume repository",
        );
    }
    if let Some(s) = &c.spec.standby
        && s.enabled == Some(true)
    {
        k.check(
            s.repo_name.is_some() || s.host.is_some(),
            "spec.standby",
            "an enabled standby needs repoName or host to follow",
        );
    }
    if let Some(p) = &c.spec.proxy {
        let path = "spec.proxy.pgBouncer";
        k.range(&format!("{path}.port"), p.pg_bouncer.port, 1024, 65535);
        if let Some(r) = &p.pg_bouncer.resources {
            k.resources(&format!("{path}.resources"), r);
        }
        pgbouncer_ini(k, path, p.pg_bouncer.config.as_ref());
        if let Some(s) = &p.pg_bouncer.service {
            exposure(k, &format!("{path}.service"), s);
        }
        sidecars(
            k,
            &format!("{path}.containers"),
            p.pg_bouncer.containers.as_ref(),
            POOLER_CONTAINERS,
        );
    }
}

/// pgBouncer's settings become lines of its ini file: each key a name and each value one line,
/// so none can add a setting or a section of its own.
fn pgbouncer_ini(
    k: &mut Checker,
    path: &str,
    config: Option<&crate::api::addons::PgBouncerConfig>,
) {
    let Some(config) = config else { return };
    let sections = [
        ("global", &config.global),
        ("databases", &config.databases),
        ("users", &config.users),
    ];
    for (section, map) in sections {
        for (key, value) in map.iter().flatten() {
            let at = format!("{path}.config.{section}.{key}");
            let key_ok = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.*".contains(c));
            k.check(
                key_ok,
                &at,
                "a pgBouncer setting, database or user name: letters, digits, _ - . or *",
            );
            k.check(
                !value.contains(['\n', '\r', '\0']),
                &at,
                "one line: pgBouncer reads each setting from a line of its own",
            );
        }
    }
}

/// Rules between the stored manifest and a change to it: volumes may grow but not shrink, and
/// the major version stays (a major upgrade is a new cluster restored from backups).
pub fn validate_update(old: &PostgresCluster, new: &PostgresCluster) -> Vec<FieldError> {
    let mut k = Checker::default();
    k.check(
        old.spec.postgres_version == new.spec.postgres_version,
        "spec.postgresVersion",
        format!(
            "cannot change from {} to {}: a major upgrade needs a new cluster restored from this one's backups",
            old.spec.postgres_version, new.spec.postgres_version
        ),
    );
    for (i, set) in new.spec.instances.iter().enumerate() {
        let name = set_name(set, i);
        let Some(before) = old
            .spec
            .instances
            .iter()
            .enumerate()
            .find(|(j, s)| set_name(s, *j) == name)
        else {
            continue;
        };
        let path = format!("spec.instances[{i}]");
        no_shrink(
            &mut k,
            &format!("{path}.dataVolumeClaimSpec"),
            Some(&before.1.data_volume_claim_spec),
            Some(&set.data_volume_claim_spec),
        );
        no_shrink(
            &mut k,
            &format!("{path}.walVolumeClaimSpec"),
            before.1.wal_volume_claim_spec.as_ref(),
            set.wal_volume_claim_spec.as_ref(),
        );
        tablespaces_stay(&mut k, &path, before.1, set);
    }
    for (i, repo) in new.repos().iter().enumerate() {
        let Some(before) = old.repos().iter().find(|r| r.name == repo.name) else {
            continue;
        };
        no_shrink(
            &mut k,
            &format!("spec.backups.pgbackrest.repos[{i}].volume.volumeClaimSpec"),
            before.volume.as_ref().map(|v| &v.volume_claim_spec),
            repo.volume.as_ref().map(|v| &v.volume_claim_spec),
        );
    }
    k.errors
}

/// A tablespace volume, once there, stays and never shrinks: PostgreSQL's tablespace lives on
/// it, and would be cut off from its data if the volume were no longer mounted.
fn tablespaces_stay(k: &mut Checker, path: &str, old: &InstanceSet, new: &InstanceSet) {
    for before in &old.tablespace_volumes {
        match new
            .tablespace_volumes
            .iter()
            .enumerate()
            .find(|(_, t)| t.name == before.name)
        {
            Some((i, t)) => no_shrink(
                k,
                &format!("{path}.tablespaceVolumes[{i}].dataVolumeClaimSpec"),
                Some(&before.data_volume_claim_spec),
                Some(&t.data_volume_claim_spec),
            ),
            None => k.fail(
                format!("{path}.tablespaceVolumes"),
                format!(
                    "cannot remove tablespace volume {:?}: a tablespace's data lives on it; drop the tablespace in PostgreSQL and keep the volume, or move the data to a new set",
                    before.name
                ),
            ),
        }
    }
}

fn no_shrink(
    k: &mut Checker,
    path: &str,
    old: Option<&VolumeClaimSpec>,
    new: Option<&VolumeClaimSpec>,
) {
    let size = |v: Option<&VolumeClaimSpec>| {
        v.and_then(|v| v.storage())
            .map(|q| (q.0.clone(), quantity::value(q)))
    };
    if let (Some((old_text, Ok(old))), Some((new_text, Ok(new)))) = (size(old), size(new))
        && new < old
    {
        k.fail(
            format!("{path}.resources.requests.storage"),
            format!("shrinking a volume is not possible: {new_text} is smaller than the current {old_text}; volumes may only grow"),
        );
    }
}

/// RFC 1123 label: what Kubernetes allows for names that become hostnames.
pub fn dns_label(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (RFC 1123)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors `validate` finds in a one-instance cluster with `users` (YAML flow syntax).
    fn errors(users: &str) -> Vec<String> {
        spec_errors(&format!("users: {users}"))
    }

    /// The errors `validate` finds in a one-instance cluster with one more line of spec.
    fn spec_errors(line: &str) -> Vec<String> {
        let text = format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c}}\n\
             spec:\n  postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec:\n        \
             accessModes: [ReadWriteOnce]\n        resources: {{requests: {{storage: 1Gi}}}}\n  \
             {line}\n"
        );
        let c: PostgresCluster = serde_yaml::from_str(&text).unwrap();
        validate(&c).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_cloud_repository_names_its_bucket_or_container() {
        let repos = spec_errors(
            "backups: {pgbackrest: {repos: [{name: repo1, gcs: {bucket: ''}}, {name: repo2, azure: {container: ''}}, {name: repo3, s3: {bucket: b, endpoint: '', region: r}}]}}",
        );
        let said = |path: &str| {
            repos
                .iter()
                .any(|e| e.contains(path) && e.contains("must not be empty"))
        };
        for path in [
            "spec.backups.pgbackrest.repos[0].gcs.bucket",
            "spec.backups.pgbackrest.repos[1].azure.container",
            "spec.backups.pgbackrest.repos[2].s3.endpoint",
        ] {
            assert!(said(path), "{path}: {repos:?}");
        }
        assert!(spec_errors("backups: {pgbackrest: {repos: [{name: repo1, gcs: {bucket: b}}, {name: repo2, azure: {container: c}}]}}").is_empty());
    }

    #[test]
    fn config_files_stay_out_of_the_certificates_directory() {
        let files = |items: &str| {
            spec_errors(&format!(
                "config: {{files: [{{configMap: {{name: conf}}}}, {{secret: {{name: s, items: {items}}}}}]}}"
            ))
        };
        assert!(files("[{key: a, path: ldap/ca.crt}, {key: b, path: tlsa}]").is_empty());
        for path in ["tls", "tls/server/tls.key", "./tls/x"] {
            let errors = files(&format!("[{{key: k, path: {path}}}]"));
            assert_eq!(
                errors,
                [
                    "spec.config.files[1].secret.items[0].path: tls/ under /etc/postgres \
                  holds PostgreSQL's certificates"
                ],
                "{path}"
            );
        }
    }

    #[test]
    fn pgbouncer_settings_are_one_line_each_under_a_plain_name() {
        let global = |g: &str| {
            spec_errors(&format!(
                "proxy: {{pgBouncer: {{config: {{global: {g}}}}}}}"
            ))
        };
        assert!(global("{pool_mode: transaction, max_client_conn: '500'}").is_empty());
        let injected = global("{pool_mode: \"transaction\\nauth_type = trust\"}");
        assert!(
            injected.len() == 1
                && injected[0]
                    .starts_with("spec.proxy.pgBouncer.config.global.pool_mode: one line"),
            "{injected:?}"
        );
        let section = global("{'x]\\n[databases': y}");
        assert_eq!(section.len(), 1, "{section:?}");
        let users =
            spec_errors("proxy: {pgBouncer: {config: {users: {'a b': 'pool_mode=session'}}}}");
        assert_eq!(users.len(), 1, "{users:?}");
    }

    #[test]
    fn a_restore_command_of_ones_own_is_refused() {
        let source = |options: &str| {
            spec_errors(&format!(
                "dataSource: {{postgresCluster: {{clusterName: o, repoName: repo1, options: {options}}}}}"
            ))
        };
        assert!(
            source("['--type=time', '--recovery-option=recovery_min_apply_delay=1']").is_empty()
        );
        let e = source(r#"['--recovery-option="restore_command=cp /x %p"']"#);
        assert!(
            e.len() == 1
                && e[0].starts_with(
                    "spec.dataSource.postgresCluster.options[0]: restore_command is set by pgdeck"
                ),
            "{e:?}"
        );
        let apart = source("['--recovery-option', 'restore_command=/x']");
        assert!(
            apart.len() == 1 && apart[0].contains("is not a pgbackrest option"),
            "{apart:?}"
        );
    }

    #[test]
    fn pgbackrest_options_are_read_as_pgo_s_shell_reads_them_one_word_each() {
        let source = |options: &str| {
            spec_errors(&format!(
                "dataSource: {{postgresCluster: {{clusterName: o, repoName: repo1, options: {options}}}}}"
            ))
        };
        assert_eq!(
            source(r#"['--type=time', '--target="2021-06-09 14:15:11-04"']"#),
            Vec::<String>::new()
        );
        assert_eq!(
            source("['--type=time', '--type=time --target=x']"),
            [
                "spec.dataSource.postgresCluster.options[1]: is more than one word to a shell: give each option its own entry"
            ]
        );
        let in_place = spec_errors(
            "backups: {pgbackrest: {repos: [{name: repo1}], restore: {enabled: true, repoName: repo1, options: ['--target=$(id)']}}}",
        );
        assert!(
            in_place.iter().any(|e| e.starts_with(
                "spec.backups.pgbackrest.restore.options[0]: '$' outside single quotes is expanded by a shell"
            )),
            "{in_place:?}"
        );
        let manual = spec_errors(
            "backups: {pgbackrest: {repos: [{name: repo1, volume: {volumeClaimSpec: {accessModes: [ReadWriteOnce], \
             resources: {requests: {storage: 1Gi}}}}}], manual: {repoName: repo1, options: ['--type=incr', '--repo=2']}}}",
        );
        assert_eq!(
            manual,
            [
                "spec.backups.pgbackrest.manual.options[1]: --repo is set by pgdeck and cannot be given"
            ]
        );
    }

    #[test]
    fn a_cloud_source_is_one_plain_stanza_one_repository_and_one_line_options() {
        let cloud = |fields: &str| {
            spec_errors(&format!(
                "dataSource: {{pgbackrest: {{repo: {{name: repo1, s3: {{bucket: b, endpoint: e, region: r}}}}{fields}}}}}"
            ))
        };
        assert!(cloud("").is_empty(), "{:?}", cloud(""));
        assert!(cloud(", stanza: hippo_old-2, global: {repo1-path: /x}").is_empty());
        assert_eq!(
            cloud(", stanza: 'db] [global'"),
            [
                "spec.dataSource.pgbackrest.stanza: must be a stanza name (letters, digits, - and _), not \"db] [global\""
            ]
        );
        assert_eq!(
            cloud(", global: {repo1-path: \"/x\\nrepo1-type=posix\"}"),
            ["spec.dataSource.pgbackrest.global.repo1-path: must be one line"]
        );
        assert_eq!(
            cloud(", options: ['--config-include-path=/etc/pgbackrest-conf.d']"),
            [
                "spec.dataSource.pgbackrest.options[0]: --config-include-path is set by pgdeck and cannot be given"
            ]
        );
        let two = spec_errors(
            "dataSource: {postgresCluster: {clusterName: o, repoName: repo1}, pgbackrest: {repo: {name: repo1, s3: {bucket: b, endpoint: e, region: r}}}}",
        );
        assert_eq!(
            two,
            [
                "spec.dataSource.pgbackrest: one data source at a time: spec.dataSource.postgresCluster or spec.dataSource.pgbackrest"
            ]
        );
        let gcs = |fields: &str| {
            spec_errors(&format!(
                "dataSource: {{pgbackrest: {{repo: {{name: repo2, gcs: {{bucket: b}}}}{fields}}}}}"
            ))
        };
        assert_eq!(
            gcs(""),
            [
                "spec.dataSource.pgbackrest.configuration: a GCS repository is read with a key: give the data source's files (PGO's gcs.conf and its key file, in a Secret), or repo2-gcs-key or repo2-gcs-key-type: auto in spec.dataSource.pgbackrest.global"
            ]
        );
        assert_eq!(
            gcs(", global: {repo1-gcs-key-type: auto}").len(),
            1,
            "another repository's"
        );
        assert_eq!(gcs(", global: {repo2-gcs-key-type: service}").len(), 1);
        for keyed in [
            ", configuration: [{secret: {name: pgo-gcs-creds}}]",
            ", global: {repo2-gcs-key-type: auto}",
            ", global: {repo2-gcs-key-type: token, repo2-gcs-key: t}",
        ] {
            assert!(gcs(keyed).is_empty(), "{keyed}: {:?}", gcs(keyed));
        }
        let nothing = spec_errors("dataSource: {pgbackrest: {repo: {name: repo5}}}");
        assert_eq!(nothing.len(), 2, "{nothing:?}");
        assert!(nothing[0].starts_with("spec.dataSource.pgbackrest.repo.name: must be repo1"));
        assert!(
            nothing[1]
                .starts_with("spec.dataSource.pgbackrest.repo: a repository needs exactly one of")
        );
    }

    #[test]
    fn adopted_volumes_name_plain_directories_and_one_role_each() {
        let e = spec_errors(
            "dataSource: {volumes: {pgDataVolume: {pvcName: old, directory: 'old; rm -rf /'}}}",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("spec.dataSource.volumes.pgDataVolume.directory: may hold only"),
            "{e:?}"
        );
        let e = spec_errors(
            "dataSource: {volumes: {pgDataVolume: {pvcName: old, directory: ../x}, pgWALVolume: {pvcName: old}}}",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[1].starts_with("spec.dataSource.volumes.pgWALVolume.pvcName: old is named"));
        assert!(
            spec_errors("dataSource: {volumes: {pgDataVolume: {pvcName: old, directory: oldhippo}, pgWALVolume: {pvcName: old-wal}}}")
                .is_empty()
        );
        let e = spec_errors(
            "dataSource: {volumes: {pgDataVolume: {pvcName: d}, pgBackRestVolume: {pvcName: r}}}",
        );
        assert_eq!(
            e,
            [
                "spec.dataSource.volumes.pgBackRestVolume: becomes the first repository's volume: spec.backups.pgbackrest.repos[0] must be a volume repository"
            ]
        );
    }

    #[test]
    fn slot_names_of_pgdecks_own_are_refused() {
        let e = spec_errors(
            "patroni: {dynamicConfiguration: {slots: {pgdeck_standby_x: {type: physical}, mine: {type: physical}}}}",
        );
        assert!(
            e.len() == 1
                && e[0].starts_with("spec.patroni.dynamicConfiguration.slots.pgdeck_standby_x:"),
            "{e:?}"
        );
    }

    #[test]
    fn patroni_log_storage_is_at_least_25mb() {
        let limit = |q: &str| spec_errors(&format!("patroni: {{logging: {{storageLimit: {q}}}}}"));
        for ok in ["25M", "24Mi", "1Gi", "25000000"] {
            assert_eq!(limit(ok), Vec::<String>::new(), "{ok}");
        }
        for small in ["23Mi", "24999999", "0"] {
            let e = limit(small);
            assert!(
                e.len() == 1 && e[0].starts_with("spec.patroni.logging.storageLimit"),
                "{small}: {e:?}"
            );
        }
        assert!(limit("lots")[0].contains("not a quantity"));
    }

    #[test]
    fn role_attributes_are_accepted() {
        let ok = r#"[{name: app, options: "CREATEDB CONNECTION LIMIT 5 VALID UNTIL '2030-01-01'"}, {name: postgres, options: SUPERUSER}]"#;
        assert_eq!(errors(ok), Vec::<String>::new());
    }

    #[test]
    fn options_that_could_end_or_hide_the_statement_are_refused() {
        for (options, rule) in [
            ("'CREATEDB; DROP TABLE t'", "must not contain `;`"),
            ("'CREATEDB -- rest'", "must not contain `;`, `--`"),
            ("'CREATEDB /* rest */'", "or `/*`"),
            (r#""CREATEDB\nSUPERUSER""#, "must not contain newlines"),
            (r#""CREATEDB\tSUPERUSER""#, "control characters"),
            (r#""CREATEDB\e[2J""#, "control characters"),
            (r#"'CREATEDB \! sh'"#, "backslashes"),
        ] {
            let errs = errors(&format!("[{{name: app, options: {options}}}]"));
            assert!(
                errs.iter()
                    .any(|e| e.contains("spec.users[0].options") && e.contains(rule)),
                "{options}: {errs:?}"
            );
        }
    }

    #[test]
    fn internal_roles_are_reserved_and_the_superuser_stays_one() {
        let errs = errors("[{name: replicator}]");
        assert!(
            errs.iter()
                .any(|e| e.contains("spec.users[0].name") && e.contains("reserved")),
            "{errs:?}"
        );
        for options in ["NOSUPERUSER", "nologin"] {
            let errs = errors(&format!("[{{name: postgres, options: {options}}}]"));
            assert!(
                errs.iter()
                    .any(|e| e.contains("spec.users[0].options")
                        && e.contains("must stay a superuser")),
                "{options}: {errs:?}"
            );
        }
        // Anyone else may be a plain role.
        assert_eq!(
            errors("[{name: app, options: NOSUPERUSER}]"),
            Vec::<String>::new()
        );
    }

    /// The one error of `errors`, which must start with `prefix`.
    fn one_error(errors: Vec<FieldError>, prefix: &str) -> String {
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            all.len() == 1 && all[0].starts_with(prefix),
            "expected one error starting {prefix:?}: {all:?}"
        );
        all[0].clone()
    }

    /// A one-set cluster whose set has these tablespace volumes (YAML flow list).
    fn with_tablespaces(volumes: &str) -> PostgresCluster {
        let text = format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c}}\n\
             spec:\n  postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec:\n        \
             accessModes: [ReadWriteOnce]\n        resources: {{requests: {{storage: 1Gi}}}}\n      \
             tablespaceVolumes: {volumes}\n"
        );
        serde_yaml::from_str(&text).unwrap()
    }

    fn tablespace(name: &str, size: &str) -> String {
        format!(
            "{{name: {name}, dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: {size}}}}}}}}}"
        )
    }

    #[test]
    fn tablespace_volumes_have_unique_plain_names_and_a_size() {
        let ok = format!(
            "[{}, {}]",
            tablespace("fast", "1Gi"),
            tablespace("archive2", "5Gi")
        );
        assert_eq!(validate(&with_tablespaces(&ok)), Vec::<FieldError>::new());
        let long = "a".repeat(53);
        for (bad, rule) in [
            ("Fast", "not a valid tablespace volume name"),
            ("'2fast'", "not a valid tablespace volume name"),
            ("fa-st", "not a valid tablespace volume name"),
            ("'../x'", "not a valid tablespace volume name"),
            ("''", "not a valid tablespace volume name"),
            (long.as_str(), "1 to 52 lowercase letters"),
        ] {
            let list = format!("[{}]", tablespace(bad, "1Gi"));
            let error = one_error(
                validate(&with_tablespaces(&list)),
                "spec.instances[0].tablespaceVolumes[0].name: ",
            );
            assert!(error.contains(rule), "{bad}: {error}");
        }
        let twice = format!(
            "[{}, {}]",
            tablespace("fast", "1Gi"),
            tablespace("fast", "2Gi")
        );
        one_error(
            validate(&with_tablespaces(&twice)),
            "spec.instances[0].tablespaceVolumes[1].name: duplicate",
        );
        let no_size = "[{name: fast, dataVolumeClaimSpec: {accessModes: [ReadWriteOnce]}}]";
        one_error(
            validate(&with_tablespaces(no_size)),
            "spec.instances[0].tablespaceVolumes[0].dataVolumeClaimSpec.resources.requests.storage: missing",
        );
    }

    #[test]
    fn a_temporary_volume_is_a_claim_with_a_size() {
        let with_temp = |temp: &str| -> PostgresCluster {
            let text = format!(
                "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c}}\n\
                 spec:\n  postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec:\n        \
                 accessModes: [ReadWriteOnce]\n        resources: {{requests: {{storage: 1Gi}}}}\n      \
                 volumes: {{temp: {temp}}}\n"
            );
            serde_yaml::from_str(&text).unwrap()
        };
        let sized = "{accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}";
        assert!(validate(&with_temp(sized)).is_empty());
        one_error(
            validate(&with_temp("{accessModes: [ReadWriteOnce]}")),
            "spec.instances[0].volumes.temp.resources.requests.storage: missing",
        );
    }

    #[test]
    fn a_tablespace_volume_may_grow_but_never_shrink_nor_go() {
        let old = with_tablespaces(&format!(
            "[{}, {}]",
            tablespace("a", "2Gi"),
            tablespace("b", "1Gi")
        ));
        let grown = with_tablespaces(&format!(
            "[{}, {}, {}]",
            tablespace("b", "1Gi"),
            tablespace("a", "3Gi"),
            tablespace("c", "1Gi")
        ));
        assert_eq!(validate_update(&old, &grown), Vec::<FieldError>::new());
        let shrunk = with_tablespaces(&format!(
            "[{}, {}]",
            tablespace("b", "1Gi"),
            tablespace("a", "1Gi")
        ));
        one_error(
            validate_update(&old, &shrunk),
            "spec.instances[0].tablespaceVolumes[1].dataVolumeClaimSpec.resources.requests.storage: shrinking",
        );
        let gone = with_tablespaces(&format!("[{}]", tablespace("a", "2Gi")));
        one_error(
            validate_update(&old, &gone),
            "spec.instances[0].tablespaceVolumes: cannot remove tablespace volume \"b\"",
        );
    }
}
