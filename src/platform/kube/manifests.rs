//! Users' changes to a cluster's manifest on Kubernetes (the CLI's and the console's): read,
//! change, write back over the resourceVersion read, and again when someone wrote meanwhile.
//! The operator never writes here: it owns the objects the manifest becomes.

use kube::api::PostParams;
use kube::{Api, Client};

use crate::api::PostgresCluster;

/// The field manager of what users write: the manifest, never the operator's objects.
pub const USER_MANAGER: &str = "pgdeck-cli";

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("postgrescluster {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    /// The change itself does not apply (e.g. no such instance set); nothing was written.
    #[error("{0}")]
    Refused(String),
    #[error("postgrescluster {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("postgrescluster {namespace}/{name} kept changing underneath: try again")]
    Busy { namespace: String, name: String },
}

impl ChangeError {
    /// An API error on `namespace/name`, a 404 as [`ChangeError::NotFound`].
    pub fn api(namespace: &str, name: &str, source: kube::Error) -> ChangeError {
        let (namespace, name) = (namespace.to_string(), name.to_string());
        match source {
            kube::Error::Api(s) if s.code == 404 => ChangeError::NotFound { namespace, name },
            source => ChangeError::Api {
                namespace,
                name,
                source,
            },
        }
    }
}

pub fn params() -> PostParams {
    PostParams {
        field_manager: Some(USER_MANAGER.into()),
        ..Default::default()
    }
}

/// Change cluster `name` with `change`; the update carries the resourceVersion it read, so a
/// concurrent write is never overwritten: it is read again and changed again.
pub async fn modify<T>(
    client: &Client,
    namespace: &str,
    name: &str,
    mut change: impl FnMut(&mut PostgresCluster) -> Result<T, String>,
) -> Result<(PostgresCluster, T), ChangeError> {
    let api: Api<PostgresCluster> = Api::namespaced(client.clone(), namespace);
    for _ in 0..5 {
        let mut cluster = api
            .get(name)
            .await
            .map_err(|e| ChangeError::api(namespace, name, e))?;
        let out = change(&mut cluster).map_err(ChangeError::Refused)?;
        match api.replace(name, &params(), &cluster).await {
            Ok(updated) => return Ok((updated, out)),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(ChangeError::api(namespace, name, e)),
        }
    }
    Err(ChangeError::Busy {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}
