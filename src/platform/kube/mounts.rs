//! What the instances mount that the DBA names: claims (`volumes.additional`), the Secrets
//! and ConfigMaps of `spec.config.files`, of a cloud data source's configuration, and of the
//! collector's files, environment and queries (`spec.instrumentation.config`,
//! `.metrics.customQueries`); and those of pgBouncer's
//! `spec.proxy.pgBouncer.config.files`, held the same way. A tenant who may edit a PostgresCluster but
//! not make pods must not reach, through pgdeck, what pgdeck keeps for a cluster (another
//! cluster's data, a kept repository, a cluster's credentials or CA key: a database superuser
//! reads any file under `/etc/postgres`); and a claim, Secret or ConfigMap that does not exist
//! would leave a rolled instance's pod pending. Either holds the instances as they run: no new
//! pod template is written until the spec names only what exists and is not pgdeck's.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, VolumeProjection};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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
    bootstrapped: bool,
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
    problems.extend(
        projected(
            client,
            ns,
            "spec.config.files",
            files.into_iter().flatten(),
            false,
        )
        .await?
        .problems,
    );
    // A cloud data source's files are read by the bootstrap only: once it is done they may go.
    let source_files = cluster
        .spec
        .data_source
        .as_ref()
        .and_then(|d| d.pgbackrest.as_ref())
        .and_then(|p| p.configuration.as_ref());
    problems.extend(
        projected(
            client,
            ns,
            "spec.dataSource.pgbackrest.configuration",
            source_files.into_iter().flatten(),
            bootstrapped,
        )
        .await?
        .problems,
    );
    // The collector's files and environment: its exporters can send them anywhere.
    let collector = (cluster.spec.instrumentation.as_ref()).and_then(|i| i.config.as_ref());
    let files = collector
        .and_then(|c| c.files.as_deref())
        .unwrap_or_default();
    let field = "spec.instrumentation.config.files";
    problems.extend(projected(client, ns, field, files, false).await?.problems);
    let env = collector.and_then(|c| c.environment_variables.as_deref());
    for (i, var) in env.unwrap_or_default().iter().enumerate() {
        let from = var.value_from.as_ref();
        let field = format!("spec.instrumentation.config.environmentVariables[{i}].valueFrom");
        if let Some(s) = from.and_then(|f| f.secret_key_ref.as_ref()) {
            let field = format!("{field}.secretKeyRef");
            let (problem, _) = named::<Secret>(client, ns, &field, &s.name, s.optional).await?;
            problems.extend(problem);
        }
        if let Some(m) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
            let field = format!("{field}.configMapKeyRef");
            let (problem, _) = named::<ConfigMap>(client, ns, &field, &m.name, m.optional).await?;
            problems.extend(problem);
        }
    }
    let queries = custom_queries(client, cluster).await?;
    problems.extend(queries.problems);
    let pooler = pooler(client, cluster, desired, existing).await?;
    if problems.is_empty() {
        // The collector reads its queries when it starts: new ones restart it.
        if !queries.contents.is_empty() {
            for set in &mut desired.stateful_sets {
                let template = set.spec.as_mut().map(|s| &mut s.template);
                let collects = (template.as_ref().and_then(|t| t.spec.as_ref()))
                    .is_some_and(|p| p.containers.iter().any(|c| c.name == "collector"));
                if collects {
                    add_to_digest(
                        template.and_then(|t| t.metadata.as_mut()),
                        &queries.contents,
                    );
                }
            }
        }
        return Ok(pooler);
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
    let instances = format!(
        "{}; the instances keep the pods they run until it is fixed",
        problems.join("; ")
    );
    Ok(Some(match pooler {
        Some(p) => format!("{instances}; {p}"),
        None => instances,
    }))
}

