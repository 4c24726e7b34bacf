//! What a pod's `info` container serves (see `objects::backups`), read through the API
//! server's pod proxy, as Patroni is: what pgBackRest says of the repositories (the repository
//! host's, or without one an instance's), parsed as the local platform parses it, and a
//! standby instance's WAL receiver (see `standby`).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Client, ResourceExt};

use super::names::{self, Names};
use super::objects::{REPO_INFO_FILE, REPO_INFO_PORT};
use super::proxy::running;
use crate::api::PostgresCluster;
use crate::api::status::RepoStatus;
use crate::observe::patroni::{pod_proxy_base, send_limited};
use crate::observe::pgbackrest::parse_info;

/// Short: a pod that does not answer never stalls a reconcile.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// The most of `pgbackrest info` read: about 1 KiB a backup, so room for thousands; a pod that
/// sends more is not read on.
pub const MAX_INFO: usize = 8 << 20;

/// The repositories as pgBackRest lists them, when the pod that serves it runs and answers;
/// `None` otherwise (status keeps what it had). With `volume` repositories the repository
/// host serves it; without, the primary does (the one asked; in a standby cluster every
/// instance does, and any that runs is asked when none is the primary).
pub async fn read(
    client: &Client,
    cluster: &PostgresCluster,
    pods: &[Pod],
) -> Option<Vec<RepoStatus>> {
    let repos = cluster.repos();
    if repos.is_empty() {
        return None;
    }
    let ns = cluster.namespace();
    let pod = if repos.iter().any(|r| r.volume.is_some()) {
        let host = names::pod(&Names::new(cluster.name(), ns).repo_host());
        pods.iter().find(|p| p.name_any() == host && running(p))?
    } else {
        let instances = pods
            .iter()
            .filter(|p| p.labels().contains_key(names::INSTANCE) && running(p));
        let primary =
            |p: &&Pod| p.labels().get(names::ROLE).map(String::as_str) == Some(names::ROLE_PRIMARY);
        let mut instances: Vec<&Pod> = instances.collect();
        instances.sort_by_key(|p| !primary(p));
        instances.into_iter().next()?
    };
    let text = match fetch(client, ns, &pod.name_any(), REPO_INFO_FILE, MAX_INFO).await {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(e) => {
            tracing::debug!(error = %e, "pgbackrest info is not readable");
            return None;
        }
    };
    let kinds: Vec<(String, String)> = repos
        .iter()
        .map(|r| (r.name.clone(), r.kind().to_string()))
        .collect();
    match parse_info(&text, &kinds) {
        Ok(read) => Some(read),
        Err(e) => {
            tracing::warn!(error = %e, "the pod's pgbackrest info is not pgBackRest's JSON");
            None
        }
    }
}

/// `file` as `pod`'s `info` container serves it: at most `limit` bytes, within [`TIMEOUT`].
pub async fn fetch(
    client: &Client,
    ns: &str,
    pod: &str,
    file: &str,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let url = format!("{}/{file}", pod_proxy_base(ns, pod, REPO_INFO_PORT, false));
    let request = http::Request::get(&url)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(TIMEOUT, send_limited(client, request, limit)).await {
        Ok(Ok((status, body))) if status.is_success() => Ok(body),
        Ok(Ok((status, _))) => Err(format!("pod {pod} answers {status} for {file}")),
        Ok(Err(e)) => Err(format!("pod {pod} does not serve {file}: {e}")),
        Err(_) => Err(format!("pod {pod} did not serve {file} within {TIMEOUT:?}")),
    }
}
