//! What a cluster has on the API server: its objects of every kind pgdeck writes, and its pods,
//! found by the `pgdeck.dev/cluster` label (one list per kind).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, ListParams};

use super::apply::Kind;
use super::objects::Objects;
use super::{KubeError, names};

/// A cluster's objects as listed, and its pods.
#[derive(Debug, Default, Clone)]
pub struct Owned {
    pub objects: Objects,
    pub pods: Vec<Pod>,
}

/// The selector of a cluster's objects.
pub fn selector(cluster: &str) -> String {
    format!("{}={cluster}", names::CLUSTER)
}

/// List every kind at once.
pub async fn list(client: &Client, namespace: &str, cluster: &str) -> Result<Owned, KubeError> {
    let params = ListParams::default().labels(&selector(cluster));
    let (secrets, config_maps, service_accounts, roles, role_bindings, services) = tokio::try_join!(
        of::<Secret>(client, namespace, &params),
        of::<ConfigMap>(client, namespace, &params),
        of::<ServiceAccount>(client, namespace, &params),
        of::<Role>(client, namespace, &params),
        of::<RoleBinding>(client, namespace, &params),
        of::<Service>(client, namespace, &params),
    )?;
    let (network_policies, volumes, stateful_sets, deployments) = tokio::try_join!(
        of::<NetworkPolicy>(client, namespace, &params),
        of::<PersistentVolumeClaim>(client, namespace, &params),
        of::<StatefulSet>(client, namespace, &params),
        of::<Deployment>(client, namespace, &params),
    )?;
    let (budgets, jobs, cron_jobs, pods) = tokio::try_join!(
        of::<PodDisruptionBudget>(client, namespace, &params),
        of::<Job>(client, namespace, &params),
        of::<CronJob>(client, namespace, &params),
        of::<Pod>(client, namespace, &params),
    )?;
    Ok(Owned {
        objects: Objects {
            secrets,
            config_maps,
            service_accounts,
            roles,
            role_bindings,
            services,
            network_policies,
            volumes,
            stateful_sets,
            deployments,
            budgets,
            jobs,
            cron_jobs,
        },
        pods,
    })
}

async fn of<K: Kind>(
    client: &Client,
    namespace: &str,
    params: &ListParams,
) -> Result<Vec<K>, KubeError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let selector = params.label_selector.clone().unwrap_or_default();
    Ok(api
        .list(params)
        .await
        .map_err(KubeError::api::<K>(
            "list",
            namespace,
            &format!("-l {selector}"),
        ))?
        .items)
}