/// pgBouncer's `config.files`: held as the instances' are (its pods keep what they run, or
/// none starts), else their contents join its pods' configuration digest, so that a change of
/// a file rolls them (pgBouncer reads its files only at start).
async fn pooler(
    client: &Client,
    cluster: &PostgresCluster,
    desired: &mut Objects,
    existing: &Objects,
) -> Result<Option<String>, KubeError> {
    let files = cluster
        .spec
        .proxy
        .as_ref()
        .and_then(|p| p.pg_bouncer.config.as_ref())
        .and_then(|c| c.files.as_ref());
    let Some(files) = files.filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let name = names::Names::new(cluster.name(), cluster.namespace()).pgbouncer();
    let field = "spec.proxy.pgBouncer.config.files";
    let found = projected(client, cluster.namespace(), field, files, false).await?;
    if found.problems.is_empty() {
        for d in desired
            .deployments
            .iter_mut()
            .filter(|d| d.name_any() == name)
        {
            let template = d.spec.as_mut().and_then(|s| s.template.metadata.as_mut());
            add_to_digest(template, &found.contents);
        }
        return Ok(None);
    }
    // Its configuration too: a pod of the running template that restarts reads what it ran.
    let kept = existing.deployments.iter().find(|e| e.name_any() == name);
    desired.deployments.retain(|d| d.name_any() != name);
    desired.deployments.extend(kept.cloned());
    if let Some(config) = existing.config_maps.iter().find(|e| e.name_any() == name) {
        desired.config_maps.retain(|d| d.name_any() != name);
        desired.config_maps.push(config.clone());
    }
    Ok(Some(format!(
        "{}; pgBouncer keeps the pods it runs until it is fixed",
        found.problems.join("; ")
    )))
}

/// Fold `contents` into a pod template's configuration digest, so that a change rolls its pods.
fn add_to_digest(template: Option<&mut ObjectMeta>, contents: &str) {
    if let Some(a) = template.map(|m| m.annotations.get_or_insert_with(Default::default)) {
        let mut fingerprint = a.get(names::CONFIG_HASH).cloned().unwrap_or_default();
        fingerprint.push_str(contents);
        a.insert(
            names::CONFIG_HASH.into(),
            names::digest(fingerprint.as_bytes()),
        );
    }
}

/// The ConfigMaps of `spec.instrumentation.metrics.customQueries.add`: each must exist, hold
/// the key named and not be pgdeck's (the collector would send what it runs anywhere); their
/// queries, to notice a change.
async fn custom_queries(
    client: &Client,
    cluster: &PostgresCluster,
) -> Result<Projected, KubeError> {
    let mut out = Projected::default();
    let sets = (cluster.spec.instrumentation.as_ref())
        .and_then(|i| i.metrics.as_ref()?.custom_queries.as_ref()?.add.as_ref());
    for (i, set) in sets.into_iter().flatten().enumerate() {
        let field = format!("spec.instrumentation.metrics.customQueries.add[{i}].queries");
        let (name, key) = (&set.queries.name, &set.queries.key);
        let (problem, found) =
            named::<ConfigMap>(client, cluster.namespace(), &field, name, None).await?;
        let text = found.as_ref().and_then(|m| m.data.as_ref()?.get(key));
        match (problem, text) {
            (Some(problem), _) => out.problems.push(problem),
            (None, None) => out
                .problems
                .push(format!("{field}: ConfigMap {name} has no key {key}")),
            (None, Some(text)) => out.contents.push_str(text),
        }
    }
    Ok(out)
}

/// What the Secrets and ConfigMaps that `files` project hold, or why some cannot be; with
/// `may_miss`, only for being pgdeck's.
#[derive(Default)]
struct Projected {
    problems: Vec<String>,
    /// Their data, as text, to notice a change.
    contents: String,
}

async fn projected(
    client: &Client,
    ns: &str,
    base: &str,
    files: impl IntoIterator<Item = &VolumeProjection>,
    may_miss: bool,
) -> Result<Projected, KubeError> {
    let mut out = Projected::default();
    let optional = |o: Option<bool>| if may_miss { Some(true) } else { o };
    for (i, file) in files.into_iter().enumerate() {
        if let Some(s) = &file.secret {
            let field = format!("{base}[{i}].secret");
            let (problem, found) =
                named::<Secret>(client, ns, &field, &s.name, optional(s.optional)).await?;
            out.problems.extend(problem);
            if let Some(data) = found.and_then(|f| f.data) {
                out.contents
                    .push_str(&serde_json::to_string(&data).unwrap_or_default());
            }
        }
        if let Some(m) = &file.config_map {
            let field = format!("{base}[{i}].configMap");
            let (problem, found) =
                named::<ConfigMap>(client, ns, &field, &m.name, optional(m.optional)).await?;
            out.problems.extend(problem);
            if let Some(f) = found {
                out.contents
                    .push_str(&serde_json::to_string(&(f.data, f.binary_data)).unwrap_or_default());
            }
        }
    }
    Ok(out)
}

/// Why the `K` named `name` (at `field`) cannot be mounted, if it cannot; and the object.
async fn named<K>(
    client: &Client,
    ns: &str,
    field: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<(Option<String>, Option<K>), KubeError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let found = get::<K>(client, ns, name).await?;
    let problem = refusal(field, &K::kind(&()), name, optional, found.as_ref());
    Ok((problem, found))
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
             a pod"
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
