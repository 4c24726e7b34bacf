//! What pgBackRest says of the repositories: the repository host's `info` container serves
//! `pgbackrest info --output=json` (see `objects::backups`), read here through the API server's
//! pod proxy, as Patroni is, and parsed as the local platform parses it.

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

/// Short: a repository host that does not answer never stalls a reconcile.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// The most of `pgbackrest info` read: about 1 KiB a backup, so room for thousands; a pod that
/// sends more is not read on.
pub const MAX_INFO: usize = 8 << 20;

/// The repositories as pgBackRest lists them, when the repository host runs and answers;
/// `None` otherwise (status keeps what it had). Without `volume` repositories there is no
/// repository host, and nothing to read.
pub async fn read(
    client: &Client,
    cluster: &PostgresCluster,
    pods: &[Pod],
) -> Option<Vec<RepoStatus>> {
    let repos = cluster.repos();
    if repos.iter().all(|r| r.volume.is_none()) {
        return None;
    }
    let ns = cluster.namespace();
    let pod = names::pod(&Names::new(cluster.name(), ns).repo_host());
    if !pods.iter().any(|p| p.name_any() == pod && running(p)) {
        return None;
    }
    let url = format!(
        "{}/{REPO_INFO_FILE}",
        pod_proxy_base(ns, &pod, REPO_INFO_PORT, false)
    );
    let request = http::Request::get(&url).body(Vec::new()).ok()?;
    let text = match tokio::time::timeout(TIMEOUT, send_limited(client, request, MAX_INFO)).await {
        Ok(Ok((status, body))) if status.is_success() => {
            String::from_utf8_lossy(&body).into_owned()
        }
        Ok(Ok((status, _))) => {
            tracing::debug!(%status, "the repository host's pgbackrest info is not readable");
            return None;
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "the repository host's pgbackrest info is not readable");
            return None;
        }
        Err(_) => {
            tracing::debug!("the repository host's pgbackrest info did not come in time");
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
            tracing::warn!(error = %e, "the repository host's pgbackrest info is not pgBackRest's JSON");
            None
        }
    }
}
