//! The operator's own health: Prometheus metrics (reconciles, errors, reconcile duration),
//! `/healthz` (the process serves) and `/readyz` (it reached the API server and found the CRD),
//! served by [`crate::platform::health`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::platform::health::Exposed;

pub struct Metrics {
    registry: Registry,
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

    /// The metrics in the text exposition format (OpenMetrics, which Prometheus reads).
    pub fn text(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
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
