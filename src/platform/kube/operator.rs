//! `pgdeck operator` on Kubernetes: a kube-runtime Controller on PostgresClusters, woken by
//! changes to them and to what they own (and by their pods, whose roles Patroni labels), run
//! only while this replica holds the leader Lease; with metrics and health endpoints, and JSON
//! logs naming the cluster.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use super::apply::Kind;
use super::leader::Elector;
use super::metrics::Metrics;
use super::reconcile::{Context, error_policy, reconcile};
use super::{KubeError, names};
use crate::api::PostgresCluster;
use crate::platform::health;

pub struct Options {
    /// Watch only this namespace; every namespace when `None`.
    pub namespace: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_address: String,
    /// Where the leader Lease lives.
    pub lease_namespace: String,
    /// This replica's name in the Lease.
    pub identity: String,
}

/// The Lease replicas compete for.
pub const LEASE: &str = "pgdeck-operator";

impl Options {
    /// From the pod's environment (`POD_NAMESPACE`, `POD_NAME`, set by the Deployment), else
    /// the watched namespace and this host.
    pub fn from_env(namespace: Option<String>, metrics_address: String) -> Options {
        let lease_namespace = std::env::var("POD_NAMESPACE")
            .ok()
            .or_else(|| namespace.clone())
            .unwrap_or_else(|| "default".into());
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "pgdeck".into());
            format!("{host}-{}", std::process::id())
        });
        Options {
            namespace,
            metrics_address,
            lease_namespace,
            identity,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("cannot serve metrics on {address}: {source}")]
    Metrics {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// Run until `shutdown` completes.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), OperatorError> {
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind(&options.metrics_address)
        .await
        .map_err(|source| OperatorError::Metrics {
            address: options.metrics_address.clone(),
            source,
        })?;
    let server = tokio::spawn(health::serve(listener, metrics.clone()));
    let (tx, mut leading) = watch::channel(false);
    let elector = Elector::new(
        client.clone(),
        &options.lease_namespace,
        LEASE,
        &options.identity,
    );
    let election = tokio::spawn(elector.run(tx));
    tracing::info!(
        namespace = options.namespace.as_deref().unwrap_or("(all)"),
        identity = %options.identity,
        "pgdeck operator started"
    );
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone()));
    let work = async {
        check_api(&client, options.namespace.as_deref(), &metrics).await;
        loop {
            if leading.wait_for(|l| *l).await.is_err() {
                return;
            }
            tracing::info!("leading: reconciling");
            tokio::select! {
                _ = controller(client.clone(), options.namespace.as_deref(), ctx.clone()) => return,
                _ = leading.wait_for(|l| !*l) => tracing::warn!("lost the lease: stopped reconciling"),
            }
            // Its watch stopped with it: the leader reports the clusters now.
            ctx.metrics.watch_clusters(None);
        }
    };
    tokio::select! {
        _ = work => {}
        _ = shutdown => {}
    }
    election.abort();
    server.abort();
    tracing::info!("pgdeck operator stopped");
    Ok(())
}

