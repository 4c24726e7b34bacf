//! `spec.databaseInitSQL`, PGO's way, on every platform: once the cluster runs, the SQL in key
//! `key` of ConfigMap `name` runs once through psql, as the superuser, in the `postgres`
//! database (PGO's "default maintenance database"; `\c zoo` reaches another). Success is
//! recorded as `status.databaseInitSQL: <ConfigMap name>` and, while it is set, the SQL never
//! runs again, whatever changes (restarts, switchovers, the ConfigMap); removing the field from
//! the spec clears it. An error in the SQL is not retried until the SQL in the ConfigMap
//! changes (PGO retries every pass); a run that did not get through (the primary went away)
//! is, and a missing ConfigMap or key is looked for again.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use crate::api::{PostgresCluster, PostgresClusterStatus};
use crate::observe::conditions;

/// The condition that tells how the init SQL went.
pub const CONDITION: &str = "DatabaseInitSQL";

/// What to do about the init SQL this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The spec asks for none: status forgets it.
    Clear,
    /// It has run: nothing more, ever, while the spec names it.
    Done,
    /// The ConfigMap or its key is not there: say so, and look again.
    Missing(String),
    /// This very SQL failed: wait for the ConfigMap to change.
    Failed,
    /// Run `sql`; `digest` identifies it, to know a failure's SQL from a fixed one.
    Run { sql: String, digest: String },
}

/// Decide from the spec, what status records as run, the digest of SQL that failed, and the
/// ConfigMap as it is now (`None`: it does not exist).
pub fn next(
    cluster: &PostgresCluster,
    ran: Option<&str>,
    failed: Option<&str>,
    config_map: Option<&ConfigMap>,
) -> Next {
    let Some(spec) = &cluster.spec.database_init_sql else {
        return Next::Clear;
    };
    if ran.is_some() {
        return Next::Done;
    }
    let Some(cm) = config_map else {
        return Next::Missing(format!(
            "ConfigMap {}/{} (spec.databaseInitSQL.name) not found",
            cluster.namespace(),
            spec.name
        ));
    };
    let Some(sql) = cm.data.as_ref().and_then(|d| d.get(&spec.key)) else {
        let keys: Vec<&String> = cm.data.iter().flat_map(BTreeMap::keys).collect();
        return Next::Missing(format!(
            "ConfigMap {}/{} has no key {:?} (spec.databaseInitSQL.key); it has {keys:?}",
            cluster.namespace(),
            spec.name,
            spec.key
        ));
    };
    let digest = digest(&spec.name, &spec.key, sql);
    if failed == Some(digest.as_str()) {
        return Next::Failed;
    }
    Next::Run {
        sql: sql.clone(),
        digest,
    }
}

/// What identifies one init SQL: where it came from and what it says.
pub fn digest(name: &str, key: &str, sql: &str) -> String {
    let mut bytes = Vec::with_capacity(name.len() + key.len() + sql.len() + 2);
    for part in [name, key, sql] {
        bytes.extend(part.as_bytes());
        bytes.push(0);
    }
    super::digest(&bytes)
}

/// Record in status what [`next`] found. `detail` is PostgreSQL's message for [`Next::Failed`],
/// and where a run stands for [`Next::Run`] (waiting for the cluster, running).
pub fn record(
    cluster: &PostgresCluster,
    status: &mut PostgresClusterStatus,
    next: &Next,
    detail: &str,
) {
    let g = cluster.generation();
    let c = &mut status.conditions;
    let Some(spec) = &cluster.spec.database_init_sql else {
        status.database_init_sql = None;
        c.retain(|c| c.type_ != CONDITION);
        return;
    };
    let what = format!("init SQL (ConfigMap {}, key {})", spec.name, spec.key);
    let (ok, reason, message) = match next {
        Next::Clear => unreachable!("the spec names init SQL"),
        Next::Done => {
            // The name it ran from, kept as it was when the spec later names another.
            let ran = status
                .database_init_sql
                .get_or_insert_with(|| spec.name.clone());
            (
                true,
                "Succeeded",
                format!("init SQL of ConfigMap {ran} ran"),
            )
        }
        Next::Missing(why) => (false, "ConfigMapNotFound", why.clone()),
        Next::Failed => (
            false,
            "DatabaseInitSQLFailed",
            format!("{what} failed, and runs again when the ConfigMap's SQL changes: {detail}"),
        ),
        Next::Run { .. } => (false, "Pending", format!("{what}: {detail}")),
    };
    conditions::set(c, CONDITION, ok, reason, message, g);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(init: bool) -> PostgresCluster {
        let init = if init {
            "  databaseInitSQL: {name: sql, key: init.sql}\n"
        } else {
            ""
        };
        crate::api::manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c, namespace: db}}\nspec:\n  postgresVersion: 15\n{init}  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n"
        ))
        .unwrap()
    }

    fn config_map(data: &str) -> ConfigMap {
        serde_yaml::from_str(&format!("metadata: {{name: sql}}\ndata: {data}")).unwrap()
    }

    #[test]
    fn runs_once_and_a_failure_waits_for_new_sql() {
        let c = cluster(true);
        let cm = config_map("{init.sql: 'CREATE TABLE t ()'}");
        let Next::Run { sql, digest } = next(&c, None, None, Some(&cm)) else {
            panic!("runs first");
        };
        assert_eq!(sql, "CREATE TABLE t ()");
        assert_eq!(next(&c, None, Some(&digest), Some(&cm)), Next::Failed);
        let fixed = config_map("{init.sql: 'CREATE TABLE IF NOT EXISTS t ()'}");
        assert!(matches!(
            next(&c, None, Some(&digest), Some(&fixed)),
            Next::Run { .. }
        ));
        assert_eq!(next(&c, Some("sql"), None, Some(&fixed)), Next::Done);
        assert_eq!(next(&cluster(false), Some("sql"), None, None), Next::Clear);
    }

    #[test]
    fn a_missing_config_map_or_key_is_named() {
        let c = cluster(true);
        let Next::Missing(why) = next(&c, None, None, None) else {
            panic!()
        };
        assert!(why.contains("ConfigMap db/sql"), "{why}");
        let Next::Missing(why) = next(&c, None, None, Some(&config_map("{other: x}"))) else {
            panic!()
        };
        assert!(why.contains("no key \"init.sql\""), "{why}");
    }

    #[test]
    fn status_records_the_config_map_and_the_error() {
        let c = cluster(true);
        let mut status = PostgresClusterStatus::default();
        let error = "psql:<stdin>:1: ERROR:  relation \"nope\" does not exist";
        record(&c, &mut status, &Next::Failed, error);
        let cond = status.condition(CONDITION).unwrap();
        assert_eq!(cond.reason, "DatabaseInitSQLFailed");
        assert!(cond.message.ends_with(error), "{}", cond.message);
        assert_eq!(status.database_init_sql, None);
        record(&c, &mut status, &Next::Done, "");
        assert_eq!(status.database_init_sql.as_deref(), Some("sql"));
        assert_eq!(status.condition(CONDITION).unwrap().status, "True");
        record(&cluster(false), &mut status, &Next::Clear, "");
        assert!(status.database_init_sql.is_none() && status.condition(CONDITION).is_none());
    }
}
