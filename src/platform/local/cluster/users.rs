//! Users and databases from `spec.users`, created on the primary with generated passwords, and
//! how pgdeck itself reaches an instance as the superuser.
//!
//! pgdeck and Patroni connect as the superuser through the instance's socket by peer
//! authentication, never with a password: `postgres` may be in `spec.users`, and the password it
//! gets there must not lock either of them out.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use nix::unistd::{Uid, User};
use postgres_protocol::password::scram_sha_256;
use tokio_postgres::NoTls;

use super::super::account::Account;
use crate::api::users::UserSpec;
use crate::plan::patroni::{REPLICATION_USER, SUPERUSER, rewind_grants};

/// The operating-system accounts that may connect as the superuser through the socket: the
/// account the database processes run as, and pgdeck's own when it differs (root).
pub fn superuser_peers(account: &Account) -> Vec<String> {
    let mut peers = vec![account.name.clone()];
    if account.switches()
        && let Ok(Some(me)) = User::from_uid(Uid::effective())
    {
        peers.push(me.name);
    }
    peers
}

/// A connection string for the superuser through the socket in `socket_dir` of the instance
/// listening on `port`.
pub fn superuser_conninfo(socket_dir: &Path, port: u16) -> String {
    format!(
        "host={} port={port} user={SUPERUSER} dbname=postgres",
        conninfo_value(&socket_dir.display().to_string())
    )
}

/// A value in a key=value connection string, quoted.
pub(super) fn conninfo_value(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A user as it should be, with its password: what `apply` makes true.
pub struct DesiredUser {
    pub spec: UserSpec,
    pub password: String,
    /// A predefined role it is granted (the monitoring role's `pg_monitor`).
    pub member_of: Option<&'static str>,
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
            self.member_of,
        )
            .hash(&mut h);
        h.finish()
    }
}

/// The entry of [`apply`]'s result that records the replication user's pg_rewind grants
/// (`replicator` is reserved, so no user entry can take the key).
pub fn rewind_grants_applied() -> (String, u64) {
    (REPLICATION_USER.to_string(), 1)
}

/// Create or update each user and its databases through `conninfo` (the primary, as the
/// superuser), after granting the replication user what pg_rewind needs, and take the login
/// from the roles in `disable` that exist (the monitoring role without an exporter, as PGO
/// does). Returns the fingerprints applied.
pub async fn apply(
    conninfo: &str,
    users: &[DesiredUser],
    disable: &[&str],
) -> Result<BTreeMap<String, u64>, String> {
    let mut config: tokio_postgres::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout(Duration::from_secs(2));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect to the primary: {e}"))?;
    tokio::spawn(connection);
    client
        .batch_execute(&rewind_grants())
        .await
        .map_err(|e| format!("pg_rewind's grants: {e}"))?;
    for role in disable {
        let exists = !client
            .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[role])
            .await
            .map_err(|e| e.to_string())?
            .is_empty();
        if exists {
            client
                .batch_execute(&format!("ALTER ROLE {} NOLOGIN", ident(role)))
                .await
                .map_err(|e| format!("user {role}: {e}"))?;
        }
    }
    let mut applied = BTreeMap::from([rewind_grants_applied()]);
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
        let attributes = user.spec.attributes();
        // The verifier, computed here: the password itself never reaches the server, where a
        // failing statement would be logged.
        let sql = format!(
            "{verb} ROLE {name} {attributes} PASSWORD {}",
            literal(&scram_sha_256(user.password.as_bytes()))
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| format!("user {}: {e}", user.spec.name))?;
        if let Some(role) = user.member_of {
            client
                .batch_execute(&format!("GRANT {} TO {name}", ident(role)))
                .await
                .map_err(|e| format!("user {}: {e}", user.spec.name))?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_superuser_connects_through_the_socket_without_a_password() {
        let info = superuser_conninfo(Path::new("/h/it's here/run"), 20001);
        assert_eq!(
            info,
            "host='/h/it\\'s here/run' port=20001 user=postgres dbname=postgres"
        );
        let config: tokio_postgres::Config = info.parse().unwrap();
        assert_eq!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Unix(
                "/h/it's here/run".into()
            )]
        );
        assert!(config.get_password().is_none());
    }
}
