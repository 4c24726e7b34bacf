//! `spec.instrumentation` (PGO 5.8+): an OpenTelemetry collector beside PostgreSQL that ships
//! its logs and metrics. The shapes are PGO's `InstrumentationSpec`, so its users' manifests
//! load unchanged.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, VolumeProjection};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::PostgresCluster;
use super::manifest::FieldError;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentationSpec {
    /// The collector's image; the operator's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<InstrumentationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<InstrumentationLogs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<InstrumentationMetrics>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentationConfig {
    /// Resource detectors (`aks`, `eks`, `gcp`, ...) that add identifying attributes, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub detectors: Option<Vec<ResourceDetector>>,
    /// OpenTelemetry exporters of the collector image, by component ID (`otlp`, `otlp/2`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporters: Option<Schemaless>,
    /// Files projected beside the collector's configuration, in `/etc/otel-collector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub files: Option<Vec<VolumeProjection>>,
    /// Environment variables of the collector container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub environment_variables: Option<Vec<EnvVar>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDetector {
    #[schemars(length(min = 1, max = 20))]
    pub name: String,
    /// Which of the detector's attributes to use (true) or leave out (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, bool>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentationLogs {
    /// How log records are batched before export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batches: Option<LogsBatches>,
    /// The exporters (of `config.exporters`) that send logs; `debug` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub exporters: Option<Vec<String>>,
    /// How long log files are kept in the pod: `12 hr`, `3d`, `4 weeks`, ...; one day when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20), regex(pattern = RETENTION_PATTERN))]
    pub retention_period: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogsBatches {
    /// The longest a record waits before export (`200ms` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20), regex(pattern = SHORT_DURATION_PATTERN))]
    pub max_delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_records: Option<i32>,
    /// The records to wait for before a batch is sent (8192 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_records: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentationMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_queries: Option<CustomQueries>,
    /// The exporters (of `config.exporters`) that send metrics too, beside the Prometheus
    /// endpoint on 9187.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), extend("x-kubernetes-list-type" = "set"))]
    pub exporters: Option<Vec<String>>,
    /// Databases whose tables' statistics the collector reads every 5 minutes (PGO's per-db
    /// metrics), besides the cluster-wide ones it reads in `postgres`.
    #[serde(
        default,
        rename = "perDBMetricTargets",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_db_metric_targets: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomQueries {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<Vec<CustomQuerySet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<String>>,
}

/// A set of the DBA's queries: the collector runs them as the monitoring role, in each of
/// `databases` (`postgres` when absent), every `collectionInterval` (5 seconds when absent).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomQuerySet {
    /// Part of the sqlquery receiver's ID and of the queries file's path.
    #[schemars(length(min = 1, max = 20), regex(pattern = r"^[^\pZ\pC\pS]+$"))]
    pub name: String,
    /// The ConfigMap key holding the queries, in the sqlquery receiver's `queries` format.
    pub queries: ConfigMapKeyRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20), regex(pattern = SHORT_DURATION_PATTERN))]
    pub collection_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
}

impl CustomQuerySet {
    /// The databases its queries run in: `postgres` when none are named (PGO's default).
    pub fn databases(&self) -> Vec<&str> {
        match &self.databases {
            Some(dbs) => dbs.iter().map(String::as_str).collect(),
            None => vec!["postgres"],
        }
    }

    /// The collector's receiver of these queries in `database` (PGO's ID).
    pub fn receiver(&self, database: &str) -> String {
        format!("sqlquery/{}-{database}", self.name)
    }
}

/// The collector's receivers of the built-in queries (PGO's IDs): every 5 seconds, every 5
/// minutes.
pub const BUILT_IN_RECEIVERS: [&str; 2] = ["sqlquery/5s", "sqlquery/300s"];

/// The collector's receiver of the per-database built-in queries in `database` (PGO's ID).
pub fn per_database_receiver(database: &str) -> String {
    format!("sqlquery/{database}")
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    pub name: String,
    pub key: String,
}

/// PGO's loose check of a retention period: whole numbers of hours, days or weeks.
const RETENTION_PATTERN: &str = r"^(PT)?( *[0-9]+ *(?i:(h|hr|d|w|wk)|(hour|day|week)s?))+$";
/// PGO's loose check of a short duration: milliseconds, seconds or minutes, or `0`.
const SHORT_DURATION_PATTERN: &str = r"^((PT)?( *[0-9]+ *(?i:(ms|s|m)|(milli|sec|min)s?))+|0)$";

/// A free-form object, kept as written (`x-kubernetes-preserve-unknown-fields`): the
/// collector judges its exporters' settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct Schemaless(pub Map<String, Value>);

