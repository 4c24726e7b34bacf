//! How to reach a local cluster: libpq URIs built from its status and stored passwords.

use std::path::Path;

use crate::api::PostgresCluster;
use crate::api::users::UserSpec;
use crate::display::uri_component as encode;

/// A URI for `user` through the cluster's pgBouncers (each listed: libpq tries the next when
/// one does not answer), over TLS checked against the cluster's CA in `ca_file`. `None` while
/// none runs.
pub fn pgbouncer_uri(
    cluster: &PostgresCluster,
    user: &UserSpec,
    password: &str,
    ca_file: &Path,
) -> Option<String> {
    let hosts = &cluster.status.as_ref()?.proxy.as_ref()?.pg_bouncer.hosts;
    (!hosts.is_empty()).then(|| {
        format!(
            "postgresql://{}:{}@{}{}?sslmode=verify-full&sslrootcert={}",
            encode(&user.name),
            encode(password),
            hosts.join(","),
            database(user),
            encode(&ca_file.display().to_string())
        )
    })
}

/// The user's first database as a URI's path (`/db`), or nothing.
fn database(user: &UserSpec) -> String {
    user.databases
        .as_ref()
        .and_then(|d| d.first())
        .map(|d| format!("/{}", encode(d)))
        .unwrap_or_default()
}

/// A URI for `user` listing every instance (or every standby), letting libpq find the primary
/// (`target_session_attrs=read-write`) or a standby: it keeps working across switchovers.
/// Over TLS only, checking the server's certificate against the cluster's CA in `ca_file`.
/// `None` while the cluster has no such instance.
pub fn uri(
    cluster: &PostgresCluster,
    user: &UserSpec,
    password: &str,
    replica: bool,
    ca_file: &Path,
) -> Option<String> {
    let status = cluster.status.as_ref()?;
    let hosts: Vec<String> = status
        .instances
        .iter()
        .filter(|i| !replica || matches!(i.role.as_deref(), Some("replica" | "sync_standby")))
        .filter_map(|i| Some(format!("{}:{}", i.host.as_ref()?, i.port?)))
        .collect();
    if hosts.is_empty() {
        return None;
    }
    let db = database(user);
    let attrs = if replica { "standby" } else { "read-write" };
    Some(format!(
        "postgresql://{}:{}@{}{db}?target_session_attrs={attrs}&sslmode=verify-full&sslrootcert={}",
        encode(&user.name),
        encode(password),
        hosts.join(","),
        encode(&ca_file.display().to_string())
    ))
}
