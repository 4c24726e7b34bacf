//! What the instances mount that the DBA names: claims (`volumes.additional`), the Secrets
//! and ConfigMaps of `spec.config.files`, and those of the collector's files and environment
//! (`spec.instrumentation.config`). A tenant who may edit a PostgresCluster but
//! not make pods must not reach, through pgdeck, what pgdeck keeps for a cluster (another
//! cluster's data, a kept repository, a cluster's credentials or CA key: a database superuser
//! reads any file under `/etc/postgres`); and a claim, Secret or ConfigMap that does not exist
//! would leave a rolled instance's pod pending. Either holds the instances as they run: no new
//! pod template is written until the spec names only what exists and is not pgdeck's.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, VolumeProjection};
use kube::api::Api;
use kube::{Client, Resource, ResourceExt};

use super::KubeError;
use super::names;
use super::objects::Objects;
use crate::api::PostgresCluster;

pub async fn hold(
    client: &Client,
    cluster: &PostgresCluster,
    desired: &mut Objects,
    existing: &Objects,
) -> Result<Option<String>, KubeError> {
    let ns = cluster.namespace();
    let claims: BTreeSet<&str> = cluster
        .spec
        .instances
        .iter()
        .flat_map(|s| s.volumes.iter().flat_map(|v| &v.additional))
        .map(|a| a.claim_name.as_str())
        .collect();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut problems = Vec::new();
    for claim in claims {
        let found = api
            .get_opt(claim)
            .await
            .map_err(KubeError::api::<PersistentVolumeClaim>("get", ns, claim))?;
        match found {
            None => problems.push(format!(
                "spec.instances[].volumes.additional: claim {claim} does not exist"
            )),
            Some(v) if pgdecks(&v) => problems.push(format!(
                "spec.instances[].volumes.additional: claim {claim} is a volume pgdeck keeps \
                 for a cluster, never mounted as an additional volume"
            )),
            Some(_) => {}
        }
    }
    let files = cluster.spec.config.as_ref().and_then(|c| c.files.as_ref());
    let files = files.map(Vec::as_slice).unwrap_or_default();
    problems.extend(projected(client, ns, "spec.config.files", files).await?);
    // The collector's files and environment: its exporters can send them anywhere.
    let collector = (cluster.spec.instrumentation.as_ref()).and_then(|i| i.config.as_ref());
    let files = collector
        .and_then(|c| c.files.as_deref())
        .unwrap_or_default();
    let field = "spec.instrumentation.config.files";
    problems.extend(projected(client, ns, field, files).await?);
    let env = collector.and_then(|c| c.environment_variables.as_deref());
    for (i, var) in env.unwrap_or_default().iter().enumerate() {
        let from = var.value_from.as_ref();
        let field = format!("spec.instrumentation.config.environmentVariables[{i}].valueFrom");
        if let Some(s) = from.and_then(|f| f.secret_key_ref.as_ref()) {
            let field = format!("{field}.secretKeyRef");
            let found = named::<Secret>(client, ns, &field, &s.name, s.optional).await?;
            problems.extend(found);
        }
        if let Some(m) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
            let field = format!("{field}.configMapKeyRef");
            let found = named::<ConfigMap>(client, ns, &field, &m.name, m.optional).await?;
            problems.extend(found);
        }
    }
    if problems.is_empty() {
        return Ok(None);
    }
    // Instances keep the template they run; none starts. Removed instances are not in
    // `desired`, and go as they would.
    desired.stateful_sets = desired
        .stateful_sets
        .iter()
        .filter_map(|d| {
            existing
                .stateful_sets
                .iter()
                .find(|e| e.name_any() == d.name_any())
                .cloned()
        })
        .collect();
    Ok(Some(format!(
        "{}; the instances keep the pods they run until it is fixed",
        problems.join("; ")
    )))
}

/// Why the Secrets and ConfigMaps that `projections` (the list at `field`) name cannot be
/// mounted.
async fn projected(
    client: &Client,
    ns: &str,
    field: &str,
    projections: &[VolumeProjection],
) -> Result<Vec<String>, KubeError> {
    let mut problems = Vec::new();
    for (i, file) in projections.iter().enumerate() {
        if let Some(s) = &file.secret {
            let field = format!("{field}[{i}].secret");
            problems.extend(named::<Secret>(client, ns, &field, &s.name, s.optional).await?);
        }
        if let Some(m) = &file.config_map {
            let field = format!("{field}[{i}].configMap");
            problems.extend(named::<ConfigMap>(client, ns, &field, &m.name, m.optional).await?);
        }
    }
    Ok(problems)
}

/// Why the `K` named `name` (at `field`) cannot be mounted, if it cannot.
async fn named<K>(
    client: &Client,
    ns: &str,
    field: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Option<String>, KubeError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let found = get::<K>(client, ns, name).await?;
    Ok(refusal(
        field,
        &K::kind(&()),
        name,
        optional,
        found.as_ref(),
    ))
}

async fn get<K>(client: &Client, ns: &str, name: &str) -> Result<Option<K>, KubeError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(KubeError::api::<K>("get", ns, name))
}

/// Why a projected `kind` named `name` cannot be mounted, if it cannot.
fn refusal<K: Resource>(
    field: &str,
    kind: &str,
    name: &str,
    optional: Option<bool>,
    found: Option<&K>,
) -> Option<String> {
    match found {
        None if optional != Some(true) => Some(format!("{field}: {kind} {name} does not exist")),
        Some(o) if pgdecks(o) => Some(format!(
            "{field}: {kind} {name} is one pgdeck keeps for a cluster, never projected into \
             the instances"
        )),
        _ => None,
    }
}

/// Whether pgdeck made the object for a cluster (this one or another).
fn pgdecks<K: Resource>(v: &K) -> bool {
    let labels = v.labels();
    labels.contains_key(names::CLUSTER_UID)
        || labels.get(names::MANAGED_BY.0).map(String::as_str) == Some(names::MANAGED_BY.1)
}
