//! `spec.patroni`: Patroni's dynamic configuration, timing, and switchovers (PGO's `PatroniSpec`).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatroniSpec {
    /// Patroni's dynamic configuration (stored in the DCS): `synchronous_mode`,
    /// `synchronous_mode_strict`, `postgresql.parameters`, `postgresql.pg_hba`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_configuration: Option<DynamicConfiguration>,

    /// Patroni's `ttl`: how long the leader lock lives (30 s when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3))]
    pub leader_lease_duration_seconds: Option<i32>,

    /// Patroni's own log files (PGO 5.8): without it, Patroni logs to its standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<PatroniLogging>,

    /// The port of Patroni's REST API (8008 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: Option<i32>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<Switchover>,

    /// Patroni's `loop_wait`: seconds between HA checks (10 s when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub sync_period_seconds: Option<i32>,
}

pub const DEFAULT_LEADER_LEASE_SECONDS: i32 = 30;
pub const DEFAULT_SYNC_PERIOD_SECONDS: i32 = 10;
pub const DEFAULT_PATRONI_PORT: i32 = 8008;

impl PatroniSpec {
    pub fn leader_lease_seconds(&self) -> i32 {
        self.leader_lease_duration_seconds
            .unwrap_or(DEFAULT_LEADER_LEASE_SECONDS)
    }
    pub fn sync_period_seconds(&self) -> i32 {
        self.sync_period_seconds
            .unwrap_or(DEFAULT_SYNC_PERIOD_SECONDS)
    }
}

/// Patroni writes its log to files in a directory of the instance, rotated so that together
/// they stay within `storage_limit`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatroniLogging {
    /// The most space Patroni's log files take, together; at least 25MB.
    pub storage_limit: Quantity,
    /// Patroni's log level (Python's logging levels); INFO when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
}

/// Python's logging levels, the names Patroni's `log.level` takes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Critical,
    Error,
    Warning,
    #[default]
    Info,
    Debug,
    Notset,
}

/// PGO's floor for `storageLimit`: Patroni's default size of one log file (25MB).
pub const MIN_LOG_STORAGE_BYTES: i64 = 25_000_000;

/// A switchover or failover, carried out when the annotation `pgdeck.dev/trigger-switchover`
/// changes (PGO's convention).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Switchover {
    /// Allow switchovers triggered by the annotation.
    pub enabled: bool,
    /// The instance to promote; the healthiest candidate when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_instance: Option<String>,
    /// `Switchover` (the default) needs a healthy primary; `Failover` promotes without one.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<SwitchoverType>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SwitchoverType {
    #[default]
    Switchover,
    Failover,
}

/// Free-form, as Patroni's own dynamic configuration is; the known keys are checked by
/// `api::validate` and the schema keeps unknown ones (`x-kubernetes-preserve-unknown-fields`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct DynamicConfiguration(pub Map<String, Value>);

/// How synchronous replication is set up, as the console and status show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    Off,
    On,
    Strict,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Off => "off",
            SyncMode::On => "on",
            SyncMode::Strict => "strict",
        }
    }
}

impl DynamicConfiguration {
    pub fn flag(&self, key: &str) -> bool {
        self.0.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn sync_mode(&self) -> SyncMode {
        match (
            self.flag("synchronous_mode"),
            self.flag("synchronous_mode_strict"),
        ) {
            (false, _) => SyncMode::Off,
            (true, false) => SyncMode::On,
            (true, true) => SyncMode::Strict,
        }
    }

    /// `postgresql.parameters`, when it is a map.
    pub fn parameters(&self) -> Option<&Map<String, Value>> {
        self.0.get("postgresql")?.get("parameters")?.as_object()
    }
}

impl JsonSchema for DynamicConfiguration {
    fn schema_name() -> Cow<'static, str> {
        "DynamicConfiguration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Declared properties are typed by the schema; the rest is Patroni's to judge.
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {
                "synchronous_mode": {"type": "boolean"},
                "synchronous_mode_strict": {"type": "boolean"},
                "postgresql": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "parameters": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }
            }
        })
    }
}
