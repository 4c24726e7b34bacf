//! `spec.authentication` (PGO 5.8+): the DBA's client authentication rules, each a pg_hba line
//! given raw (`hba`) or by its parts.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// Rules matched before the Patroni section's `pg_hba`, after pgdeck's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub rules: Option<Vec<HbaRule>>,
}

/// One rule: either `hba`, a whole pg_hba line, or `connection` and `method` with the
/// databases, users and options they apply to (all of them when absent).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HbaRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub hba: Option<String>,
    /// `host`, `hostssl`, `hostnossl`, `hostgssenc`, `local`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 20), regex(pattern = r"^[-a-z0-9]+$"))]
    pub connection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub databases: Option<Vec<String>>,
    /// An authentication method (`password` means `scram-sha-256`); `reject` refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 20), regex(pattern = r"^[-a-z0-9]+$"))]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 20))]
    pub options: Option<BTreeMap<String, IntOrString>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub users: Option<Vec<String>>,
}
