//! A loopback port that reaches one pod's port through the API server's port-forward
//! (`pods/portforward`), as `kubectl port-forward` does: every connection accepted on
//! 127.0.0.1 gets a port-forward stream of its own. The caller's Kubernetes credentials are
//! what authorizes it. Dropping the [`Forward`] closes the port and every connection through it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::Portforwarder;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub struct Forward {
    address: SocketAddr,
    /// What the kubelet last said on a port's error channel (e.g. nothing listens).
    failure: Arc<Mutex<Option<String>>>,
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
        let failure = Arc::new(Mutex::new(None));
        let said = failure.clone();
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
                        connections.spawn(pipe(f, port, socket, said.clone()));
                    }
                    Err(e) => tracing::warn!(pod, error = %e, "cannot port-forward"),
                }
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Forward {
            address,
            failure,
            task,
        })
    }

    /// Where to connect: 127.0.0.1 and the port listened on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `error` from a connection through this forward, with the kubelet's reason when it gave
    /// one (a closed connection alone says little).
    pub fn explain(&self, error: String) -> String {
        match self.failure() {
            Some(why) => format!("{error}: the port-forward says: {why}"),
            None => error,
        }
    }

    /// What the kubelet last said went wrong with a connection, if anything.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok()?.clone()
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Carry one connection's bytes both ways until both sides are done. When the pod's side
/// ends, the kubelet's word on why (if any) is kept before the client sees the end.
async fn pipe(
    mut forwarder: Portforwarder,
    port: u16,
    mut socket: TcpStream,
    failure: Arc<Mutex<Option<String>>>,
) {
    let (Some(upstream), Some(error)) = (forwarder.take_stream(port), forwarder.take_error(port))
    else {
        return;
    };
    let (mut from_pod, mut to_pod) = tokio::io::split(upstream);
    let (mut from_client, mut to_client) = socket.split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_pod).await;
        let _ = to_pod.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut from_pod, &mut to_client).await;
        if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(200), error).await {
            tracing::warn!(port, message, "the port-forward failed");
            if let Ok(mut last) = failure.lock() {
                *last = Some(message);
            }
        }
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
    forwarder.abort();
}
