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

impl UserSpec {
    /// Whether the role is a superuser: the bootstrap one, or one given `SUPERUSER`.
    pub fn is_superuser(&self) -> bool {
        self.name == SUPERUSER
            || self
                .options
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .any(|w| w.eq_ignore_ascii_case("SUPERUSER"))
    }

    /// The attributes pgdeck gives the role: `options`, with LOGIN unless they say otherwise
    /// (`LOGIN NOLOGIN` is an error to PostgreSQL, and PGO's users may write `NOLOGIN`).
    pub fn attributes(&self) -> String {
        let options = self.options.as_deref().unwrap_or_default().trim();
        let says_login = options
            .split_whitespace()
            .any(|w| w.eq_ignore_ascii_case("LOGIN") || w.eq_ignore_ascii_case("NOLOGIN"));
        match (says_login, options.is_empty()) {
            (true, _) => options.to_string(),
            (false, true) => "LOGIN".to_string(),
            (false, false) => format!("LOGIN {options}"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(options: Option<&str>) -> String {
        UserSpec {
            options: options.map(str::to_string),
            ..UserSpec::default()
        }
        .attributes()
    }

    #[test]
    fn a_role_logs_in_unless_its_options_say_otherwise() {
        assert_eq!(attributes(None), "LOGIN");
        assert_eq!(attributes(Some("CREATEDB")), "LOGIN CREATEDB");
        assert_eq!(attributes(Some("CREATEDB nologin")), "CREATEDB nologin");
        assert_eq!(attributes(Some("LOGIN CREATEDB")), "LOGIN CREATEDB");
        assert_eq!(attributes(Some("NOLOGINX")), "LOGIN NOLOGINX");
    }
}
