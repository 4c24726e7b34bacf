//! The PostgresCluster resource: its types, how manifests are read, and the rules they follow.

pub mod addons;
pub mod backups;
pub mod cluster;
pub mod crd;
pub mod instances;
pub mod manifest;
pub mod objects;
pub mod patroni;
mod positions;
pub mod quantity;
pub mod sources;
pub mod status;
pub mod users;
pub mod validate;
pub mod volume;

pub use cluster::{PostgresCluster, PostgresClusterSpec};
pub use manifest::{FieldError, ManifestError};
pub use status::PostgresClusterStatus;

/// Our API group and version.
pub const API_VERSION: &str = "pgdeck.dev/v1beta1";
/// Crunchy PGO v5's: manifests that say it are read as ours.
pub const PGO_API_VERSION: &str = "postgres-operator.crunchydata.com/v1beta1";
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
