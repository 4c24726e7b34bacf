//! What pgBouncer's admin console reports: its pools (`SHOW POOLS`), as the console shows them.

use tokio_postgres::SimpleQueryMessage;

/// The pools one pgBouncer reports, and which pgBouncer when that needs saying.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pools {
    pub from: Option<String>,
    pub pools: Vec<Pool>,
}

/// One pool: a database and user, its clients and its server connections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pool {
    pub database: String,
    pub user: String,
    /// Clients linked to a server connection, or idle without needing one.
    pub clients_active: i64,
    /// Clients waiting for a server connection.
    pub clients_waiting: i64,
    pub servers_active: i64,
    pub servers_idle: i64,
    /// How long the oldest waiting client has waited, in seconds.
    pub max_wait_seconds: i64,
}

/// The pools in `SHOW POOLS`' rows, without the admin console's own.
pub fn pools(rows: &[SimpleQueryMessage]) -> Vec<Pool> {
    rows.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .map(|r| {
            let text = |k: &str| r.try_get(k).ok().flatten().unwrap_or_default().to_string();
            let int = |k: &str| text(k).parse().unwrap_or(0);
            Pool {
                database: text("database"),
                user: text("user"),
                clients_active: int("cl_active"),
                clients_waiting: int("cl_waiting"),
                servers_active: int("sv_active"),
                servers_idle: int("sv_idle"),
                max_wait_seconds: int("maxwait"),
            }
        })
        .filter(|p| p.database != "pgbouncer")
        .collect()
}
