//! Where `pgdeck psql` and the console's `p` connect on this machine: the chosen instance (by
//! default the primary) over TLS checked against the cluster's CA, with the password `pgdeck
//! uri` gives. The superuser, when `spec.users` does not list it, has no password: it comes in
//! through the instance's socket by peer authentication, as pgdeck itself does.

use crate::api::PostgresCluster;
use crate::api::users::SUPERUSER;
use crate::platform::local::Local;
use crate::platform::local::cluster::{stored_password, user_key};
use crate::platform::psql::{self, Session};

/// psql's connection to `instance` (the primary when `None`) of `cluster` as `user`.
pub fn session(
    local: &Local,
    cluster: &PostgresCluster,
    instance: Option<&str>,
    user: &str,
) -> Result<Session, String> {
    let name = cluster.name();
    let target = psql::instance(cluster, instance)?;
    let port = target
        .port
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("{} reports no port yet", target.name))?;
    let dir = local.home().cluster(cluster.namespace(), name);
    let program = psql::program(cluster.spec.postgres_version);
    let users = cluster.users();
    match users.iter().find(|u| u.name == user) {
        Some(spec) => Ok(Session {
            program,
            host: target
                .host
                .clone()
                .ok_or_else(|| format!("{} reports no address yet", target.name))?,
            hostaddr: None,
            port,
            user: spec.name.clone(),
            database: spec
                .databases
                .as_ref()
                .and_then(|d| d.first().cloned())
                .unwrap_or_else(|| "postgres".into()),
            password: Some(stored_password(&dir, &user_key(&spec.name)).ok_or_else(|| {
                format!(
                    "no password for {user} yet: the reconciler creates it when the cluster is up"
                )
            })?),
            ca_file: Some(dir.ca_cert()),
        }),
        None if user == SUPERUSER => Ok(Session::superuser_by_socket(
            program,
            dir.instance(&target.name)
                .socket_dir()
                .display()
                .to_string(),
            port,
        )),
        None => Err(psql::no_user(cluster, user)),
    }
}