impl JsonSchema for Schemaless {
    fn schema_name() -> Cow<'static, str> {
        "Schemaless".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
    }
}

/// What the schema cannot say about `spec.instrumentation`, with PGO's limits: each log
/// exporter is one the collector has, durations are in range, batching is consistent, and
/// the collector's own environment stays its own; and what pgdeck's collector cannot do yet.
pub fn problems(c: &PostgresCluster) -> Vec<FieldError> {
    let mut out = Vec::new();
    let Some(spec) = &c.spec.instrumentation else {
        return out;
    };
    let exporter =
        (c.spec.monitoring.as_ref()).and_then(|m| m.pgmonitor.as_ref()?.exporter.as_ref());
    if exporter.is_some() {
        out.push(FieldError::new(
            "spec.instrumentation",
            "the collector serves metrics on port 9187, as the exporter of \
             spec.monitoring.pgmonitor does: set one of them",
        ));
    }
    let queries = (spec.metrics.as_ref()).and_then(|m| m.custom_queries.clone());
    out.extend(custom_query_problems(c, &queries.unwrap_or_default()));
    let mut fail = |path: &str, why: &str| out.push(FieldError::new(path, why));
    let config = spec.config.clone().unwrap_or_default();
    let exporters = config.exporters.unwrap_or_default().0;
    let logs = spec.logs.clone().unwrap_or_default();
    let metrics = spec.metrics.clone().unwrap_or_default();
    let named = [("logs", &logs.exporters), ("metrics", &metrics.exporters)];
    for (what, names) in named {
        for (i, name) in names.iter().flatten().enumerate() {
            if name != DEBUG_EXPORTER && !exporters.contains_key(name) {
                fail(
                    &format!("spec.instrumentation.{what}.exporters[{i}]"),
                    &format!(
                        "{name:?} is not an exporter of spec.instrumentation.config.exporters"
                    ),
                );
            }
        }
    }
    // PGO's receiver IDs share one namespace: the per-database ones must not take another's.
    let sets = metrics
        .custom_queries
        .iter()
        .flat_map(|q| q.add.iter().flatten());
    let taken: Vec<String> = BUILT_IN_RECEIVERS
        .map(String::from)
        .into_iter()
        .chain(sets.flat_map(|set| set.databases().into_iter().map(|db| set.receiver(db))))
        .collect();
    for (i, db) in metrics.per_db_metric_targets.iter().flatten().enumerate() {
        let id = per_database_receiver(db);
        if taken.contains(&id) {
            fail(
                &format!("spec.instrumentation.metrics.perDBMetricTargets[{i}]"),
                &format!(
                    "{db:?} would name the collector's receiver {id}, which another set of \
                     queries has"
                ),
            );
        } else if !receiver_part(db) {
            fail(
                &format!("spec.instrumentation.metrics.perDBMetricTargets[{i}]"),
                "must be letters, digits, `_`, `-` and `.`: it names the collector's receiver \
                 (sqlquery/<database>)",
            );
        }
    }
    if let Some(text) = &logs.retention_period {
        let hours = duration(text).map(|d| d.as_secs_f64() / 3600.0);
        if !hours.is_some_and(|h| (1.0..=8760.0).contains(&h)) {
            fail(
                "spec.instrumentation.logs.retentionPeriod",
                "must be a duration from one hour to 8760 hours (`12 hr`, `3d`, `4 weeks`)",
            );
        }
    }
    if let Some(b) = &logs.batches {
        if let Some(text) = &b.max_delay
            && duration(text).is_none_or(|d| d.as_secs() > 300)
        {
            fail(
                "spec.instrumentation.logs.batches.maxDelay",
                "must be a duration of at most five minutes (`200ms`, `1s`, `0`)",
            );
        }
        let no_delay = b.max_delay.as_deref().and_then(duration) == Some(Default::default());
        if (b.min_records == Some(0)) != no_delay {
            fail(
                "spec.instrumentation.logs.batches",
                "to disable batching, both minRecords and maxDelay must be zero",
            );
        }
        if let Some(max) = b.max_records
            && b.min_records.unwrap_or(DEFAULT_MIN_RECORDS) > max
        {
            fail(
                "spec.instrumentation.logs.batches.minRecords",
                "cannot be larger than maxRecords",
            );
        }
    }
    for (i, env) in config.environment_variables.iter().flatten().enumerate() {
        if RESERVED_ENV.contains(&env.name.as_str()) {
            fail(
                &format!("spec.instrumentation.config.environmentVariables[{i}].name"),
                "cannot overwrite environment variables set by the operator",
            );
        }
    }
    out
}

