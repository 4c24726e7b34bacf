//! Patroni's REST API: what a member says of itself (`/patroni`), of its cluster (`/cluster`),
//! the dynamic configuration (`/config`), the timeline history (`/history`), and the actions
//! pgdeck asks of it. Members are reached directly (local platform) or through the Kubernetes
//! API server's pod proxy (kube platform).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::history::TimelineSwitch;
use crate::plan::patroni::BasicAuth;

#[derive(Debug, thiserror::Error)]
pub enum PatroniError {
    #[error("Patroni at {url} did not answer: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Patroni at {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("Patroni at {url} sent what pgdeck cannot read: {source}")]
    Unreadable {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

/// `GET /patroni`: one member's own view, live.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeStatus {
    #[serde(default)]
    pub state: Option<String>,
    /// `master`/`primary`, `replica`, `standby_leader`, ...
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub timeline: Option<i64>,
    #[serde(default)]
    pub xlog: Option<Xlog>,
    #[serde(default)]
    pub replication: Option<Vec<Replication>>,
    #[serde(default)]
    pub pending_restart: Option<bool>,
    #[serde(default)]
    pub database_system_identifier: Option<String>,
    /// Patroni is paused (maintenance mode).
    #[serde(default)]
    pub pause: bool,
    /// When the member's PostgreSQL started: a new value tells that it restarted.
    #[serde(default)]
    pub postmaster_start_time: Option<String>,
    /// PostgreSQL's version as a number (`150010` is 15.10).
    #[serde(default)]
    pub server_version: Option<i64>,
    /// Patroni's tags (`nofailover`, `nosync`, ...), where the member reports them.
    #[serde(default)]
    pub tags: Option<Map<String, Value>>,
    /// The settings waiting for a restart (Patroni 3.0.4 and later).
    #[serde(default)]
    pub pending_restart_reason: Option<std::collections::BTreeMap<String, PendingChange>>,
    /// Bytes behind the primary as the DCS reckons it, for a member seen through `/cluster`
    /// only (its own `/patroni` not asked): `/cluster` gives lag, not WAL positions.
    #[serde(skip)]
    pub dcs_lag: Option<i64>,
}

/// A setting waiting for a restart: its value now and after the restart.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PendingChange {
    #[serde(default)]
    pub old_value: Option<String>,
    #[serde(default)]
    pub new_value: Option<String>,
}

impl NodeStatus {
    /// The pending settings as a line, e.g. `work_mem: 4MB → 8MB`.
    pub fn pending_reason(&self) -> Option<String> {
        let reasons = self
            .pending_restart_reason
            .as_ref()
            .filter(|r| !r.is_empty())?;
        let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        let parts: Vec<String> = reasons
            .iter()
            .map(|(name, c)| format!("{name}: {} → {}", value(&c.old_value), value(&c.new_value)))
            .collect();
        Some(parts.join(", "))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Xlog {
    /// The primary's current WAL position.
    #[serde(default)]
    pub location: Option<i64>,
    #[serde(default)]
    pub received_location: Option<i64>,
    #[serde(default)]
    pub replayed_location: Option<i64>,
}

/// A row of the primary's `pg_stat_replication`, as Patroni reports it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Replication {
    pub application_name: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub sync_state: Option<String>,
}

impl NodeStatus {
    /// The version as PostgreSQL prints it: `15.10` (`9.6.24` before 10).
    pub fn version(&self) -> Option<String> {
        let v = self.server_version.filter(|v| *v > 0)?;
        Some(if v >= 100_000 {
            format!("{}.{}", v / 10_000, v % 10_000)
        } else {
            format!("{}.{}.{}", v / 10_000, v / 100 % 100, v % 100)
        })
    }

    /// When PostgreSQL started, from Patroni's `2024-05-20 10:11:12.345+00:00`.
    pub fn started_at(&self) -> Option<jiff::Timestamp> {
        self.postmaster_start_time.as_deref()?.parse().ok()
    }

