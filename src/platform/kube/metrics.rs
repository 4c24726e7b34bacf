//! The operator's own health: Prometheus metrics (reconciles, errors, reconcile duration, and
//! what the console shows of the clusters it reconciles while it leads),
//! `/healthz` (the process serves) and `/readyz` (it reached the API server and found the CRD),
//! served by [`crate::platform::health`].

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::runtime::reflector::Store;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::PostgresCluster;
use crate::platform::health::Exposed;

pub struct Metrics {
    registry: Registry,
    /// The clusters the Controller watches, while this replica leads.
    clusters: RwLock<Option<Store<PostgresCluster>>>,
    reconciles: Counter,
    errors: Counter,
    writes: Counter,
    duration: Histogram,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pgdeck");
        let reconciles = Counter::default();
        let errors = Counter::default();
        let writes = Counter::default();
        let duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        registry.register(
            "reconciles",
            "Reconciles of a PostgresCluster",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error",
            errors.clone(),
        );
        registry.register(
            "writes",
            "Objects created, changed or deleted on the API server",
            writes.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long a reconcile took",
            duration.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            writes,
            duration,
            clusters: RwLock::new(None),
            ready: AtomicBool::new(false),
        }
    }

    /// Count one reconcile.
    pub fn reconciled(&self, took: Duration, ok: bool, writes: usize) {
        self.reconciles.inc();
        if !ok {
            self.errors.inc();
        }
        self.writes.inc_by(writes as u64);
        self.duration.observe(took.as_secs_f64());
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Report what the console shows of these clusters too (`None`: no longer).
    pub fn watch_clusters(&self, clusters: Option<Store<PostgresCluster>>) {
        *self
            .clusters
            .write()
            .expect("the clusters lock is never poisoned") = clusters;
    }

    /// The metrics in the text exposition format (OpenMetrics, which Prometheus reads): the
    /// operator's own, and its clusters' (see [`crate::observe::metrics`]).
    pub fn text(&self) -> String {
        let clusters: Vec<PostgresCluster> = self
            .clusters
            .read()
            .expect("the clusters lock is never poisoned")
            .as_ref()
            .map(|store| store.state().iter().map(|c| c.as_ref().clone()).collect())
            .unwrap_or_default();
        let theirs = crate::observe::metrics::registry(&clusters, jiff::Timestamp::now());
        let mut out = String::new();
        encode_registry(&mut out, &self.registry).expect("writing to a String");
        encode_registry(&mut out, &theirs).expect("writing to a String");
        encode_eof(&mut out).expect("writing to a String");
        out
    }
}

impl Exposed for Metrics {
    fn text(&self) -> String {
        Metrics::text(self)
    }

    fn ready(&self) -> Result<(), String> {
        match self.ready.load(Ordering::Relaxed) {
            true => Ok(()),
            false => Err("the API server or the PostgresCluster CRD is not reachable yet".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::api::manifest;
    use crate::api::status::{InstanceStatus, PostgresClusterStatus};

    #[test]
    fn the_leader_reports_its_clusters_beside_its_own_counters_in_one_exposition() {
        let metrics = Metrics::new();
        metrics.reconciled(Duration::from_millis(5), true, 1);
        assert!(
            !metrics.text().contains("pgdeck_instance_role{"),
            "no clusters yet"
        );

        let mut cluster = manifest::parse(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {name: hippo, namespace: db}\nspec:\n  \
             postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], \
             resources: {requests: {storage: 1Gi}}}\n",
        )
        .unwrap();
        cluster.status = Some(PostgresClusterStatus {
            instances: vec![InstanceStatus {
                name: "hippo-00-abcd".into(),
                role: Some("primary".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        let mut writer = Writer::<PostgresCluster>::default();
        writer.apply_watcher_event(&Event::Apply(cluster));
        metrics.watch_clusters(Some(writer.as_reader()));
        let text = metrics.text();
        assert!(text.contains("pgdeck_reconciles_total 1\n"), "{text}");
        assert!(
            text.contains(
                r#"pgdeck_instance_role{namespace="db",cluster="hippo",instance="hippo-00-abcd",role="primary"} 1"#
            ),
            "{text}"
        );
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");

        metrics.watch_clusters(None);
        assert!(!metrics.text().contains("pgdeck_instance_role{"));
    }
}