/// What the collector could not run of `metrics.customQueries`: a built-in metric to remove
/// that its version does not have, and names that could not be a component ID or a file.
fn custom_query_problems(c: &PostgresCluster, queries: &CustomQueries) -> Vec<FieldError> {
    let mut out = Vec::new();
    let base = "spec.instrumentation.metrics.customQueries";
    let built_in = crate::plan::collector_metrics::names(c.spec.postgres_version);
    for (i, name) in queries.remove.iter().flatten().enumerate() {
        if !built_in.contains(name) {
            out.push(FieldError::new(
                format!("{base}.remove[{i}]"),
                format!(
                    "{name:?} is not a built-in metric of the collector for PostgreSQL {}",
                    c.spec.postgres_version
                ),
            ));
        }
    }
    let plain = receiver_part;
    let mut seen = std::collections::BTreeSet::new();
    for (i, set) in queries.add.iter().flatten().enumerate() {
        let at = format!("{base}.add[{i}]");
        if !plain(&set.name) || set.name.contains('.') {
            out.push(FieldError::new(
                format!("{at}.name"),
                "must be letters, digits, `_` and `-`: it names the collector's receiver and \
                 the queries' directory",
            ));
        } else if !seen.insert(&set.name) {
            out.push(FieldError::new(
                format!("{at}.name"),
                format!("{:?} names another set of queries too", set.name),
            ));
        }
        if !plain(&set.queries.key) {
            out.push(FieldError::new(
                format!("{at}.queries.key"),
                "must be a ConfigMap key: letters, digits, `_`, `-` and `.`",
            ));
        }
        if let Some(text) = &set.collection_interval
            && duration(text).is_none_or(|d| d.as_secs() > 3600)
        {
            out.push(FieldError::new(
                format!("{at}.collectionInterval"),
                "must be a duration of at most 60 minutes (`5s`, `1m`, `0`)",
            ));
        }
        for (j, db) in set.databases.iter().flatten().enumerate() {
            if !plain(db) {
                out.push(FieldError::new(
                    format!("{at}.databases[{j}]"),
                    "must be letters, digits, `_`, `-` and `.`: it names the collector's \
                     receiver (sqlquery/<name>-<database>)",
                ));
            }
        }
    }
    out
}

/// Whether `s` can be part of a component ID (`sqlquery/<name>-<database>`) or of a path in
/// the pod.
fn receiver_part(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_-.".contains(ch))
}

/// The exporter every collector has, which logs go to when no other is named.
pub const DEBUG_EXPORTER: &str = "debug";
/// PGO's default for `logs.batches.minRecords`.
pub const DEFAULT_MIN_RECORDS: i32 = 8192;
/// The collector's environment that pgdeck sets (PGO's names).
const RESERVED_ENV: [&str; 3] = ["K8S_POD_NAMESPACE", "K8S_POD_NAME", "PGPASSWORD"];

