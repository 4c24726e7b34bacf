//! Names and labels of the objects a cluster is made of. Names follow PGO v5 so DBAs find what
//! they know: `<c>-primary`, `<c>-pguser-<user>`, `<c>-repo-host`, `<instance>-pgdata`, ...

use crate::plan::patroni;

/// The cluster an object belongs to; Patroni's member pods and Endpoints carry it too.
pub const CLUSTER: &str = patroni::CLUSTER_LABEL;
pub const INSTANCE_SET: &str = "pgdeck.dev/instance-set";
pub const INSTANCE: &str = "pgdeck.dev/instance";
/// Kept by Patroni on each member pod: `master` or `replica`.
pub const ROLE: &str = patroni::ROLE_LABEL;
pub const ROLE_PRIMARY: &str = "master";
pub const ROLE_REPLICA: &str = "replica";
/// What an object is part of: `instance`, `repo-host`, `backup`, `users`, `init-sql`.
pub const COMPONENT: &str = "pgdeck.dev/component";
pub const INIT_SQL: &str = "init-sql";
/// The component of pgBouncer's objects and pods.
pub const PGBOUNCER: &str = "pgbouncer";
/// On an init SQL Job and its pod: the digest of the SQL it runs.
pub const INIT_SQL_DIGEST: &str = "pgdeck.dev/init-sql-digest";
/// The repository a repository volume holds.
pub const REPO: &str = "pgdeck.dev/repo";
/// On a volume kept by a delete or scale-down: pgdeck no longer owns it.
pub const KEPT: &str = "pgdeck.dev/kept";
/// On volumes: the UID of the cluster they belong to, or came from once kept. A volume is its
/// cluster's by this label when it has no owner reference (the cluster says to keep it), and
/// never another's: a new cluster of the same name has another UID.
pub const CLUSTER_UID: &str = "pgdeck.dev/cluster-uid";
/// On a tablespace's volume: the tablespace (PGO's `postgres-operator.crunchydata.com/data`
/// names it too).
pub const TABLESPACE: &str = "pgdeck.dev/tablespace";
/// On a volume adopted from `spec.dataSource.volumes`, and on its move Job: the role it has
/// (`pgdata`, `pgwal`); the instance it serves is its `INSTANCE` label.
pub const ADOPTED: &str = "pgdeck.dev/adopted";
/// On a kept volume: `<namespace>/<name>` of the cluster it came from.
pub const KEPT_FROM: &str = "pgdeck.dev/kept-from";
/// On a kept volume: when it was kept (RFC 3339).
pub const KEPT_AT: &str = "pgdeck.dev/kept-at";
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "pgdeck");
/// A digest of the object as pgdeck last wrote it: a change of the spec shows as a new digest.
pub const HASH: &str = "pgdeck.dev/hash";
/// On instance pods: a digest of Patroni's local configuration, so a change restarts them.
pub const CONFIG_HASH: &str = "pgdeck.dev/config-hash";
/// On instance pod templates, and so on their pods: a digest of the rest of the template. The
/// reconciler rolls a new one out instance by instance, and a pod tells which one it runs.
pub const TEMPLATE_HASH: &str = "pgdeck.dev/template-hash";

/// Crunchy PGO's labels, on the objects PGO (not pgdeck) makes: the console reads PGO's
/// clusters by them and never writes them.
pub mod pgo {
    pub const CLUSTER: &str = "postgres-operator.crunchydata.com/cluster";
    pub const INSTANCE_SET: &str = "postgres-operator.crunchydata.com/instance-set";
    pub const INSTANCE: &str = "postgres-operator.crunchydata.com/instance";
    /// Kept by Patroni on each member pod: `master` or `replica`, as pgdeck's.
    pub const ROLE: &str = "postgres-operator.crunchydata.com/role";
}

/// The names of one cluster's objects.
#[derive(Clone, Copy)]
pub struct Names<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
}