/// Ready once the API server answers and knows PostgresClusters; until then say why, now and
/// then.
async fn check_api(client: &Client, namespace: Option<&str>, metrics: &Metrics) {
    let api: Api<PostgresCluster> = scoped(client, namespace);
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => {
                metrics.set_ready(true);
                return;
            }
            Err(e) => tracing::warn!(
                error = %e,
                "cannot list postgresclusters: is the CRD installed (kubectl apply -k operator/)?"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

fn scoped<K: Kind>(client: &Client, namespace: Option<&str>) -> Api<K> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn scoped_cluster(client: &Client, namespace: Option<&str>) -> Api<PostgresCluster> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The Controller: reconciles until its streams end (the process is told to stop).
async fn controller(client: Client, namespace: Option<&str>, ctx: Arc<Context>) {
    // Only pgdeck's objects are watched, not every Secret in the cluster.
    let ours = watcher::Config::default().labels(&format!(
        "{}={}",
        names::MANAGED_BY.0,
        names::MANAGED_BY.1
    ));
    let members = watcher::Config::default().labels(names::CLUSTER);
    let controller = Controller::new(
        scoped_cluster(&client, namespace),
        watcher::Config::default(),
    );
    let clusters = controller.store();
    ctx.metrics.watch_clusters(Some(clusters.clone()));
    controller
        .owns(scoped::<StatefulSet>(&client, namespace), ours.clone())
        // pgBouncer's: its ready pods are in the status.
        .owns(scoped::<Deployment>(&client, namespace), ours.clone())
        .owns(scoped::<Service>(&client, namespace), ours.clone())
        .owns(scoped::<ConfigMap>(&client, namespace), ours.clone())
        .owns(scoped::<Secret>(&client, namespace), ours.clone())
        .owns(
            scoped::<PersistentVolumeClaim>(&client, namespace),
            ours.clone(),
        )
        .owns(scoped::<ServiceAccount>(&client, namespace), ours.clone())
        .owns(scoped::<Role>(&client, namespace), ours.clone())
        .owns(scoped::<RoleBinding>(&client, namespace), ours.clone())
        .owns(scoped::<Job>(&client, namespace), ours.clone())
        .owns(scoped::<CronJob>(&client, namespace), ours.clone())
        .owns(
            scoped::<PodDisruptionBudget>(&client, namespace),
            ours.clone(),
        )
        .owns(scoped::<NetworkPolicy>(&client, namespace), ours)
        // A pod's role label changes on failover: the status should say so at once.
        .watches(scoped::<Pod>(&client, namespace), members, |pod| {
            let cluster = pod.labels().get(names::CLUSTER)?.clone();
            Some(ObjectRef::<PostgresCluster>::new(&cluster).within(&pod.namespace()?))
        })
        // The DBA's ConfigMaps (unlabelled): a cluster waits for its init SQL to appear or change.
        .watches(
            scoped::<ConfigMap>(&client, namespace),
            watcher::Config::default(),
            move |cm| waiting_for(&clusters.state(), &cm),
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await
}

/// The clusters whose init SQL has not run and comes from `cm`.
fn waiting_for(
    clusters: &[Arc<PostgresCluster>],
    cm: &ConfigMap,
) -> Vec<ObjectRef<PostgresCluster>> {
    clusters
        .iter()
        .filter(|c| c.namespace() == cm.namespace().unwrap_or_default())
        .filter(|c| {
            c.spec
                .database_init_sql
                .as_ref()
                .is_some_and(|s| Some(&s.name) == cm.metadata.name.as_ref())
        })
        .filter(|c| {
            c.status
                .as_ref()
                .is_none_or(|s| s.database_init_sql.is_none())
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The operator's log format: one JSON object per line, with the reconcile's span (the
/// cluster's name and namespace) on every line.
pub fn json_logs<W>(
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, ns: &str, init: Option<&str>, ran: bool) -> Arc<PostgresCluster> {
        let init = init
            .map(|cm| format!("  databaseInitSQL: {{name: {cm}, key: init.sql}}\n"))
            .unwrap_or_default();
        let mut c = crate::api::manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  postgresVersion: 15\n{init}  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n"
        ))
        .unwrap();
        if ran {
            c.status = Some(crate::api::PostgresClusterStatus {
                database_init_sql: Some("sql".into()),
                ..Default::default()
            });
        }
        Arc::new(c)
    }

    #[test]
    fn a_config_map_wakes_the_clusters_waiting_for_its_init_sql() {
        let clusters = [
            cluster("waits", "db", Some("sql"), false),
            cluster("ran", "db", Some("sql"), true),
            cluster("other-map", "db", Some("other"), false),
            cluster("elsewhere", "dev", Some("sql"), false),
            cluster("none", "db", None, false),
        ];
        let cm: ConfigMap =
            serde_yaml::from_str("metadata: {name: sql, namespace: db}\ndata: {init.sql: x}")
                .unwrap();
        let woken: Vec<String> = waiting_for(&clusters, &cm)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(woken, ["waits"]);
    }
}
