//! How far a standby is behind its source, on Kubernetes, measured from its own leader only
//! (see `plan::standby_lag`): the source is never read, whether it is a cluster of this
//! namespace, another tenant's or outside Kubernetes.
//!
//! Streaming is measured from the standby leader's WAL receiver, which its pod's `info`
//! container reads through the socket every few seconds and serves over HTTP; the operator
//! reads that through the pod proxy, as it reads Patroni. Chosen over a port-forward and SQL
//! from the operator: a standby's database holds the source's roles and passwords, not this
//! cluster's Secret's, so the operator could not sign in; and the pod proxy needs no more of
//! the operator's rights, nor a connection held per pass.

use kube::Client;

use super::names;
use super::proxy::Seen;
use super::repo_info;
use crate::api::PostgresCluster;
use crate::api::sources::Standby;
use crate::api::status::RepoStatus;
use crate::plan::standby::{self, Decision, Observed};
use crate::plan::standby_lag::{self, Archived, RECEIVER_FILE, Readings, Receiver};

/// The most of the WAL receiver's file read: it is a few hundred bytes.
const MAX_RECEIVER: usize = 4096;

/// What the `Standby` condition says this pass: whom it follows, and how far behind, as a
/// bound carried over from the condition as it stands (the reconciler keeps nothing between
/// passes). `repos`: what pgBackRest lists of the repositories, when read this pass.
pub async fn observe(
    client: &Client,
    cluster: &PostgresCluster,
    spec: &Standby,
    decision: Option<Decision>,
    seen: &Seen,
    repos: Option<&[RepoStatus]>,
) -> Observed {
    let mut o = Observed {
        source: standby::source_of(spec),
        following: decision.map(|d| d == Decision::Follow),
        problem: (decision == Some(Decision::RefuseDemotion))
            .then(|| standby::DEMOTION_REFUSED.into()),
        ..Default::default()
    };
    if o.following != Some(true) {
        return o;
    }
    let streams = spec.host.as_deref().is_some_and(|h| !h.is_empty());
    let receiver = match streams {
        true => Some(receiver(client, cluster, seen).await),
        false => None,
    };
    let archived = match (spec.repo_name.as_ref(), repos) {
        (Some(name), Some(repos)) => (repos.iter().find(|r| &r.name == name))
            .and_then(|r| r.wal_max.as_deref())
            .map_or(Archived::Nothing, Archived::Newest),
        _ => Archived::Unread,
    };
    let readings = Readings {
        receiver,
        archived,
        replayed: (seen.leader.as_ref()).and_then(|l| seen.vitals.get(l)?.replayed_lsn),
        now: jiff::Timestamp::now().as_millisecond() as f64 / 1000.0,
    };
    let last = (cluster.status.as_ref())
        .and_then(|s| s.condition(standby::CONDITION))
        .map(|c| c.message.as_str())
        .unwrap_or_default();
    standby_lag::measure(&mut o, spec, &readings, last);
    o
}

/// The standby leader's WAL receiver, as its `info` container last read it.
async fn receiver(
    client: &Client,
    cluster: &PostgresCluster,
    seen: &Seen,
) -> Result<Receiver, String> {
    let leader = seen.leader.as_deref().ok_or("no standby leader is known")?;
    let pod = names::pod(leader);
    let body = repo_info::fetch(
        client,
        cluster.namespace(),
        &pod,
        RECEIVER_FILE,
        MAX_RECEIVER,
    )
    .await?;
    serde_json::from_slice(&body).map_err(|e| {
        format!("pod {pod}'s {RECEIVER_FILE} is not what the info container writes: {e}")
    })
}
