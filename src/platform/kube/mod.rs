//! The Kubernetes platform: `pgdeck operator` reconciles PostgresClusters into Kubernetes
//! objects (StatefulSets, Services, Secrets, ...) that it owns; Patroni keeps each cluster highly
//! available through its Kubernetes DCS; pgBackRest backs it up from a repository host.

pub mod admin;
pub mod adopt;
pub mod apply;
pub mod client;
pub mod clone_source;
pub mod connect;
pub mod events;
pub mod expansion;
pub mod finalizer;
pub mod foreign;
pub mod forward;
pub mod init_sql;
pub mod kept;
pub mod leader;
pub mod manifests;
pub mod manual_backup;
pub mod metrics;
pub mod mounts;
pub mod names;
pub mod objects;
pub mod operator;
pub mod owned;
pub mod pgo;
pub mod pgo_actions;
pub mod pod_socket;
pub mod pod_socket_listener;
pub mod pools;
pub mod proxy;
pub mod reconcile;
pub mod repo_info;
pub mod rolling;
pub mod scaling;
pub mod sql;
pub mod standby;
pub mod status;
pub mod teardown;

use kube::Resource;

/// The field manager of everything the operator writes (server-side apply).
pub const FIELD_MANAGER: &str = "pgdeck";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// A call to the API server failed; names the call and the object.
    #[error("cannot {action} {kind} {namespace}/{name}: {source}")]
    Api {
        action: &'static str,
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// A call that did not answer in time.
    #[error("cannot {action} {what}: no answer within {after:?}")]
    Timeout {
        action: &'static str,
        what: String,
        after: std::time::Duration,
    },
    #[error(transparent)]
    Tls(#[from] objects::TlsError),
    #[error(transparent)]
    Patroni(#[from] crate::observe::patroni::PatroniError),
}

impl KubeError {
    /// The error of `action` on the object `namespace/name` of kind `K`.
    pub fn api<K: Resource<DynamicType = ()>>(
        action: &'static str,
        namespace: &str,
        name: &str,
    ) -> impl FnOnce(kube::Error) -> KubeError {
        let (kind, namespace, name) = (
            K::kind(&()).to_lowercase(),
            namespace.to_string(),
            name.to_string(),
        );
        move |source| KubeError::Api {
            action,
            kind,
            namespace,
            name,
            source,
        }
    }
}
