//! How far a standby is behind its source, on Kubernetes: measured only for a source in the
//! standby's own namespace (a pgdeck cluster's `<c>-primary` Service), whose leader's WAL
//! position is read through the pod proxy, as the operator reads its own members. Another
//! namespace is never read: it may be another tenant's.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::names;
use super::proxy::{self, Seen};
use crate::api::PostgresCluster;
use crate::api::sources::Standby;
use crate::observe::patroni::{Patroni, pod_proxy_base};
use crate::plan::standby::{self, Decision, Observed};

/// What the `Standby` condition says this pass: whom it follows, and how far behind as a bound
/// carried over from the condition as it stands (the reconciler keeps nothing between passes).
pub async fn observe(
    client: &Client,
    patroni: &Patroni,
    cluster: &PostgresCluster,
    spec: &Standby,
    decision: Option<Decision>,
    seen: &Seen,
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
    let lag = match standby::source_on_kube(spec, cluster.namespace()) {
        Err(why) => Err(why),
        Ok(source) => lag(client, patroni, cluster.namespace(), source, seen)
            .await
            .map_err(|why| format!("how far behind is not measured this pass: {why}")),
    };
    match lag {
        Ok(lag) => {
            let shown = (cluster.status.as_ref())
                .and_then(|s| s.condition(standby::CONDITION))
                .and_then(|c| standby::shown_behind(&c.message));
            o.behind = Some(standby::bound_behind(shown, lag));
        }
        Err(why) => o.unmeasured = Some(why),
    }
    o
}

/// The bytes of WAL of cluster `source` (in namespace `ns`) that this cluster's standby leader
/// has not replayed yet.
async fn lag(
    client: &Client,
    patroni: &Patroni,
    ns: &str,
    source: &str,
    seen: &Seen,
) -> Result<i64, String> {
    let ours = (seen.leader.as_ref())
        .and_then(|l| seen.vitals.get(l)?.replayed_lsn)
        .ok_or("this cluster's standby leader reports no replayed position")?;
    let theirs = source_position(client, patroni, ns, source).await?;
    Ok(standby::lag_bytes(Some(theirs), Some(ours)).unwrap_or_default())
}

/// The WAL position of cluster `source`'s leader in namespace `ns`: the running pod Patroni
/// labels its leader, asked once through the pod proxy (the client's timeouts bound it).
async fn source_position(
    client: &Client,
    patroni: &Patroni,
    ns: &str,
    source: &str,
) -> Result<i64, String> {
    let clusters: Api<PostgresCluster> = Api::namespaced(client.clone(), ns);
    let found = clusters.get_opt(source).await;
    let cluster = found
        .map_err(|e| format!("source cluster {source} could not be read: {e}"))?
        .ok_or_else(|| {
            format!("source cluster {source} is not a pgdeck cluster of this namespace")
        })?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!(
        "{}={source},{}={}",
        names::CLUSTER,
        names::ROLE,
        names::ROLE_PRIMARY
    );
    let listed = pods.list(&ListParams::default().labels(&selector)).await;
    let leader = listed
        .map_err(|e| format!("source cluster {source}'s pods could not be listed: {e}"))?
        .items
        .into_iter()
        .find(proxy::running)
        .ok_or_else(|| format!("source cluster {source} has no leader running"))?
        .name_any();
    let base = pod_proxy_base(ns, &leader, proxy::patroni_port(&cluster), true);
    let node = (patroni.node(&base).await)
        .map_err(|e| format!("source cluster {source}'s leader {leader} does not answer: {e}"))?;
    node.wal_position()
        .ok_or_else(|| format!("source cluster {source}'s leader {leader} reports no WAL position"))
}
