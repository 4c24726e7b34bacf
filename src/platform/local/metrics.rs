//! The local reconciler's `/metrics`, `/healthz` and `/readyz` (served as the Kubernetes
//! operator serves them, by [`crate::platform::health`]): what the console shows of every
//! cluster of the home, from their status. By default on 127.0.0.1, on a port of the home's
//! allocator recorded in the home (`operator.metrics`), so `pgdeck status` can say where and a
//! restarted reconciler serves on the same address.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::files::{AtPath, read_regular, write_atomic};
use super::home::Home;
use super::operator::Shared;
use super::ports::Ports;
use crate::platform::PlatformError;
use crate::platform::health::Exposed;

/// Where the reconciler recorded that it serves, in the home.
fn record(home: &Home) -> std::path::PathBuf {
    home.root().join("operator.metrics")
}

/// The `/metrics` URL the home's reconciler recorded, for the DBA.
pub fn url(home: &Home) -> Option<String> {
    recorded(home).map(|a| format!("http://{a}/metrics"))
}

fn recorded(home: &Home) -> Option<SocketAddr> {
    let (bytes, _) = read_regular(&record(home)).ok()??;
    String::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Listen where `requested` says, or else where the home recorded (when it is free still), or
/// else on a new port of 127.0.0.1; record the address.
pub async fn listen(
    home: &Home,
    requested: Option<&str>,
    ports: &Ports,
) -> Result<TcpListener, PlatformError> {
    let listener = match requested {
        Some(address) => TcpListener::bind(address).await.map_err(|e| {
            PlatformError::Operator(format!("cannot serve metrics on {address}: {e}"))
        })?,
        None => {
            let again = match recorded(home).filter(|a| a.ip().is_loopback()) {
                Some(address) => {
                    ports.claim(address.port());
                    TcpListener::bind(address).await.ok()
                }
                None => None,
            };
            match again {
                Some(l) => l,
                None => fresh(ports).await?,
            }
        }
    };
    let address = listener
        .local_addr()
        .map_err(|e| PlatformError::Operator(e.to_string()))?;
    let path = record(home);
    write_atomic(&path, format!("{address}\n").as_bytes(), 0o644).at(&path)?;
    Ok(listener)
}

/// A listener on a new port of 127.0.0.1. Another home may take a port between the allocator's
/// look and the bind: then another one.
async fn fresh(ports: &Ports) -> Result<TcpListener, PlatformError> {
    let mut last = None;
    for _ in 0..5 {
        let port = ports.allocate().ok_or_else(|| {
            PlatformError::Operator("no free port on 127.0.0.1 in 20000-31999".into())
        })?;
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(PlatformError::Operator(format!(
        "cannot serve metrics on 127.0.0.1: {}",
        last.expect("five tries failed")
    )))
}

/// The home's clusters as metrics; ready once etcd runs.
pub struct HomeMetrics(pub Arc<Shared>);

impl Exposed for HomeMetrics {
    fn text(&self) -> String {
        let clusters = self.0.store.list(None).unwrap_or_else(|e| {
            tracing::warn!("metrics: {e}");
            Vec::new()
        });
        crate::observe::metrics::text(&clusters, jiff::Timestamp::now())
    }

    fn ready(&self) -> Result<(), String> {
        match self.0.etcd() {
            Some(_) => Ok(()),
            None => Err("etcd, the clusters' DCS, does not run yet".into()),
        }
    }
}
