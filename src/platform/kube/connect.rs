//! How users reach a cluster on Kubernetes: what the operator wrote into the user's
//! `<c>-pguser-<user>` Secret, for the primary's Service, the replicas' and pgBouncer's.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::names::Names;

pub struct UserConnection {
    pub password: Option<String>,
    pub database: Option<String>,
    /// Through `<c>-primary`.
    pub primary: Option<String>,
    /// Through `<c>-replicas`.
    pub replicas: Option<String>,
    /// Through `<c>-pgbouncer`, while the cluster has pgBouncer.
    pub pgbouncer: Option<String>,
}

/// The user's Secret, `None` until the operator has written it.
pub async fn user(
    client: &Client,
    namespace: &str,
    cluster: &str,
    user: &str,
) -> Result<Option<UserConnection>, kube::Error> {
    let names = Names::new(cluster, namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let Some(secret) = secrets.get_opt(&names.pguser(user)).await? else {
        return Ok(None);
    };
    let field = |key: &str| {
        let bytes = secret.data.as_ref()?.get(key)?;
        String::from_utf8(bytes.0.clone()).ok()
    };
    let primary = field("uri");
    // The same URI with the replicas' Service for host.
    let replicas = primary.as_ref().map(|uri| {
        uri.replacen(
            &names.service_host(&names.primary()),
            &names.service_host(&names.replicas()),
            1,
        )
    });
    Ok(Some(UserConnection {
        password: field("password"),
        database: field("dbname"),
        primary,
        replicas,
        pgbouncer: field("pgbouncer-uri"),
    }))
}