impl<'a> Names<'a> {
    pub fn new(cluster: &'a str, namespace: &'a str) -> Names<'a> {
        Names { cluster, namespace }
    }

    fn of(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.cluster)
    }

    pub fn primary(&self) -> String {
        self.of("primary")
    }
    pub fn replicas(&self) -> String {
        self.of("replicas")
    }
    /// The headless Service every pod's DNS name hangs off.
    pub fn pods(&self) -> String {
        self.of("pods")
    }
    /// Patroni's scope, and the Service whose Endpoints Patroni points at the leader.
    pub fn ha(&self) -> String {
        patroni::kubernetes_scope(self.cluster)
    }
    pub fn pguser(&self, user: &str) -> String {
        self.of(&format!("pguser-{user}"))
    }
    /// The monitoring role's password (PGO's name).
    pub fn monitoring(&self) -> String {
        self.of("monitoring")
    }
    /// The exporter's web configuration, with `customTLSSecret` (PGO's name).
    pub fn exporter_web_config(&self) -> String {
        self.of("exporter-web-config")
    }
    pub fn superuser(&self) -> String {
        self.of("superuser")
    }
    pub fn replication(&self) -> String {
        self.of("replication")
    }
    pub fn ca(&self) -> String {
        self.of("cluster-ca")
    }
    pub fn server_cert(&self) -> String {
        self.of("cluster-cert")
    }
    pub fn replication_cert(&self) -> String {
        self.of("replication-cert")
    }
    pub fn pgbackrest_cert(&self) -> String {
        self.of("pgbackrest")
    }
    /// Patroni's REST API server certificate.
    pub fn patroni_cert(&self) -> String {
        self.of("patroni")
    }
    /// The operator's client certificate for Patroni's REST API, with the CA of its own that
    /// Patroni trusts for clients.
    pub fn patroni_client(&self) -> String {
        self.of("patroni-client")
    }
    pub fn instance_account(&self) -> String {
        self.of("instance")
    }
    pub fn pgbackrest_account(&self) -> String {
        self.of("pgbackrest")
    }
    pub fn pgbackrest_config(&self) -> String {
        self.of("pgbackrest-config")
    }
    pub fn repo_host(&self) -> String {
        self.of("repo-host")
    }
    pub fn repo_volume(&self, repo: &str) -> String {
        self.of(repo)
    }
    /// The NetworkPolicy of the instance pods.
    pub fn instances_policy(&self) -> String {
        self.of("instances")
    }
    pub fn set_budget(&self, set: &str) -> String {
        self.of(&format!("set-{set}"))
    }
    pub fn initial_backup(&self) -> String {
        self.of("backup-initial")
    }
    /// The Job of the manual backup asked for with `trigger`.
    pub fn manual_backup(&self, trigger: &str) -> String {
        self.of(&format!("backup-{}", &digest(trigger.as_bytes())[..8]))
    }
    pub fn scheduled_backup(&self, repo: &str, kind: &str) -> String {
        self.of(&format!("{repo}-{kind}"))
    }
    /// pgBouncer's Deployment, Service, ConfigMap, Secret and PodDisruptionBudget (PGO's name).
    pub fn pgbouncer(&self) -> String {
        self.of("pgbouncer")
    }
    pub fn users_job(&self, digest: &str) -> String {
        self.of(&format!("users-{digest}"))
    }
    /// The Job that runs init SQL of `digest` (see `plan::init_sql::digest`).
    pub fn init_sql_job(&self, digest: &str) -> String {
        self.of(&format!("init-sql-{}", &digest[..8.min(digest.len())]))
    }

    /// A Service's name as pods resolve it.
    pub fn service_host(&self, service: &str) -> String {
        format!("{service}.{}.svc", self.namespace)
    }
    /// A StatefulSet's only pod's DNS name, through the headless `<c>-pods` Service.
    pub fn pod_host(&self, stateful_set: &str) -> String {
        format!(
            "{}.{}.{}.svc",
            pod(stateful_set),
            self.pods(),
            self.namespace
        )
    }
    /// The repository host's DNS name.
    pub fn repo_host_dns(&self) -> String {
        self.pod_host(&self.repo_host())
    }
}

/// The one pod of an instance's StatefulSet; Patroni's member name.
pub fn pod(stateful_set: &str) -> String {
    format!("{stateful_set}-0")
}

pub fn config(instance: &str) -> String {
    format!("{instance}-config")
}
pub fn data_volume(instance: &str) -> String {
    format!("{instance}-pgdata")
}
pub fn wal_volume(instance: &str) -> String {
    format!("{instance}-pgwal")
}
/// PGO's name for an instance's volume of tablespace `name`.
pub fn tablespace_volume(instance: &str, name: &str) -> String {
    format!("{instance}-{name}-tablespace")
}

pub use crate::plan::digest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pgo() {
        let n = Names::new("hippo", "db");
        assert_eq!(n.primary(), "hippo-primary");
        assert_eq!(n.ha(), "hippo-ha");
        assert_eq!(n.pguser("app"), "hippo-pguser-app");
        assert_eq!(n.repo_volume("repo1"), "hippo-repo1");
        assert_eq!(
            n.pod_host("hippo-instance1-bcdf"),
            "hippo-instance1-bcdf-0.hippo-pods.db.svc"
        );
        assert_eq!(
            data_volume("hippo-instance1-bcdf"),
            "hippo-instance1-bcdf-pgdata"
        );
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        assert_eq!(digest(b""), "cbf29ce484222325");
        assert_eq!(digest(b"a"), "af63dc4c8601ec8c");
        assert_ne!(digest(b"ab"), digest(b"ba"));
    }
}
