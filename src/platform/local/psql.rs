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
    let status = cluster.status.clone().unwrap_or_default();
    let target = match instance {
        Some(i) => status
            .instances
            .iter()
            .find(|s| s.name == i)
            .ok_or_else(|| {
                format!(
                    "{name} has no instance {i}; its instances: {}",
                    status
                        .instances
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
        None => status
            .instances
            .iter()
            .find(|s| Some(&s.name) == status.primary.as_ref())
            .ok_or_else(|| format!("{name} has no primary yet"))?,
    };
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
        None if user == SUPERUSER => Ok(Session {
            program,
            host: dir
                .instance(&target.name)
                .socket_dir()
                .display()
                .to_string(),
            port,
            user: SUPERUSER.into(),
            database: "postgres".into(),
            password: None,
            ca_file: None,
        }),
        None => Err(format!(
            "{name} has no user {user}; its users: {}",
            users
                .iter()
                .map(|u| u.name.as_str())
                .chain((!users.iter().any(|u| u.name == SUPERUSER)).then_some(SUPERUSER))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
