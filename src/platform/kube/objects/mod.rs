//! Every Kubernetes object of a cluster, rendered from its manifest: pure functions of the
//! manifest and a few inputs (the instances that exist, the Secrets that hold generated
//! passwords and certificates). `pgdeck render` prints them; the reconciler applies them.

mod adopt;
mod backups;
mod budgets;
mod collector;
mod exporter;
mod init_sql;
mod instances;
mod network;
mod pgbouncer;
mod pods;
mod rbac;
mod restore;
mod secrets;
mod services;
mod tls;
mod users;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use super::names::{self, Names};
use crate::api::PostgresCluster;
use crate::api::backups::PgBackRest;
use crate::api::cluster::Metadata;

pub use self::adopt::{Adopted, COMPONENT as MOVE_DIR, job_name as move_job};
pub use self::backups::ManualBackup;
pub use self::init_sql::InitSql;
pub use self::instances::Instance;
pub use self::pgbouncer::port as pgbouncer_port;
pub use self::restore::{
    CONFIG_FILE as RESTORE_CONFIG_FILE, KEPT_VOLUME, RestoreFrom, kept_path,
    problem as restore_problem,
};
pub use self::tls::TlsError;

/// What rendering needs beyond the manifest.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// The instances to run, each `<cluster>-<set>-<suffix>` with its set.
    pub instances: Vec<Instance>,
    /// The data of the cluster's Secrets that exist, by name: passwords and certificates are
    /// generated once and kept.
    pub secrets: BTreeMap<String, BTreeMap<String, ByteString>>,
    /// The cluster's UID, for owner references; unknown when rendering a file.
    pub owner_uid: Option<String>,
    /// The first full backup was taken: its Job is not wanted again.
    pub initial_backup_done: bool,
    /// A manual backup to start (its Job does not exist yet).
    pub manual_backup: Option<ManualBackup>,
    /// Where a clone (`spec.dataSource.postgresCluster`) restores from.
    pub restore_from: RestoreFrom,
    /// Init SQL to run (its Job does not exist yet).
    pub init_sql: Option<InitSql>,
    /// The volumes adopted from `spec.dataSource.volumes`, once they are the cluster's.
    pub adopted: Option<Adopted>,
}

/// A cluster's objects, by kind, in the order they are applied: as rendered, or as listed.
#[derive(Debug, Default, Clone)]
pub struct Objects {
    pub secrets: Vec<Secret>,
    pub config_maps: Vec<ConfigMap>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub services: Vec<Service>,
    pub network_policies: Vec<NetworkPolicy>,
    pub volumes: Vec<PersistentVolumeClaim>,
    pub stateful_sets: Vec<StatefulSet>,
    pub deployments: Vec<Deployment>,
    pub budgets: Vec<PodDisruptionBudget>,
    pub jobs: Vec<Job>,
    pub cron_jobs: Vec<CronJob>,
}

/// Render every object of `cluster`.
pub fn render(cluster: &PostgresCluster, inputs: &Inputs) -> Result<Objects, TlsError> {
    let ctx = Ctx::new(cluster, inputs);
    let mut out = Objects {
        secrets: secrets::render(&ctx)?,
        service_accounts: rbac::accounts(&ctx),
        roles: rbac::roles(&ctx),
        role_bindings: rbac::bindings(&ctx),
        services: services::render(&ctx),
        network_policies: vec![network::render(&ctx)],
        budgets: budgets::render(&ctx),
        ..Default::default()
    };
    for instance in &inputs.instances {
        let parts = instances::render(&ctx, instance);
        out.config_maps.push(parts.config);
        out.volumes.extend(parts.volumes);
        out.stateful_sets.push(parts.stateful_set);
    }
    if let Some(b) = backups::render(&ctx) {
        out.config_maps.push(b.config);
        out.volumes.extend(b.volumes);
        out.stateful_sets.extend(b.repo_host);
        out.jobs.extend(b.initial_backup);
        out.jobs.extend(b.manual_backup);
        out.cron_jobs.extend(b.schedules);
    }
    out.secrets.extend(exporter::secret_of(&ctx));
    out.config_maps.extend(exporter::web_config(&ctx));
    if let Some(p) = pgbouncer::render(&ctx, &out.secrets) {
        out.config_maps.push(p.config);
        out.deployments.push(p.deployment);
        out.services.push(p.service);
        out.budgets.extend(p.budget);
    }
    out.jobs.extend(adopt::jobs(&ctx));
    out.jobs.push(users::render(&ctx, &out.secrets));
    out.jobs.extend(
        inputs
            .init_sql
            .as_ref()
            .map(|sql| init_sql::render(&ctx, sql)),
    );
    out.stamp();
    Ok(out)
}

