//! The metrics the OpenTelemetry collector (`spec.instrumentation`) reads from PostgreSQL with
//! its sqlquery receivers: pgdeck's own queries of PostgreSQL's catalogs, named as PGO names
//! its metrics, for the version that runs; less the ones `metrics.customQueries.remove` names.
//! The YAML files beside this one are in the receiver's `queries` format.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One statement and the metrics read from its rows (the sqlquery receiver's format).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub sql: String,
    pub metrics: Vec<Metric>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub metric_name: String,
    pub value_column: String,
    /// `int` when absent, the receiver's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub static_attributes: BTreeMap<String, String>,
    pub description: String,
}

/// How often a set of queries runs (PGO's two receivers), or, for `PerDatabase`, where: every
/// 5 minutes in each database of `metrics.perDBMetricTargets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    FiveSeconds,
    FiveMinutes,
    PerDatabase,
}

/// The built-in queries of PostgreSQL `version` that run `every` so often.
pub fn postgres(version: i32, every: Every) -> Vec<Query> {
    let files: &[&str] = match every {
        Every::FiveSeconds if version >= 17 => &[FAST, FROM_17],
        Every::FiveSeconds => &[FAST, BEFORE_17],
        Every::FiveMinutes => &[SLOW],
        Every::PerDatabase => &[PER_DB],
    };
    files.iter().flat_map(|f| parse(f)).collect()
}

/// pgBouncer's metrics, from its admin console's `SHOW` commands.
pub fn pgbouncer() -> Vec<Query> {
    parse(PGBOUNCER)
}

/// The names of PostgreSQL `version`'s built-in metrics.
pub fn names(version: i32) -> BTreeSet<String> {
    [Every::FiveSeconds, Every::FiveMinutes, Every::PerDatabase]
        .into_iter()
        .flat_map(|e| postgres(version, e))
        .flat_map(|q| q.metrics.into_iter().map(|m| m.metric_name))
        .collect()
}

/// `queries` without the metrics `remove` names; a statement left with no metric is not run.
pub fn without(queries: Vec<Query>, remove: &[String]) -> Vec<Query> {
    queries
        .into_iter()
        .map(|mut q| {
            q.metrics.retain(|m| !remove.contains(&m.metric_name));
            q
        })
        .filter(|q| !q.metrics.is_empty())
        .collect()
}

const FAST: &str = include_str!("collector_metrics/postgres_fast.yaml");
const BEFORE_17: &str = include_str!("collector_metrics/checkpoints_before_17.yaml");
const FROM_17: &str = include_str!("collector_metrics/checkpoints_from_17.yaml");
const SLOW: &str = include_str!("collector_metrics/postgres_slow.yaml");
const PER_DB: &str = include_str!("collector_metrics/postgres_per_db.yaml");
const PGBOUNCER: &str = include_str!("collector_metrics/pgbouncer.yaml");

fn parse(text: &str) -> Vec<Query> {
    serde_yaml::from_str(text).expect("the built-in queries are valid (a unit test reads them)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Query> {
        [FAST, BEFORE_17, FROM_17, SLOW, PER_DB, PGBOUNCER]
            .iter()
            .flat_map(|f| parse(f))
            .collect()
    }

    #[test]
    fn every_metric_reads_columns_its_statement_selects_with_a_known_type() {
        for q in all() {
            for m in &q.metrics {
                for column in std::iter::once(&m.value_column).chain(&m.attribute_columns) {
                    // pgBouncer's SHOW commands name their columns themselves.
                    assert!(
                        q.sql.starts_with("SHOW ") || q.sql.contains(column.as_str()),
                        "{}: {column} is not in {}",
                        m.metric_name,
                        q.sql
                    );
                }
                assert!(
                    matches!(m.value_type.as_deref(), None | Some("int" | "double")),
                    "{}",
                    m.metric_name
                );
                assert!(m.metric_name.starts_with("ccp_"), "PGO's names");
            }
        }
    }

    #[test]
    fn names_are_unique_and_follow_the_version() {
        let mut seen = BTreeSet::new();
        for q in all() {
            for m in q.metrics {
                assert!(seen.insert(m.metric_name.clone()), "{}", m.metric_name);
            }
        }
        assert!(names(16).contains("ccp_stat_bgwriter_checkpoints_timed"));
        assert!(!names(16).contains("ccp_stat_checkpointer_num_timed"));
        assert!(names(17).contains("ccp_stat_checkpointer_num_timed"));
        assert!(!names(17).contains("ccp_stat_bgwriter_checkpoints_timed"));
        for name in [
            "ccp_connection_stats_total",
            "ccp_replication_lag_size_bytes",
            "ccp_replication_lag_replay_time",
            "ccp_wal_activity_total_size_bytes",
            "ccp_database_size_bytes",
            "ccp_locks_count",
            "ccp_archive_command_status_failed_count",
            "ccp_stat_user_tables_n_dead_tup",
            "ccp_table_size_bytes",
        ] {
            assert!(names(15).contains(name), "{name}");
        }
    }

    #[test]
    fn removing_every_metric_of_a_statement_drops_the_statement() {
        let fast = postgres(15, Every::FiveSeconds);
        let archive: Vec<String> = fast
            .iter()
            .find(|q| q.sql.contains("pg_stat_archiver"))
            .unwrap()
            .metrics
            .iter()
            .map(|m| m.metric_name.clone())
            .collect();
        let one = without(fast.clone(), &archive[..1]);
        assert_eq!(one.len(), fast.len());
        let kept = one.iter().find(|q| q.sql.contains("pg_stat_archiver"));
        assert_eq!(kept.unwrap().metrics.len(), archive.len() - 1);
        let none = without(fast.clone(), &archive);
        assert_eq!(none.len(), fast.len() - 1);
        assert!(none.iter().all(|q| !q.sql.contains("pg_stat_archiver")));
    }
}
