//! PostgreSQL settings that follow an instance set's resources, and the "pod template" whose
//! change means an instance must restart.
//!
//! `resources.limits.memory` sets `shared_buffers` (25 %) and `effective_cache_size` (75 %);
//! `resources.limits.cpu` sets `max_parallel_workers` and, cluster-wide because replicas need
//! at least the primary's, `max_worker_processes`. A parameter the manifest sets itself wins.

use serde_json::{Map, Value, json};

use crate::api::instances::InstanceSet;
use crate::api::{PostgresCluster, quantity};

const MIB: f64 = 1024.0 * 1024.0;
/// PostgreSQL's own default, kept as the floor.
const MIN_WORKER_PROCESSES: i64 = 8;
/// Room beside parallel workers for other background workers (logical replication, ...).
const OTHER_WORKERS: i64 = 4;

fn user_sets(cluster: &PostgresCluster, name: &str) -> bool {
    cluster.postgres_parameters().contains_key(name)
}

fn limit(set: &InstanceSet, resource: &str) -> Option<f64> {
    let q = set.resources.as_ref()?.limits.as_ref()?.get(resource)?;
    quantity::value(q).ok().filter(|v| *v > 0.0)
}

fn cpus(set: &InstanceSet) -> Option<i64> {
    limit(set, "cpu").map(|c| c.ceil() as i64)
}

/// The per-instance parameters derived from `set`'s limits (each instance's own Patroni
/// configuration carries them, so sets may differ).
pub fn instance_parameters(cluster: &PostgresCluster, set: &InstanceSet) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(memory) = limit(set, "memory") {
        let mb = |share: f64| {
            json!(format!(
                "{}MB",
                ((memory * share) / MIB).floor().max(1.0) as i64
            ))
        };
        for (name, share) in [("shared_buffers", 0.25), ("effective_cache_size", 0.75)] {
            if !user_sets(cluster, name) {
                out.insert(name.into(), mb(share));
            }
        }
    }
    if let Some(n) = cpus(set)
        && !user_sets(cluster, "max_parallel_workers")
    {
        out.insert("max_parallel_workers".into(), json!(n.max(1)));
    }
    out
}

/// `max_worker_processes` for the whole cluster (Patroni keeps it the same everywhere, and a
/// replica needs at least the primary's): from the largest CPU limit of any set.
pub fn max_worker_processes(cluster: &PostgresCluster) -> Option<i64> {
    if user_sets(cluster, "max_worker_processes") {
        return None;
    }
    let most = cluster.spec.instances.iter().filter_map(cpus).max()?;
    Some((most + OTHER_WORKERS).max(MIN_WORKER_PROCESSES))
}

/// What an instance was started with, as Kubernetes' pod template would hold it: when this
/// changes, the instance must restart.
pub fn template(cluster: &PostgresCluster, set: &InstanceSet) -> String {
    json!({ "image": cluster.spec.image, "resources": set.resources }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;

    fn cluster(extra: &str) -> PostgresCluster {
        manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: t}}\nspec:\n  postgresVersion: 15\n  instances:\n    - resources: {{limits: {{memory: 4Gi, cpu: 2500m}}}}\n      dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn limits_become_parameters() {
        let c = cluster("");
        let p = instance_parameters(&c, &c.spec.instances[0]);
        assert_eq!(p["shared_buffers"], "1024MB");
        assert_eq!(p["effective_cache_size"], "3072MB");
        assert_eq!(p["max_parallel_workers"], 3);
        assert_eq!(max_worker_processes(&c), Some(8));
    }

    #[test]
    fn the_manifests_own_parameters_win() {
        let c = cluster(
            "  patroni:\n    dynamicConfiguration:\n      postgresql:\n        parameters:\n          shared_buffers: 256MB\n          max_worker_processes: 32\n",
        );
        let p = instance_parameters(&c, &c.spec.instances[0]);
        assert!(!p.contains_key("shared_buffers"));
        assert_eq!(p["effective_cache_size"], "3072MB");
        assert_eq!(max_worker_processes(&c), None);
    }

    #[test]
    fn the_template_follows_resources_and_image() {
        let c = cluster("");
        let mut d = c.clone();
        d.spec.instances[0]
            .resources
            .as_mut()
            .unwrap()
            .limits
            .as_mut()
            .unwrap()
            .insert(
                "memory".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("8Gi".into()),
            );
        assert_ne!(
            template(&c, &c.spec.instances[0]),
            template(&d, &d.spec.instances[0])
        );
        assert_eq!(
            template(&c, &c.spec.instances[0]),
            template(&c.clone(), &c.spec.instances[0])
        );
    }
}
