//! The PostgresCluster resource: its types, how manifests are read, and the rules they follow.

pub mod addons;
pub mod authentication;
pub mod backups;
pub mod cluster;
pub mod crd;
pub mod instances;
pub mod instrumentation;
pub mod manifest;
pub mod objects;
pub mod patroni;
mod positions;
pub mod quantity;
pub mod sidecars;
pub mod sources;
pub mod status;
pub mod support;
pub mod users;
pub mod validate;
pub mod volume;

pub use cluster::{PostgresCluster, PostgresClusterSpec};
pub use manifest::{FieldError, ManifestError};
pub use status::PostgresClusterStatus;

/// Our API group and the version we store and write.
pub const API_VERSION: &str = "pgdeck.dev/v1";
/// Every apiVersion read as ours: our earlier `v1beta1`, served beside `v1` with the same
/// schema, and Crunchy PGO's two versions, so PGO manifests load unchanged.
pub const READ_API_VERSIONS: [&str; 4] = [
    API_VERSION,
    "pgdeck.dev/v1beta1",
    PGO_API_VERSION,
    "postgres-operator.crunchydata.com/v1beta1",
];
/// Crunchy PGO's current apiVersion (its v1beta1 is read as well).
pub const PGO_API_VERSION: &str = "postgres-operator.crunchydata.com/v1";
/// The PostgreSQL majors a manifest may ask for, as PGO has them. The local platform runs
/// those that are installed.
pub const POSTGRES_MAJORS: std::ops::RangeInclusive<i32> = 11..=18;
pub const KIND: &str = "PostgresCluster";

/// Annotations, following PGO's conventions under our group.
pub mod annotations {
    /// A new value asks for a switchover (or failover) per `spec.patroni.switchover`.
    pub const TRIGGER_SWITCHOVER: &str = "pgdeck.dev/trigger-switchover";
    /// A new value runs the backup in `spec.backups.pgbackrest.manual`.
    pub const BACKUP: &str = "pgdeck.dev/pgbackrest-backup";
    /// On delete (or scale-down), keep the instances' data.
    pub const KEEP_DATA: &str = "pgdeck.dev/keep-data";
    /// On delete, keep the backup repositories.
    pub const KEEP_BACKUPS: &str = "pgdeck.dev/keep-backups";
    /// A new value restarts what `pgdeck.dev/restart` names: an instance, `all` (rolling,
    /// replicas first and the primary after a switchover) or `pending` (those Patroni says
    /// wait for a restart).
    pub const TRIGGER_RESTART: &str = "pgdeck.dev/trigger-restart";
    pub const RESTART: &str = "pgdeck.dev/restart";
    /// A new value reloads every instance's configuration (Patroni's `POST /reload`).
    pub const TRIGGER_RELOAD: &str = "pgdeck.dev/trigger-reload";
    /// A new value rebuilds the replica `pgdeck.dev/reinit` names from the primary (Patroni's
    /// `POST /reinitialize`); never the leader.
    pub const TRIGGER_REINIT: &str = "pgdeck.dev/trigger-reinit";
    pub const REINIT: &str = "pgdeck.dev/reinit";
}

impl PostgresCluster {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    pub fn generation(&self) -> i64 {
        self.metadata.generation.unwrap_or(0)
    }

    /// The PostgreSQL port (PGO's default 5432).
    pub fn port(&self) -> i32 {
        self.spec.port.unwrap_or(5432)
    }

    pub fn patroni(&self) -> patroni::PatroniSpec {
        self.spec.patroni.clone().unwrap_or_default()
    }

    pub fn dynamic_configuration(&self) -> Option<&patroni::DynamicConfiguration> {
        self.spec.patroni.as_ref()?.dynamic_configuration.as_ref()
    }

    /// The DBA's PostgreSQL parameters: `spec.patroni.dynamicConfiguration.postgresql.parameters`
    /// with `spec.config.parameters` over them, as PGO ranks the two.
    pub fn postgres_parameters(&self) -> serde_json::Map<String, serde_json::Value> {
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let mut all = self
            .dynamic_configuration()
            .and_then(|d| d.parameters())
            .cloned()
            .unwrap_or_default();
        let config = self
            .spec
            .config
            .as_ref()
            .and_then(|c| c.parameters.as_ref());
        for (name, value) in config.into_iter().flatten() {
            let value = match value {
                IntOrString::Int(n) => serde_json::Value::from(*n),
                IntOrString::String(s) => serde_json::Value::from(s.clone()),
            };
            all.insert(name.clone(), value);
        }
        all
    }

    pub fn sync_mode(&self) -> patroni::SyncMode {
        self.dynamic_configuration()
            .map(|d| d.sync_mode())
            .unwrap_or(patroni::SyncMode::Off)
    }

    /// Each instance set with the name it goes by (`00`, `01`, ... when unnamed, as PGO does).
    pub fn sets(&self) -> Vec<(String, &instances::InstanceSet)> {
        self.spec
            .instances
            .iter()
            .enumerate()
            .map(|(i, s)| (instances::set_name(s, i), s))
            .collect()
    }

    /// Desired instances across every set.
    pub fn desired_instances(&self) -> i32 {
        self.spec.instances.iter().map(|s| s.replicas()).sum()
    }

    /// The users to create: `spec.users`, or PGO's default of one named after the cluster.
    pub fn users(&self) -> Vec<users::UserSpec> {
        match &self.spec.users {
            Some(users) => users.clone(),
            None => vec![users::UserSpec {
                name: self.name().to_string(),
                databases: Some(vec![self.name().to_string()]),
                ..Default::default()
            }],
        }
    }

    pub fn repos(&self) -> &[backups::Repo] {
        self.spec
            .backups
            .as_ref()
            .map(|b| b.pgbackrest.repos.as_slice())
            .unwrap_or_default()
    }
}