/// Run `$body` with `$o` bound to each object of `$objects` (`iter` or `iter_mut`), kind by kind.
macro_rules! each_object {
    ($objects:expr, $iter:ident, |$o:ident| $body:expr) => {{
        let objects = $objects;
        for $o in objects.secrets.$iter() {
            $body
        }
        for $o in objects.config_maps.$iter() {
            $body
        }
        for $o in objects.service_accounts.$iter() {
            $body
        }
        for $o in objects.roles.$iter() {
            $body
        }
        for $o in objects.role_bindings.$iter() {
            $body
        }
        for $o in objects.services.$iter() {
            $body
        }
        for $o in objects.network_policies.$iter() {
            $body
        }
        for $o in objects.volumes.$iter() {
            $body
        }
        for $o in objects.stateful_sets.$iter() {
            $body
        }
        for $o in objects.deployments.$iter() {
            $body
        }
        for $o in objects.budgets.$iter() {
            $body
        }
        for $o in objects.jobs.$iter() {
            $body
        }
        for $o in objects.cron_jobs.$iter() {
            $body
        }
    }};
}

impl Objects {
    /// Every object as YAML documents, for `pgdeck render`.
    pub fn to_yaml(&self) -> String {
        let mut docs: Vec<String> = Vec::new();
        each_object!(self, iter, |o| docs
            .push(serde_yaml::to_string(o).expect("an object serializes")));
        docs.join("---\n")
    }

    /// Annotate each object with a digest of itself, so the reconciler tells at a glance that
    /// an object is as last written.
    fn stamp(&mut self) {
        each_object!(self, iter_mut, |o| stamp(o));
    }
}

fn stamp<K: Resource + serde::Serialize>(object: &mut K) {
    let digest = names::digest(&serde_json::to_vec(object).expect("an object serializes"));
    object
        .meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(names::HASH.into(), digest);
}

/// What every renderer shares: the cluster, its names, and how its objects are labelled.
struct Ctx<'a> {
    cluster: &'a PostgresCluster,
    inputs: &'a Inputs,
    names: Names<'a>,
}

impl<'a> Ctx<'a> {
    fn new(cluster: &'a PostgresCluster, inputs: &'a Inputs) -> Ctx<'a> {
        Ctx {
            cluster,
            inputs,
            names: Names::new(cluster.name(), cluster.namespace()),
        }
    }

    /// The labels that select the cluster's objects.
    fn labels(&self) -> BTreeMap<String, String> {
        [
            (names::CLUSTER.to_string(), self.cluster.name().to_string()),
            (names::MANAGED_BY.0.into(), names::MANAGED_BY.1.into()),
        ]
        .into()
    }

    fn labels_with(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut labels = self.labels();
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        labels
    }

    /// An object's metadata: the DBA's `spec.metadata` labels and annotations under ours, and
    /// the cluster as its owner.
    fn meta(&self, name: impl Into<String>, labels: BTreeMap<String, String>) -> ObjectMeta {
        let (user_labels, annotations) = user_metadata(self.cluster.spec.metadata.as_ref());
        let mut all = user_labels;
        all.extend(labels);
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.cluster.namespace().to_string()),
            labels: Some(all),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: self.owner().map(|o| vec![o]),
            ..Default::default()
        }
    }

    /// A volume's metadata: labelled with the cluster's UID, so that it stays the cluster's
    /// without an owner reference; and with none while the cluster says to keep it
    /// (`pgdeck.dev/keep-data`, `pgdeck.dev/keep-backups`), so that no deletion of the cluster
    /// (foreground, by Argo CD, ...) can take it before the finalizer runs.
    fn volume_meta(
        &self,
        name: impl Into<String>,
        mut labels: BTreeMap<String, String>,
        keep: bool,
    ) -> ObjectMeta {
        if let Some(uid) = &self.inputs.owner_uid {
            labels.insert(names::CLUSTER_UID.into(), uid.clone());
        }
        let mut meta = self.meta(name, labels);
        if keep {
            meta.owner_references = None;
        }
        meta
    }

    /// Whether the cluster says to keep `annotation`'s volumes.
    fn keeps(&self, annotation: &str) -> bool {
        crate::actions::flag(self.cluster, annotation)
    }

    fn owner(&self) -> Option<OwnerReference> {
        Some(OwnerReference {
            api_version: PostgresCluster::api_version(&()).into(),
            kind: PostgresCluster::kind(&()).into(),
            name: self.cluster.name().to_string(),
            uid: self.inputs.owner_uid.clone()?,
            controller: Some(true),
            block_owner_deletion: None,
        })
    }

    /// `spec.backups.pgbackrest`, or its defaults.
    fn pgbackrest(&self) -> PgBackRest {
        self.cluster
            .spec
            .backups
            .as_ref()
            .map(|b| b.pgbackrest.clone())
            .unwrap_or_default()
    }

    fn image(&self) -> String {
        self.cluster
            .spec
            .image
            .clone()
            .unwrap_or_else(|| default_image(self.cluster.spec.postgres_version))
    }

    fn pull_policy(&self) -> Option<String> {
        self.cluster
            .spec
            .image_pull_policy
            .map(|p| format!("{p:?}"))
    }
}

