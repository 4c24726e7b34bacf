//! Users and databases from `spec.users`, created on the primary with generated passwords.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::api::users::UserSpec;

/// A user as it should be, with its password: what `apply` makes true.
pub struct DesiredUser {
    pub spec: UserSpec,
    pub password: String,
}

impl DesiredUser {
    /// Changes when anything about the user changes, so unchanged users are not re-applied.
    pub fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            &self.spec.name,
            &self.spec.options,
            &self.spec.databases,
            &self.password,
        )
            .hash(&mut h);
        h.finish()
    }
}

/// Create or update each user and its databases through `conninfo` (the primary, as the
/// superuser). Returns the fingerprints applied.
pub async fn apply(conninfo: &str, users: &[DesiredUser]) -> Result<BTreeMap<String, u64>, String> {
    let mut config: tokio_postgres::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout(Duration::from_secs(2));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect to the primary: {e}"))?;
    tokio::spawn(connection);
    let mut applied = BTreeMap::new();
    for user in users {
        let name = ident(&user.spec.name);
        let exists = !client
            .query(
                "SELECT 1 FROM pg_roles WHERE rolname = $1",
                &[&user.spec.name],
            )
            .await
            .map_err(|e| e.to_string())?
            .is_empty();
        let verb = if exists { "ALTER" } else { "CREATE" };
        let options = user.spec.options.as_deref().unwrap_or_default();
        let sql = format!(
            "{verb} ROLE {name} LOGIN {options} PASSWORD {}",
            literal(&user.password)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| format!("user {}: {e}", user.spec.name))?;
        for db in user.spec.databases.iter().flatten() {
            let db_exists = !client
                .query("SELECT 1 FROM pg_database WHERE datname = $1", &[db])
                .await
                .map_err(|e| e.to_string())?
                .is_empty();
            let sql = if db_exists {
                format!("GRANT ALL PRIVILEGES ON DATABASE {} TO {name}", ident(db))
            } else {
                format!("CREATE DATABASE {} OWNER {name}", ident(db))
            };
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| format!("database {db}: {e}"))?;
        }
        applied.insert(user.spec.name.clone(), user.fingerprint());
    }
    Ok(applied)
}

/// An SQL identifier, quoted.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// An SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
