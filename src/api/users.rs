//! `spec.users[]` and `spec.databaseInitSQL`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The bootstrap superuser: Patroni's and pgdeck's, and a user like any other when listed.
pub const SUPERUSER: &str = "postgres";
/// Replication and pg_rewind run as this role; its password is pgdeck's, so `spec.users` may not
/// name it.
pub const REPLICATION_USER: &str = "replicator";

/// A PostgreSQL role pgdeck creates and keeps, with a generated password.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub name: String,
    /// Databases this user owns and may connect to; created when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
    /// Role attributes as SQL, e.g. `SUPERUSER` or `CREATEDB NOLOGIN`; never a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "!self.matches('(?i:PASSWORD)')",
        "message": "cannot assign password"
    }, {
        "rule": r"!self.matches(r'[;\\[:cntrl:]]|--|/[*]')",
        "message": "must not contain `;`, `--`, `/*`, backslashes or control characters: role attributes are one clause of ALTER ROLE"
    }]))]
    pub options: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSpec {
    #[serde(rename = "type")]
    pub type_: PasswordType,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PasswordType {
    #[default]
    ASCII,
    AlphaNumeric,
}

/// SQL run once against the primary after the cluster starts: key `key` of ConfigMap `name`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseInitSql {
    pub name: String,
    pub key: String,
}