/// A duration as PGO's patterns write it (`12 hr`, `3d`, `PT4w`, `200ms`, `1 min 30s`), summed.
/// `None` when a part is not a number and a unit.
pub fn duration(text: &str) -> Option<std::time::Duration> {
    let rest = text.trim().strip_prefix("PT").unwrap_or(text.trim());
    let mut total = std::time::Duration::ZERO;
    let mut chars = rest.trim().chars().peekable();
    if rest.trim() == "0" {
        return Some(total);
    }
    while chars.peek().is_some() {
        let number: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
        while chars.next_if(|c| *c == ' ').is_some() {}
        let unit: String =
            std::iter::from_fn(|| chars.next_if(char::is_ascii_alphabetic)).collect();
        while chars.next_if(|c| *c == ' ').is_some() {}
        let n: u64 = number.parse().ok()?;
        let seconds = match unit.to_ascii_lowercase().as_str() {
            "ms" | "milli" | "millis" => {
                total += std::time::Duration::from_millis(n);
                continue;
            }
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "wk" | "week" | "weeks" => 604_800,
            _ => return None,
        };
        total += std::time::Duration::from_secs(n * seconds);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_read_as_pgo_writes_them() {
        assert_eq!(duration("12 hr"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(duration("3d"), Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(duration("PT4w"), Some(Duration::from_secs(4 * 604_800)));
        assert_eq!(duration("1 day 2h"), Some(Duration::from_secs(26 * 3600)));
        assert_eq!(duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(duration("0"), Some(Duration::ZERO));
        assert_eq!(duration("3 fortnights"), None);
        assert_eq!(duration("d"), None);
    }

    fn problems_of(instrumentation: &str) -> Vec<String> {
        let c = crate::api::manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c}}\nspec:\n  \
             postgresVersion: 16\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: \
             [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n{instrumentation}"
        ));
        match c {
            Ok(c) => problems(&c).iter().map(ToString::to_string).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn what_the_collector_could_not_run_is_refused_naming_the_field() {
        assert!(problems_of("  instrumentation: {}\n").is_empty());
        // A collector runs beside pgBouncer too.
        assert!(problems_of("  instrumentation: {}\n  proxy: {pgBouncer: {}}\n").is_empty());
        let good = "  instrumentation: {config: {exporters: {otlp: {}}}, logs: {exporters: [otlp, debug], retentionPeriod: 12 hr, batches: {maxDelay: '0', minRecords: 0}}}\n";
        assert!(problems_of(good).is_empty(), "{:?}", problems_of(good));
        let queries = "  instrumentation: {metrics: {customQueries: {remove: [ccp_stat_bgwriter_checkpoints_timed], add: [{name: my_set-1, queries: {name: m, key: q.yaml}, collectionInterval: 60m, databases: [app, postgres]}]}}}\n";
        assert!(
            problems_of(queries).is_empty(),
            "{:?}",
            problems_of(queries)
        );
        let cases = [
            (
                "  instrumentation: {logs: {exporters: [otlp]}}\n",
                "spec.instrumentation.logs.exporters[0]",
            ),
            (
                "  instrumentation: {config: {exporters: {otlp: {}}}, metrics: {exporters: [otlp, prom]}}\n",
                "spec.instrumentation.metrics.exporters[1]",
            ),
            (
                "  instrumentation: {metrics: {perDBMetricTargets: [app, \"x' user=postgres\"]}}\n",
                "spec.instrumentation.metrics.perDBMetricTargets[1]",
            ),
            (
                "  instrumentation: {metrics: {perDBMetricTargets: [300s]}}\n",
                "spec.instrumentation.metrics.perDBMetricTargets[0]",
            ),
            (
                "  instrumentation: {metrics: {perDBMetricTargets: [mine-app], customQueries: {add: [{name: mine, queries: {name: m, key: k}, databases: [app]}]}}}\n",
                "spec.instrumentation.metrics.perDBMetricTargets[0]",
            ),
            (
                "  instrumentation: {logs: {retentionPeriod: 1 week 60 weeks}}\n",
                "spec.instrumentation.logs.retentionPeriod",
            ),
            (
                "  instrumentation: {logs: {batches: {maxDelay: 10m}}}\n",
                "spec.instrumentation.logs.batches.maxDelay",
            ),
            (
                "  instrumentation: {logs: {batches: {minRecords: 0}}}\n",
                "spec.instrumentation.logs.batches",
            ),
            (
                "  instrumentation: {logs: {batches: {maxRecords: 10}}}\n",
                "spec.instrumentation.logs.batches.minRecords",
            ),
            (
                "  instrumentation: {config: {environmentVariables: [{name: PGPASSWORD, value: x}]}}\n",
                "spec.instrumentation.config.environmentVariables[0].name",
            ),
            (
                "  instrumentation: {}\n  monitoring: {pgmonitor: {exporter: {}}}\n",
                "spec.instrumentation: ",
            ),
            (
                "  instrumentation: {metrics: {customQueries: {remove: [ccp_stat_checkpointer_num_timed]}}}\n",
                "spec.instrumentation.metrics.customQueries.remove[0]: \"ccp_stat_checkpointer_num_timed\" \
                 is not a built-in metric of the collector for PostgreSQL 16",
            ),
            (
                "  instrumentation: {metrics: {customQueries: {add: [{name: a/b, queries: {name: m, key: k}}]}}}\n",
                "spec.instrumentation.metrics.customQueries.add[0].name",
            ),
            (
                "  instrumentation: {metrics: {customQueries: {add: [{name: a, queries: {name: m, key: k}}, {name: a, queries: {name: m, key: k}}]}}}\n",
                "spec.instrumentation.metrics.customQueries.add[1].name: \"a\" names another",
            ),
            (
                "  instrumentation: {metrics: {customQueries: {add: [{name: a, queries: {name: m, key: '..'}}]}}}\n",
                "spec.instrumentation.metrics.customQueries.add[0].queries.key",
            ),
            (
                "  instrumentation: {metrics: {customQueries: {add: [{name: a, queries: {name: m, key: k}, collectionInterval: 61m}]}}}\n",
                "spec.instrumentation.metrics.customQueries.add[0].collectionInterval",
            ),
            (
                "  instrumentation: {metrics: {customQueries: {add: [{name: a, queries: {name: m, key: k}, databases: [\"x' user=postgres\"]}]}}}\n",
                "spec.instrumentation.metrics.customQueries.add[0].databases[0]",
            ),
        ];
        for (spec, field) in cases {
            let found = problems_of(spec);
            assert!(
                found.len() == 1 && found[0].contains(field),
                "{spec}: {found:?}"
            );
        }
    }
}