    /// The tags that are set, sorted: `nofailover` for a true flag, `name=value` otherwise
    /// (a false flag is no tag).
    pub fn tag_list(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .tags
            .iter()
            .flatten()
            .filter_map(|(name, value)| match value {
                Value::Bool(true) => Some(name.clone()),
                Value::Bool(false) | Value::Null => None,
                Value::String(s) => Some(format!("{name}={s}")),
                other => Some(format!("{name}={other}")),
            })
            // Patroni's configuration is the postgres account's to edit: shown, never obeyed.
            .map(|t| super::activity::escape(&t))
            .collect();
        out.sort();
        out
    }

    pub fn is_primary(&self) -> bool {
        matches!(self.role.as_deref(), Some("master" | "primary"))
    }

    /// How far this member has got: the primary's position, or what a replica has received
    /// or replayed, whichever is further.
    pub fn wal_position(&self) -> Option<i64> {
        let x = self.xlog.as_ref()?;
        x.location
            .or(match (x.received_location, x.replayed_location) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            })
    }
}

/// `GET /cluster`: the members as the DCS knows them, read afresh from it by the member asked
/// (it fails when that member cannot reach the DCS). Roles come from the leader and sync keys
/// (fresh); states, timelines, `pending_restart` and WAL positions (hence lag) are what each
/// member last wrote (up to `loop_wait` old). A member's key outlives its Patroni by up to a
/// TTL, and its PostgreSQL's own role is not there.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClusterView {
    #[serde(default)]
    pub members: Vec<Member>,
    /// Patroni is paused (maintenance mode).
    #[serde(default)]
    pub pause: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Member {
    pub name: String,
    /// `leader`, `sync_standby`, `replica`, `standby_leader`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub timeline: Option<i64>,
    #[serde(default)]
    pub pending_restart: Option<bool>,
    /// Bytes behind the leader's last reported position; the string `unknown` when the member
    /// reported no position. Absent for the leader.
    #[serde(default)]
    pub lag: Option<Value>,
    #[serde(default)]
    pub tags: Option<Map<String, Value>>,
}

impl Member {
    /// What this member would say of itself, as far as the DCS knows: its PostgreSQL runs as
    /// a primary when it holds the leader key (a read-only holder is for the caller to tell).
    pub fn as_node(&self) -> NodeStatus {
        let role = match self.role.as_deref() {
            Some("leader") => "primary",
            Some("standby_leader") => "standby_leader",
            _ => "replica",
        };
        let is_leader = role != "replica";
        NodeStatus {
            state: self.state.clone(),
            role: Some(role.into()),
            timeline: self.timeline,
            pending_restart: self.pending_restart,
            tags: self.tags.clone(),
            dcs_lag: if is_leader {
                None
            } else {
                self.lag.as_ref().and_then(Value::as_i64)
            },
            ..Default::default()
        }
    }
}

impl ClusterView {
    pub fn leader(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|m| matches!(m.role.as_deref(), Some("leader" | "standby_leader")))
            .map(|m| m.name.as_str())
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn is_sync_standby(&self, name: &str) -> bool {
        self.members
            .iter()
            .any(|m| m.name == name && m.role.as_deref() == Some("sync_standby"))
    }
}

/// What a cluster's members said, one request each at once: their `/patroni`, and the DCS's
/// view (`/cluster`) from the first that answers, the primary asked first.
pub struct Survey {
    /// Each member's own status, in the order asked; `None` where it was not asked or did not
    /// answer.
    pub nodes: Vec<Option<NodeStatus>>,
    pub view: Option<ClusterView>,
    /// The member that says it is the primary.
    pub primary: Option<usize>,
}

impl Survey {
    /// Whether Patroni is paused, as the DCS view (or any member) says; `None` when nobody
    /// answered.
    pub fn paused(&self) -> Option<bool> {
        let answered = self.view.is_some() || self.nodes.iter().any(Option::is_some);
        let paused = self.view.as_ref().is_some_and(|v| v.pause)
            || self.nodes.iter().flatten().any(|n| n.pause);
        answered.then_some(paused)
    }

    pub fn system_identifier(&self) -> Option<String> {
        self.nodes
            .iter()
            .flatten()
            .find_map(|n| n.database_system_identifier.clone())
    }
}

