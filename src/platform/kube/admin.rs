//! Patroni's unsafe endpoints (switchover, failover, `PATCH /config`, restart), which answer
//! only a client with a certificate of the cluster's Patroni CA (see `objects::tls`): the
//! operator calls them directly over HTTPS, at the member's DNS name, checking its certificate
//! against the same CA. Not through the API server's pod proxy, as reads go:
//! the API server drops the caller's `Authorization` header and presents no client certificate
//! of its own. As CNPG's operator calls its instances.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::ByteString;

use super::names::Names;
use super::proxy::patroni_port;
use crate::api::PostgresCluster;
use crate::observe::patroni::{ClientTls, Patroni};

/// A client for one cluster's members' unsafe endpoints.
pub struct Admin {
    pub patroni: Patroni,
    cluster: String,
    namespace: String,
    port: i32,
}

impl Admin {
    /// From the cluster's Secrets as listed (`secrets`, by name); `at`: where every member is
    /// reached instead of its DNS name (tests). Says what is missing when it cannot be made.
    pub fn new(
        cluster: &PostgresCluster,
        secrets: &BTreeMap<String, BTreeMap<String, ByteString>>,
        at: Option<SocketAddr>,
    ) -> Result<Admin, String> {
        let names = Names::new(cluster.name(), cluster.namespace());
        let file = |secret: String, key: &str| {
            secrets
                .get(&secret)
                .and_then(|d| d.get(key))
                .map(|b| b.0.clone())
                .ok_or_else(|| format!("Secret {secret} has no {key} yet"))
        };
        let ca = file(names.patroni_client(), "ca.crt")?;
        let cert = file(names.patroni_client(), "tls.crt")?;
        let key = file(names.patroni_client(), "tls.key")?;
        let patroni = Patroni::with_client_tls(&ClientTls {
            ca: &ca,
            cert: &cert,
            key: &key,
            at,
        })
        .map_err(|e| format!("cannot make Patroni's client from its Secrets: {e}"))?;
        Ok(Admin {
            patroni,
            cluster: cluster.name().to_string(),
            namespace: cluster.namespace().to_string(),
            port: at.map_or(patroni_port(cluster), |a| i32::from(a.port())),
        })
    }

    /// The REST API base of an instance's member: its name in the `<c>-pods` Service, which
    /// its certificate holds.
    pub fn base(&self, instance: &str) -> String {
        let names = Names::new(&self.cluster, &self.namespace);
        format!("https://{}:{}", names.pod_host(instance), self.port)
    }
}
