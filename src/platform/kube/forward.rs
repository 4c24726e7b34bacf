//! A loopback port that reaches one pod's port through the API server's port-forward
//! (`pods/portforward`), as `kubectl port-forward` does: every connection accepted on
//! 127.0.0.1 gets a port-forward stream of its own. The caller's Kubernetes credentials are
//! what authorizes it. Dropping the [`Forward`] closes the port and every connection through it.

use std::net::{Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::Portforwarder;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub struct Forward {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl Forward {
    /// Listen on an ephemeral loopback port for `pod`'s `port`. The first port-forward is opened
    /// here, so a refusal (RBAC, a pod that is gone) is said now, not as a closed connection.
    pub async fn open(pods: Api<Pod>, pod: &str, port: u16) -> Result<Forward, String> {
        let first = pods
            .portforward(pod, &[port])
            .await
            .map_err(|e| format!("cannot port-forward to pod {pod}: {e}"))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| format!("cannot listen on a loopback port: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on a loopback port: {e}"))?;
        let pod = pod.to_string();
        let task = tokio::spawn(async move {
            // Dropped with the task: every connection ends with the forward.
            let mut connections = JoinSet::new();
            let mut first = Some(first);
            while let Ok((socket, _)) = listener.accept().await {
                let forwarder = match first.take() {
                    Some(f) => Ok(f),
                    None => pods.portforward(&pod, &[port]).await,
                };
                match forwarder {
                    Ok(f) => {
                        connections.spawn(pipe(f, port, socket));
                    }
                    Err(e) => tracing::warn!(pod, error = %e, "cannot port-forward"),
                }
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Forward { address, task })
    }

    /// Where to connect: 127.0.0.1 and the port listened on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Carry one connection's bytes both ways until either side closes.
async fn pipe(mut forwarder: Portforwarder, port: u16, mut socket: TcpStream) {
    let (Some(mut upstream), Some(error)) = (forwarder.take_stream(port), forwarder.take_error(port))
    else {
        return;
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut socket, &mut upstream) => {
            if let Err(e) = copied {
                tracing::debug!(error = %e, "a port-forwarded connection ended");
            }
        }
        Some(message) = error => tracing::warn!(port, message, "the port-forward failed"),
    }
    drop(upstream);
    forwarder.abort();
}
