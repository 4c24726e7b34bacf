//! How the console reads pgBouncer's pools on Kubernetes: `SHOW POOLS` on the admin console of
//! one ready pgBouncer pod, through a port-forward to it (`pods/portforward`), over TLS checked
//! against the CA of pgBouncer's certificate for its Service's name, as the pooler's login
//! (`_crunchypgbouncer`, which the rendered `pgbouncer.ini` lists in `stats_users`) with the
//! password of the `<c>-pgbouncer` Secret. Each pod pools its own clients: the pools shown are
//! one pod's, and say which.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::forward::Forward;
use super::kept::{Explains, Kept};
use super::names::{self, Names};
use super::objects::pgbouncer_port;
use super::sql;
use crate::api::PostgresCluster;
use crate::observe::connection::Endpoint;
use crate::observe::pgbouncer::{self, Pools};
use crate::plan::pgbouncer::POOLER_USER;

/// One pgBouncer pod's admin console.
struct Reached {
    pod: String,
    /// How many pgBouncer pods were ready when it was chosen.
    ready: usize,
    forward: Forward,
    client: tokio_postgres::Client,
}

impl Explains for Reached {
    fn explain(&self, error: String) -> String {
        self.forward.explain(error)
    }
}

/// The open cluster's pools: reach a pod once, read it every refresh, reach one anew after an
/// error (the pod may be gone).
#[derive(Default)]
pub struct PoolsProbe {
    kept: Kept<Reached>,
}

impl PoolsProbe {
    pub async fn read(
        &mut self,
        client: &Client,
        cluster: &PostgresCluster,
    ) -> Result<Pools, String> {
        let read = async |reached: &Reached| {
            let asked = reached.client.simple_query("SHOW POOLS");
            let answer = match tokio::time::timeout(Duration::from_secs(2), asked).await {
                Ok(Ok(rows)) => Ok(rows),
                Ok(Err(e)) => Err(e
                    .as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_string())),
                Err(_) => Err("no answer to SHOW POOLS within 2s".into()),
            };
            match answer {
                Ok(rows) => Ok(Pools {
                    from: Some(shown(&reached.pod, reached.ready)),
                    pools: pgbouncer::pools(&rows),
                }),
                Err(e) => Err(format!("pgBouncer pod {}: {e}", reached.pod)),
            }
        };
        self.kept.read(reach(client, cluster), read).await
    }
}

/// Which pod the pools are of, and that the others' are not in them.
fn shown(pod: &str, ready: usize) -> String {
    match ready {
        0 | 1 => format!("pod {pod}"),
        n => format!("pod {pod}, one of {n} ready: each pools its own clients"),
    }
}

/// The first ready pgBouncer pod (by name), its admin console reached through a port-forward.
async fn reach(client: &Client, cluster: &PostgresCluster) -> Result<Reached, String> {
    let spec = cluster
        .spec
        .proxy
        .as_ref()
        .map(|p| &p.pg_bouncer)
        .ok_or("the spec has no spec.proxy.pgBouncer")?;
    let ns = cluster.namespace();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!(
        "{}={},{}={}",
        names::CLUSTER,
        cluster.name(),
        names::COMPONENT,
        names::PGBOUNCER
    );
    let mut ready: Vec<String> = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("cannot list the pgBouncer pods: {e}"))?
        .items
        .into_iter()
        .filter(is_ready)
        .map(|p| p.name_any())
        .collect();
    ready.sort();
    let pod = ready.first().ok_or("no pgBouncer pod is ready")?.clone();
    let names = Names::new(cluster.name(), ns);
    let generated = names.pgbouncer();
    let password = sql::field(client, cluster, &generated, "password", "pgBouncer's login").await?;
    let custom = spec.custom_tls_secret.as_ref();
    let ca = sql::ca_of(client, cluster, custom, &generated, "pgBouncer's CA").await?;
    let port = u16::try_from(pgbouncer_port(spec))
        .map_err(|_| "spec.proxy.pgBouncer.port is out of range")?;
    let forward = Forward::open(pods, &pod, port).await?;
    // The certificate names the Service, not the pod.
    let endpoint = Endpoint::verified(
        forward.address(),
        &names.service_host(&generated),
        ca.as_bytes(),
        POOLER_USER,
        &password,
        "pgbouncer",
    )?;
    let connected = tokio::time::timeout(Duration::from_secs(5), endpoint.connect()).await;
    let client = match connected {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(forward.explain(format!("pgBouncer pod {pod}: {e}"))),
        Err(_) => return Err(format!("pgBouncer pod {pod}: no answer within 5s")),
    };
    Ok(Reached {
        pod,
        ready: ready.len(),
        forward,
        client,
    })
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_pods_are_said_to_pool_apart() {
        assert_eq!(shown("h-pgbouncer-a", 1), "pod h-pgbouncer-a");
        assert_eq!(
            shown("h-pgbouncer-a", 3),
            "pod h-pgbouncer-a, one of 3 ready: each pools its own clients"
        );
    }
}