/// A client for the REST API of members. Methods take the member's `base`: its URL for a direct
/// client (`http://127.0.0.1:8008`), its pod proxy path for one through the API server
/// ([`pod_proxy_base`]).
#[derive(Clone)]
pub struct Patroni {
    transport: Transport,
}

/// How requests reach a member.
#[derive(Clone)]
enum Transport {
    /// Plain HTTP to the member's address (the local platform), with the cluster's REST API
    /// credentials (basic authentication) when it has them.
    Direct {
        http: reqwest::Client,
        auth: Option<BasicAuth>,
    },
    /// HTTPS with a client certificate (the Kubernetes operator's unsafe calls).
    Tls(Box<TlsClient>),
    /// The Kubernetes API server's pod proxy (`pods/proxy`), as CNPG's tools do: no network
    /// path from the caller to the pods is needed, and the API server checks permissions.
    PodProxy(kube::Client),
}

impl Default for Patroni {
    fn default() -> Self {
        Patroni::new()
    }
}

/// Short enough that one unreachable member never stalls a status refresh.
const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// A switchover waits for the old primary to stop and the new one to be promoted.
const ACTION_TIMEOUT: Duration = Duration::from_secs(90);

/// The base of a member's REST API reached through the API server's pod proxy; over TLS to
/// the pod with `tls` (the API server does not check the pod's certificate).
pub fn pod_proxy_base(namespace: &str, pod: &str, port: i32, tls: bool) -> String {
    let scheme = if tls { "https:" } else { "" };
    format!("/api/v1/namespaces/{namespace}/pods/{scheme}{pod}:{port}/proxy")
}

/// A member's TLS client settings: the CA its server certificate chains to, and the client's
/// certificate and key (PEM).
pub struct ClientTls<'a> {
    pub ca: &'a [u8],
    pub cert: &'a [u8],
    pub key: &'a [u8],
    /// Where every member is reached, whatever its name resolves to (tests).
    pub at: Option<std::net::SocketAddr>,
}

impl Patroni {
    /// A client for members reached directly over HTTP.
    pub fn new() -> Patroni {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .build()
            .expect("an HTTP client with default TLS-free settings");
        Patroni {
            transport: Transport::Direct { http, auth: None },
        }
    }