/// Labels and annotations from a `metadata` section of the spec.
fn user_metadata(m: Option<&Metadata>) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let m = m.cloned().unwrap_or_default();
    (
        m.labels.unwrap_or_default(),
        m.annotations.unwrap_or_default(),
    )
}

/// The instance image `operator/images/postgres/Dockerfile` builds, one tag per major version.
pub fn default_image(postgres_version: i32) -> String {
    format!("{DEFAULT_IMAGE}:{postgres_version}")
}

pub const DEFAULT_IMAGE: &str = "ghcr.io/pgdeck/postgres";

/// Where things are in an instance or repository host pod.
pub mod paths {
    pub const DATA: &str = "/pgdata";
    pub const WAL: &str = "/pgwal";
    /// The volume for temporary files (`volumes.temp`), at PGO's path.
    pub const TEMP: &str = "/pgtmp";
    /// Patroni's own log files (`spec.patroni.logging`), on the data volume as PGO keeps them.
    pub const PATRONI_LOG: &str = "/pgdata/patroni/log";
    pub const PATRONI_CONFIG: &str = "/etc/patroni";
    pub const PGBACKREST_CONFIG_DIR: &str = "/etc/pgbackrest";
    pub const PGBACKREST_CONFIG: &str = "/etc/pgbackrest/pgbackrest.conf";
    pub const PGBACKREST_TLS: &str = "/etc/pgbackrest/tls";
    /// A restore's source cluster's pgBackRest certificate.
    pub const PGBACKREST_SOURCE_TLS: &str = "/etc/pgbackrest-source";
    /// A cloud data source's pgBackRest files (`spec.dataSource.pgbackrest.configuration`).
    pub const PGBACKREST_SOURCE_INCLUDE: &str = "/etc/pgbackrest-source-conf.d";
    /// The restore's copies of that data source's `.conf` files (see `restore`).
    pub const PGBACKREST_SOURCE_COPY: &str = "/etc/pgbackrest-source-copy";
    /// The DBA's extra pgBackRest files (`spec.backups.pgbackrest.configuration`), at PGO's
    /// path: PGO's documented `repo1-gcs-key=/etc/pgbackrest/conf.d/gcs-key.json` names one.
    /// The kubelet makes its mount point in the read-only volume at `PGBACKREST_CONFIG_DIR`.
    pub const PGBACKREST_INCLUDE: &str = "/etc/pgbackrest/conf.d";
    /// Patroni's REST API: its certificate, key, and the cluster's Patroni CA.
    pub const PATRONI_TLS: &str = "/etc/patroni-tls";
    /// PGO's directory of the DBA's files (`spec.config.files`), our certificates under `tls/`.
    pub const POSTGRES_CONFIG: &str = "/etc/postgres";
    pub const POSTGRES_TLS: &str = "/etc/postgres/tls";
    pub const SERVER_TLS: &str = "/etc/postgres/tls/server";
    pub const REPLICATION_TLS: &str = "/etc/postgres/tls/replication";
    pub const TMP: &str = "/tmp";
    pub const REPOS: &str = "/pgbackrest";
    /// The repository host's `pgbackrest info` for the operator, served over HTTP.
    pub const REPO_INFO: &str = "/pgdeck-info";

    pub fn data_dir(version: i32) -> String {
        format!("{DATA}/pg{version}")
    }
    pub fn wal_dir(version: i32) -> String {
        format!("{WAL}/pg{version}_wal")
    }
    pub fn bin_dir(version: i32) -> String {
        format!("/usr/lib/postgresql/{version}/bin")
    }
    pub fn repo(name: &str) -> String {
        format!("{REPOS}/{name}")
    }
    /// Where tablespace volumes are mounted (PGO's path).
    pub const TABLESPACES: &str = "/tablespaces";
    pub fn tablespace(name: &str) -> String {
        crate::plan::tablespaces::volume(TABLESPACES, name)
    }
    /// The directory on it for `CREATE TABLESPACE ... LOCATION`.
    pub fn tablespace_data(name: &str) -> String {
        crate::plan::tablespaces::location(TABLESPACES, name)
    }
}

/// The account the instance image runs PostgreSQL as (its Dockerfile creates it).
const POSTGRES_UID: i64 = 26;
/// pgBackRest's TLS server port.
const PGBACKREST_PORT: i32 = 8432;
/// The repository host's port serving `pgbackrest info --output=json` as [`REPO_INFO_FILE`],
/// for the operator to read through the pod proxy.
pub const REPO_INFO_PORT: i32 = 8009;
pub const REPO_INFO_FILE: &str = "info.json";