    /// A client for members reached directly over HTTPS: their certificates checked against
    /// `tls.ca` only, this client's certificate presented (Patroni's `verify_client`).
    pub fn with_client_tls(tls: &ClientTls) -> Result<Patroni, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let roots = super::connection::roots(tls.ca)?;
        let chain = CertificateDer::pem_slice_iter(tls.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the client certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(tls.key)
            .map_err(|e| format!("the client certificate's key: {e}"))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate: {e}"))?;
        let mut http =
            hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(Resolve(tls.at));
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_millis(500)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Patroni {
            transport: Transport::Tls(Box::new(client)),
        })
    }

    /// This client, sending `auth` to members reached directly: what Patroni's unsafe
    /// endpoints (`restapi.authentication`) ask for. Through the pod proxy the API server
    /// authenticates callers and the header would not reach Patroni, so nothing changes there.
    pub fn authenticated(&self, auth: &BasicAuth) -> Patroni {
        let transport = match &self.transport {
            Transport::Direct { http, .. } => Transport::Direct {
                http: http.clone(),
                auth: Some(auth.clone()),
            },
            proxy => proxy.clone(),
        };
        Patroni { transport }
    }

    /// A client for members reached through the API server's pod proxy.
    pub fn through_pod_proxy(client: kube::Client) -> Patroni {
        Patroni {
            transport: Transport::PodProxy(client),
        }
    }

    /// Ask every member at `bases` (`None`: a member known not to run).
    pub async fn survey(&self, bases: &[Option<String>]) -> Survey {
        let nodes: Vec<Option<NodeStatus>> = futures::future::join_all(
            bases
                .iter()
                .map(|base| async move { self.node(base.as_deref()?).await.ok() }),
        )
        .await;
        let primary = nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(NodeStatus::is_primary));
        let answered = (0..nodes.len()).filter(|i| nodes[*i].is_some());
        let order = primary.into_iter().chain(answered);
        let view = self
            .cluster_from(order.filter_map(|i| bases[i].as_deref()))
            .await;
        Survey {
            nodes,
            view,
            primary,
        }
    }

    /// The DCS's view from the first member of `bases` that gives it, asked one after the
    /// other: a member that is down, hung or cut off from the DCS gives way to the next.
    pub async fn cluster_from(&self, bases: impl IntoIterator<Item = &str>) -> Option<ClusterView> {
        for base in bases {
            if let Ok(v) = self.cluster(base).await {
                return Some(v);
            }
        }
        None
    }

    pub async fn node(&self, base: &str) -> Result<NodeStatus, PatroniError> {
        self.get(base, "/patroni").await
    }

    pub async fn cluster(&self, base: &str) -> Result<ClusterView, PatroniError> {
        self.get(base, "/cluster").await
    }

    pub async fn config(&self, base: &str) -> Result<Map<String, Value>, PatroniError> {
        self.get(base, "/config").await
    }

    /// The cluster's timeline switches, newest first, from the first member of `bases` that
    /// answers (every member reads the same history from the DCS).
    pub async fn history_from(
        &self,
        bases: impl IntoIterator<Item = &str>,
    ) -> Result<Vec<TimelineSwitch>, String> {
        let mut why = "no member has a REST API address yet".to_string();
        for base in bases {
            match self.get::<Value>(base, "/history").await {
                Ok(body) => return super::history::parse(&body),
                Err(e) => why = e.to_string(),
            }
        }
        Err(why)
    }

    /// Change the dynamic configuration. Patroni also wakes its HA loop on every PATCH, which
    /// pgdeck uses to have a new replica's slot created now rather than at the next loop.
    pub async fn patch_config(
        &self,
        base: &str,
        patch: &Map<String, Value>,
    ) -> Result<(), PatroniError> {
        self.send(
            http::Method::PATCH,
            base,
            "/config",
            &Value::Object(patch.clone()),
            QUERY_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// Re-read the configuration file.
    pub async fn reload(&self, base: &str) -> Result<(), PatroniError> {
        self.send(
            http::Method::POST,
            base,
            "/reload",
            &Value::Null,
            QUERY_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// Wake the member's HA loop now, with a PATCH that changes nothing (`loop_wait` as it is).
    pub async fn wake(&self, base: &str, loop_wait: i32) -> Result<(), PatroniError> {
        let mut patch = Map::new();
        patch.insert("loop_wait".into(), loop_wait.into());
        self.patch_config(base, &patch).await
    }

    /// A planned switchover; returns Patroni's message once the candidate is promoted.
    pub async fn switchover(
        &self,
        base: &str,
        leader: &str,
        candidate: &str,
    ) -> Result<String, PatroniError> {
        let body = serde_json::json!({ "leader": leader, "candidate": candidate });
        self.send(
            http::Method::POST,
            base,
            "/switchover",
            &body,
            ACTION_TIMEOUT,
        )
        .await
    }

    /// A failover to `candidate`, for when there is no healthy primary.
    pub async fn failover(&self, base: &str, candidate: &str) -> Result<String, PatroniError> {
        let body = serde_json::json!({ "candidate": candidate });
        self.send(http::Method::POST, base, "/failover", &body, ACTION_TIMEOUT)
            .await
    }

    /// Restart the member's PostgreSQL now (settings that need a restart take effect). Returns
    /// once it runs again.
    pub async fn restart(&self, base: &str) -> Result<String, PatroniError> {
        self.send(
            http::Method::POST,
            base,
            "/restart",
            &serde_json::json!({}),
            ACTION_TIMEOUT,
        )
        .await
    }

    /// Rebuild a replica from the primary (Patroni refuses it on the leader). Returns once
    /// Patroni has started it; the replica then streams again.
    pub async fn reinitialize(&self, base: &str) -> Result<String, PatroniError> {
        self.send(
            http::Method::POST,
            base,
            "/reinitialize",
            &serde_json::json!({}),
            ACTION_TIMEOUT,
        )
        .await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
    ) -> Result<T, PatroniError> {
        let url = format!("{base}{path}");
        // /patroni answers 503 on a member that is not running, with the same body.
        let (_, bytes) = self
            .call(http::Method::GET, &url, None, QUERY_TIMEOUT)
            .await?;
        serde_json::from_slice(&bytes).map_err(|source| PatroniError::Unreadable { url, source })
    }

    async fn send(
        &self,
        method: http::Method,
        base: &str,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<String, PatroniError> {
        let url = format!("{base}{path}");
        let (status, bytes) = self.call(method, &url, Some(body), timeout).await?;
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if status.is_success() {
            Ok(text)
        } else {
            Err(PatroniError::Refused {
                url,
                status: status.as_u16(),
                body: text,
            })
        }
    }

    /// One request: the status and body, whatever the status.
    async fn call(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(http::StatusCode, Vec<u8>), PatroniError> {
        let unreachable = |source: BoxError| PatroniError::Unreachable {
            url: url.to_string(),
            source,
        };
        match &self.transport {
            Transport::Direct { http, auth } => {
                // Only the unsafe endpoints ask for credentials: reads never carry them, so
                // a program that took a stopped member's port learns nothing from a poll.
                let unsafe_method = method != http::Method::GET;
                let mut request = http.request(method, url).timeout(timeout);
                if let Some(a) = auth.as_ref().filter(|_| unsafe_method) {
                    request = request.basic_auth(&a.username, Some(&a.password));
                }
                if let Some(body) = body {
                    request = request.json(body);
                }
                let mut response = request.send().await.map_err(|e| unreachable(e.into()))?;
                let status = response.status();
                let mut bytes = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(e.into()))? {
                    if bytes.len() + chunk.len() > MAX_BODY {
                        let long = format!("the answer is longer than {MAX_BODY} bytes");
                        return Err(unreachable(long.into()));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok((status, bytes))
            }
            Transport::Tls(client) => {
                let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
                let request = http::Request::builder()
                    .method(method)
                    .uri(url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .map_err(|e| unreachable(e.into()))?;
                let exchange = async {
                    let response = client.request(request).await?;
                    let status = response.status();
                    let body = http_body_util::Limited::new(response.into_body(), MAX_BODY);
                    let bytes = http_body_util::BodyExt::collect(body).await?.to_bytes();
                    Ok::<_, BoxError>((status, bytes.to_vec()))
                };
                match tokio::time::timeout(timeout, exchange).await {
                    Ok(result) => result.map_err(unreachable),
                    Err(elapsed) => Err(unreachable(elapsed.into())),
                }
            }
            Transport::PodProxy(client) => {
                let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
                let request = http::Request::builder()
                    .method(method)
                    .uri(url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .map_err(|e| unreachable(e.into()))?;
                let exchange = send_limited(client, request, MAX_BODY);
                let (status, bytes) = match tokio::time::timeout(timeout, exchange).await {
                    Ok(result) => result.map_err(unreachable)?,
                    Err(elapsed) => return Err(unreachable(elapsed.into())),
                };
                // The API server's own failure (the pod does not answer, or is not running)
                // comes as a Kubernetes Status, not as Patroni's answer.
                match proxy_failure(status, &bytes) {
                    Some(message) => Err(unreachable(message.into())),
                    None => Ok((status, bytes)),
                }
            }
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type TlsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector<Resolve>>,
    http_body_util::Full<bytes::Bytes>,
>;

/// Names resolved as the system does, or every name to one address (tests).
#[derive(Clone)]
struct Resolve(Option<std::net::SocketAddr>);

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for Resolve {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = std::io::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let fixed = self.0;
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = match fixed {
                Some(at) => vec![at],
                None => tokio::net::lookup_host((name.as_str(), 0)).await?.collect(),
            };
            Ok(found.into_iter())
        })
    }
}

/// The most of a member's answer pgdeck reads: Patroni's are a few kilobytes; a pod that sends
/// more is not Patroni, and is not read on.
pub const MAX_BODY: usize = 1 << 20;

/// One request through the API server (its pod proxy): the status and at most `limit` bytes of
/// body, or an error when the body is longer (what a pod sends is not trusted to be small).
pub async fn send_limited(
    client: &kube::Client,
    request: http::Request<Vec<u8>>,
    limit: usize,
) -> Result<(http::StatusCode, Vec<u8>), BoxError> {
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), limit);
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .map_err(|e| -> BoxError {
            if e.is::<http_body_util::LengthLimitError>() {
                format!("the answer is longer than {limit} bytes").into()
            } else {
                e
            }
        })?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}

/// The message of a Kubernetes `Status` the pod proxy answered with instead of Patroni.
fn proxy_failure(status: http::StatusCode, body: &[u8]) -> Option<String> {
    if status.is_success() {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    (v.get("kind")?.as_str()? == "Status").then(|| {
        v.get("message")
            .and_then(Value::as_str)
            .unwrap_or("the pod proxy failed")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_start_and_tags_as_a_member_reports_them() {
        let node: NodeStatus = serde_json::from_value(serde_json::json!({
            "state": "running", "server_version": 150010,
            "postmaster_start_time": "2026-12-01 21:03:04.123456+00:00",
            "tags": {"nofailover": true, "nosync": false, "replicatefrom": "b\u{1b}[2J",
                     "failover_priority": 0}
        }))
        .unwrap();
        assert_eq!(node.version().as_deref(), Some("15.10"));
        assert_eq!(
            node.started_at().map(|t| t.to_string()).as_deref(),
            Some("2026-12-01T21:03:04.123456Z")
        );
        assert_eq!(
            node.tag_list(),
            [
                "failover_priority=0",
                "nofailover",
                "replicatefrom=b\\u{1b}[2J"
            ]
        );
        let old = NodeStatus {
            server_version: Some(90624),
            ..Default::default()
        };
        assert_eq!(old.version().as_deref(), Some("9.6.24"));
        assert_eq!(NodeStatus::default().version(), None);
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// As Patroni 3.0.2 writes it (`utils.cluster_as_json`).
    const CLUSTER: &str = r#"{"members": [
        {"name": "a", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:1/patroni",
         "host": "127.0.0.1", "port": 5432, "timeline": 3},
        {"name": "b", "role": "sync_standby", "state": "running", "api_url": "http://127.0.0.1:2/patroni",
         "host": "127.0.0.1", "port": 5433, "timeline": 3, "pending_restart": true, "lag": 4096},
        {"name": "c", "role": "replica", "state": "starting", "api_url": "http://127.0.0.1:3/patroni",
         "lag": "unknown"}]}"#;

    #[test]
    fn members_seen_through_the_dcs() {
        let view: ClusterView = serde_json::from_str(CLUSTER).unwrap();
        assert_eq!(view.leader(), Some("a"));
        let a = view.member("a").unwrap().as_node();
        assert!(a.is_primary());
        assert_eq!((a.timeline, a.dcs_lag), (Some(3), None));
        let b = view.member("b").unwrap().as_node();
        assert_eq!(b.role.as_deref(), Some("replica"));
        assert_eq!((b.pending_restart, b.dcs_lag), (Some(true), Some(4096)));
        let c = view.member("c").unwrap().as_node();
        assert_eq!((c.state.as_deref(), c.dcs_lag), (Some("starting"), None));
    }

    /// A member that accepts the connection and never answers (hung, or waiting on a DCS it
    /// cannot reach) gives way to the next within the query timeout.
    #[tokio::test]
    async fn cluster_from_passes_over_a_member_that_does_not_answer() {
        crate::platform::install_crypto();
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hung_at = format!("http://{}", hung.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            loop {
                open.push(hung.accept().await.unwrap().0);
            }
        });
        let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good_at = format!("http://{}", good.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = good.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let n = s.read(&mut request).await.unwrap();
            assert!(String::from_utf8_lossy(&request[..n]).starts_with("GET /cluster "));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                CLUSTER.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(CLUSTER.as_bytes()).await.unwrap();
        });
        let dead = "http://127.0.0.1:9"; // nothing listens: refused at once
        let started = std::time::Instant::now();
        let view = Patroni::new()
            .cluster_from([dead, hung_at.as_str(), good_at.as_str()])
            .await
            .expect("the third member answers");
        assert_eq!(view.leader(), Some("a"));
        assert!(started.elapsed() < QUERY_TIMEOUT * 2);
        assert!(Patroni::new().cluster_from([dead]).await.is_none());
        held.abort();
    }
}
