//! One etcd per pgdeck home: Patroni's DCS. Started on free 127.0.0.1 ports, recorded in
//! `<home>/etcd/endpoint.json`, adopted when it already runs.
//!
//! Authentication is on: a `root` user for pgdeck (its password in `<home>/etcd/`, readable
//! by pgdeck's account only), and per cluster a user whose role may read and write only the
//! cluster's keys (`/pgdeck/<ns>/<name>/`), which its Patroni uses. An etcd that runs without
//! authentication (made by an earlier pgdeck) gets it once every cluster's Patroni has its
//! credentials (see [`ClusterState::dcs_credentials`]), so no Patroni is locked out.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cluster::state::ClusterState;
use super::files::{AtPath, read_optional, read_regular, write_atomic};
use super::home::Home;
use super::ports::{Ports, free};
use super::process;
use super::store::Store;
use crate::api::users::PasswordType;
use crate::plan::bootstrap_stall::Key;
use crate::plan::patroni::BasicAuth;
use crate::platform::PlatformError;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
struct Endpoint {
    client_port: u16,
    peer_port: u16,
}

/// etcd's superuser, which pgdeck uses.
const ROOT: &str = "root";

/// How long every cluster's Patroni must have had its etcd credentials before authentication
/// is turned on: a reload takes effect at Patroni's next loop (`loop_wait`, 10 s by default).
const RELOAD_GRACE: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Etcd {
    /// `127.0.0.1:<port>`, as Patroni's etcd3 `hosts` wants it.
    pub host: String,
    http: reqwest::Client,
    root_password: String,
    /// The root user's token, once authentication is on.
    token: Arc<Mutex<Option<String>>>,
    /// Cluster users made or checked since this etcd was adopted.
    users: Arc<Mutex<HashSet<String>>>,
}

/// What etcd answered when it refused: its gRPC status message.
#[derive(Debug)]
struct Refusal(String);

impl Refusal {
    fn is(&self, what: &str) -> bool {
        self.0.contains(what)
    }
}

/// The key prefix of a cluster's Patroni keys: Patroni's `namespace` plus its `scope`.
pub fn cluster_prefix(ns: &str, name: &str) -> String {
    format!("/pgdeck/{ns}/{name}/")
}

/// The etcd user (and role) of a cluster; `/` cannot occur in names, so none collide.
pub fn cluster_user(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// The end of the key range of everything under `prefix` (etcd's `range_end`).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Etcd {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    async fn healthy(&self) -> bool {
        let Ok(r) = self
            .http
            .get(self.url("/health"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
        else {
            return false;
        };
        r.json::<serde_json::Value>()
            .await
            .is_ok_and(|v| v["health"] == "true")
    }

    /// Whether etcd answers as healthy within `patience`, asked again and again.
    async fn answers_within(&self, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        while !self.healthy().await {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        true
    }

    /// One call of etcd's JSON gateway, as root when authentication is on: a missing or
    /// expired token is renewed once, and so is one that etcd's users and roles changed under
    /// (`revision of auth store is old`: every new cluster adds some).
    async fn call(&self, path: &str, body: &Value) -> Result<Value, PlatformError> {
        let failed = |e: String| PlatformError::Operator(format!("etcd {path}: {e}"));
        match self.call_once(path, body).await.map_err(failed)? {
            Ok(v) => return Ok(v),
            Err(r)
                if r.is("user name is empty")
                    || r.is("invalid auth token")
                    || r.is("revision of auth store is old") => {}
            Err(r) => return Err(failed(r.0)),
        }
        self.authenticate().await?;
        self.call_once(path, body)
            .await
            .map_err(failed)?
            .map_err(|r| failed(r.0))
    }

    async fn call_once(&self, path: &str, body: &Value) -> Result<Result<Value, Refusal>, String> {
        let token = self.token.lock().expect("never poisoned").clone();
        let mut request = self
            .http
            .post(self.url(path))
            .json(body)
            .timeout(Duration::from_secs(2));
        if let Some(t) = token {
            request = request.header(reqwest::header::AUTHORIZATION, t);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let v: Value = response.json().await.map_err(|e| e.to_string())?;
        if ok {
            return Ok(Ok(v));
        }
        let message = v["message"]
            .as_str()
            .or(v["error"].as_str())
            .unwrap_or("refused");
        Ok(Err(Refusal(message.to_string())))
    }

    /// The value of `key`, `None` when it is not set; an error when etcd did not answer.
    pub async fn get(&self, key: &str) -> Result<Option<String>, PlatformError> {
        Ok(self.get_with_revision(key).await?.map(|k| k.value))
    }

    /// The value of `key` with its last write's revision, `None` when it is not set.
    pub async fn get_with_revision(&self, key: &str) -> Result<Option<Key>, PlatformError> {
        let reply = self
            .call("/v3/kv/range", &json!({ "key": b64(key.as_bytes()) }))
            .await?;
        let kv = &reply["kvs"][0];
        let Some(value) = kv["value"].as_str().or(kv["key"].as_str().map(|_| "")) else {
            return Ok(None);
        };
        let value = base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap_or_default();
        // The JSON gateway writes int64 as strings.
        let mod_revision = kv["mod_revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| PlatformError::Operator(format!("etcd: {key} has no revision")))?;
        Ok(Some(Key {
            value: String::from_utf8_lossy(&value).into_owned(),
            mod_revision,
        }))
    }

    /// Delete `key` and `along` in one transaction, only while `key`'s last write is still
    /// `mod_revision`; says whether they were deleted.
    pub async fn delete_unchanged(
        &self,
        key: &str,
        mod_revision: i64,
        along: &str,
    ) -> Result<bool, PlatformError> {
        let delete = |k: &str| json!({ "request_delete_range": { "key": b64(k.as_bytes()) } });
        let body = json!({
            "compare": [{
                "key": b64(key.as_bytes()),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": mod_revision.to_string(),
            }],
            "success": [delete(key), delete(along)],
        });
        let reply = self.call("/v3/kv/txn", &body).await?;
        Ok(reply["succeeded"] == true)
    }

    /// Follow every change of the keys under `prefix` as `changed(key, value)` (`None`: the key
    /// was deleted or expired), until etcd ends the stream or stops answering.
    pub async fn watch(
        &self,
        prefix: &str,
        mut changed: impl FnMut(&str, Option<&str>),
    ) -> Result<(), PlatformError> {
        let failed = |e: String| PlatformError::Operator(format!("etcd watch: {e}"));
        self.authenticate().await?;
        let token = self.token.lock().expect("never poisoned").clone();
        let body = json!({ "create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
        }});
        // No timeout: the stream stays open for as long as etcd runs.
        let mut request = self.http.post(self.url("/v3/watch")).json(&body);
        if let Some(t) = token {
            request = request.header(reqwest::header::AUTHORIZATION, t);
        }
        let mut response = request.send().await.map_err(|e| failed(e.to_string()))?;
        let decode = |v: &Value| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        // The gateway sends one JSON object a line.
        let mut pending = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                if let Some(error) = message.get("error") {
                    return Err(failed(error.to_string()));
                }
                // etcd cancels a watch it no longer allows (authentication turned on meanwhile)
                // and keeps the stream open: taken again, with a token.
                if message["result"]["canceled"] == true {
                    return Err(failed(message["result"]["cancel_reason"].to_string()));
                }
                for event in message["result"]["events"].as_array().into_iter().flatten() {
                    let key = decode(&event["kv"]["key"]);
                    let value = (event["type"] != "DELETE").then(|| decode(&event["kv"]["value"]));
                    changed(&key, value.as_deref());
                }
            }
        }
        Ok(())
    }

    /// Take a token as root; says whether authentication is on.
    async fn authenticate(&self) -> Result<bool, PlatformError> {
        *self.token.lock().expect("never poisoned") = None;
        let body = json!({ "name": ROOT, "password": self.root_password });
        match self.call_once("/v3/auth/authenticate", &body).await {
            Ok(Ok(v)) => {
                *self.token.lock().expect("never poisoned") = v["token"].as_str().map(String::from);
                Ok(true)
            }
            Ok(Err(r)) if r.is("authentication is not enabled") => Ok(false),
            Ok(Err(r)) => Err(PlatformError::Operator(format!(
                "etcd refuses pgdeck's root user: {}",
                r.0
            ))),
            Err(e) => Err(PlatformError::Operator(format!("etcd: {e}"))),
        }
    }

    /// Make something that may exist already (a user, a role, a grant).
    async fn make(&self, path: &str, body: Value) -> Result<(), PlatformError> {
        match self.call(path, &body).await {
            Err(e) if e.to_string().contains("already exists") => Ok(()),
            other => other.map(drop),
        }
    }

    /// Turn authentication on (with pgdeck's root user) unless it is: at once in a `fresh`
    /// etcd (no Patroni has used it yet); in one whose clusters ran without it, once each has
    /// its own user in every Patroni configuration for [`RELOAD_GRACE`].
    async fn secure(&self, home: &Home, fresh: bool) -> Result<(), PlatformError> {
        // A token says authentication is on; once it expires, `call` takes a new one.
        let authenticated = self.token.lock().expect("never poisoned").is_some();
        if authenticated || self.authenticate().await? {
            return Ok(());
        }
        self.make("/v3/auth/role/add", json!({ "name": ROOT }))
            .await?;
        self.make(
            "/v3/auth/user/add",
            json!({ "name": ROOT, "password": self.root_password }),
        )
        .await?;
        self.call(
            "/v3/auth/user/changepw",
            &json!({ "name": ROOT, "password": self.root_password }),
        )
        .await?;
        self.make("/v3/auth/user/grant", json!({ "user": ROOT, "role": ROOT }))
            .await?;
        let clusters = if fresh {
            Vec::new()
        } else {
            Store::new(home.clone()).list(None)?
        };
        for cluster in clusters {
            let (ns, name) = (cluster.namespace(), cluster.name());
            let since = ClusterState::load(&home.cluster(ns, name))
                .ok()
                .and_then(|s| s.dcs_credentials);
            let settled =
                since.is_some_and(|t| jiff::Timestamp::now().duration_since(t) > RELOAD_GRACE);
            let user = self
                .call(
                    "/v3/auth/user/get",
                    &json!({ "name": cluster_user(ns, name) }),
                )
                .await
                .is_ok();
            if !(settled && user) {
                tracing::info!(
                    "etcd authentication waits until the Patroni of {ns}/{name} has its credentials"
                );
                return Ok(());
            }
        }
        self.call("/v3/auth/enable", &json!({})).await?;
        tracing::info!("etcd authentication is on");
        self.authenticate().await.map(drop)
    }

    /// The cluster's own etcd user with `password`, allowed to read and write only the
    /// cluster's keys. Made (or its password set) once per adopted etcd.
    pub async fn cluster_auth(
        &self,
        ns: &str,
        name: &str,
        password: &str,
    ) -> Result<BasicAuth, PlatformError> {
        let user = cluster_user(ns, name);
        let auth = BasicAuth {
            username: user.clone(),
            password: password.to_string(),
        };
        if self.users.lock().expect("never poisoned").contains(&user) {
            return Ok(auth);
        }
        let prefix = cluster_prefix(ns, name);
        self.make("/v3/auth/role/add", json!({ "name": user }))
            .await?;
        self.call(
            "/v3/auth/role/grant",
            &json!({ "name": user, "perm": {
                "permType": "READWRITE",
                "key": b64(prefix.as_bytes()),
                "range_end": b64(&prefix_end(&prefix)),
            }}),
        )
        .await?;
        self.make(
            "/v3/auth/user/add",
            json!({ "name": user, "password": password }),
        )
        .await?;
        self.call(
            "/v3/auth/user/changepw",
            &json!({ "name": user, "password": password }),
        )
        .await?;
        self.make("/v3/auth/user/grant", json!({ "user": user, "role": user }))
            .await?;
        self.users.lock().expect("never poisoned").insert(user);
        Ok(auth)
    }

    /// Forget a deleted cluster: its Patroni keys (so a new cluster of the same name starts
    /// clean), its user and its role.
    pub async fn delete_cluster(&self, ns: &str, name: &str) -> Result<(), PlatformError> {
        let prefix = cluster_prefix(ns, name);
        let body = json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(&prefix)) });
        self.call("/v3/kv/deleterange", &body).await?;
        let user = cluster_user(ns, name);
        self.users.lock().expect("never poisoned").remove(&user);
        for (path, body) in [
            ("/v3/auth/user/delete", json!({ "name": user })),
            ("/v3/auth/role/delete", json!({ "role": user })),
        ] {
            match self.call(path, &body).await {
                Err(e) if e.to_string().contains("not found") => {}
                other => other.map(drop)?,
            }
        }
        Ok(())
    }
}

/// pgdeck's root password for the home's etcd, made on first use.
fn root_password(home: &Home) -> Result<String, PlatformError> {
    let path = home.etcd_dir().join("root.password");
    if let Some((bytes, _)) = read_regular(&path).at(&path)? {
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if !text.is_empty() {
            return Ok(text);
        }
    }
    let password = crate::plan::password(PasswordType::AlphaNumeric);
    write_atomic(&path, password.as_bytes(), 0o600).at(&path)?;
    Ok(password)
}

/// Stop the home's etcd, when it runs (its data stays for the next start).
pub async fn stop(home: &Home) {
    if let Some(pid) = running(home) {
        process::stop(pid, Duration::from_secs(10)).await;
    }
}

/// The etcd that serves `home`'s data directory: pgdeck's own only (anyone can start a
/// look-alike), since it gets the root password.
fn running(home: &Home) -> Option<u32> {
    let data = home.etcd_dir().join("data").display().to_string();
    let me = nix::unistd::geteuid().as_raw();
    process::tracked(&home.etcd_dir().join("etcd.pid"), |pid, args| {
        args.first().is_some_and(|a| a.ends_with("etcd"))
            && args.iter().any(|a| a == &data)
            && process::uid(pid) == Some(me)
    })
}

/// The running etcd of `home`: adopted when it answers, started otherwise.
///
/// `current` is the etcd adopted before, kept (with its token and the users it knows) while
/// it still answers at the same place.
pub async fn ensure(
    home: &Home,
    binary: &std::path::Path,
    ports: &Ports,
    current: Option<Etcd>,
) -> Result<Etcd, PlatformError> {
    let dir = home.etcd_dir();
    // pgdeck's alone: etcd's data and the root password.
    super::files::make_dir(&dir, 0o700, None).at(&dir)?;
    let root_password = root_password(home)?;
    let record = dir.join("endpoint.json");
    let recorded: Option<Endpoint> = read_optional(&record)
        .at(&record)?
        .and_then(|t| serde_json::from_str(&t).ok());
    let http = reqwest::Client::new();
    let at = |port: u16| Etcd {
        host: format!("127.0.0.1:{port}"),
        http: http.clone(),
        root_password: root_password.clone(),
        token: Arc::default(),
        users: Arc::default(),
    };
    let data = dir.join("data");
    let data_arg = data.display().to_string();
    let running = running(home);

    if let Some(ep) = recorded {
        let etcd = current
            .filter(|c| c.host == format!("127.0.0.1:{}", ep.client_port))
            .unwrap_or_else(|| at(ep.client_port));
        // A busy machine (many clusters starting at once) can keep etcd from answering within
        // a second: a running etcd gets time before it is given up for another.
        if running.is_some() && etcd.answers_within(Duration::from_secs(10)).await {
            ports.claim(ep.client_port);
            ports.claim(ep.peer_port);
            etcd.secure(home, false).await?;
            return Ok(etcd);
        }
    }
    if let Some(pid) = running {
        process::stop(pid, Duration::from_secs(5)).await;
        // Killed, it lets go of its ports in a moment: wait for that, to keep them.
        for _ in 0..50 {
            if !process::alive(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Keep the recorded ports when they are free: Patroni's configurations name them, and a
    // running Patroni does not take another etcd address from a reload.
    let ep = match recorded {
        Some(ep) if free(ep.client_port) && free(ep.peer_port) => {
            ports.claim(ep.client_port);
            ports.claim(ep.peer_port);
            ep
        }
        _ => {
            let take = || {
                ports
                    .allocate()
                    .ok_or_else(|| PlatformError::Operator("no free port for etcd".into()))
            };
            Endpoint {
                client_port: take()?,
                peer_port: take()?,
            }
        }
    };
    write_atomic(
        &record,
        &serde_json::to_vec(&ep).expect("serializes"),
        0o644,
    )
    .at(&record)?;
    let client = format!("http://127.0.0.1:{}", ep.client_port);
    let peer = format!("http://127.0.0.1:{}", ep.peer_port);
    let args: Vec<String> = [
        "--name",
        "pgdeck",
        "--data-dir",
        &data_arg,
        "--listen-client-urls",
        &client,
        "--advertise-client-urls",
        &client,
        "--listen-peer-urls",
        &peer,
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster",
        &format!("pgdeck={peer}"),
        "--log-level",
        "warn",
        // Every Patroni authenticates when it starts, and again whenever etcd was slow to
        // answer; at bcrypt's default cost (10) 100 clusters applied at once kept etcd busy
        // hashing past Patroni's 3.3 s timeout, each timeout bringing another authentication.
        // The passwords are pgdeck's own, 24 random characters (140 bits): a slow hash adds
        // nothing to them, so the cheapest (4) is used.
        "--bcrypt-cost",
        "4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let fresh = !data.exists();
    let pid = process::spawn(
        binary,
        &args,
        None,
        &dir.join("etcd.log"),
        &[(process::HOME_ENV, home.root().display().to_string())],
    )?;
    process::track(&dir.join("etcd.pid"), Some(pid))?;
    let etcd = at(ep.client_port);
    for _ in 0..100 {
        if etcd.healthy().await {
            etcd.secure(home, fresh).await?;
            return Ok(etcd);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(PlatformError::Operator(format!(
        "etcd did not become healthy within 10s; see {}",
        dir.join("etcd.log").display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clusters_range_holds_its_keys_only() {
        let prefix = cluster_prefix("default", "hippo");
        assert_eq!(prefix, "/pgdeck/default/hippo/");
        let end = prefix_end(&prefix);
        let within = |key: &str| key.as_bytes() >= prefix.as_bytes() && key.as_bytes() < &end[..];
        assert!(within("/pgdeck/default/hippo/leader"));
        for other in [
            "/pgdeck/default/hippo-dev/leader",
            "/pgdeck/default/hippo",
            "/pgdeck/default/hippo0",
            "/pgdeck/other/hippo/leader",
        ] {
            assert!(!within(other), "{other}");
        }
        assert_ne!(cluster_user("a-b", "c"), cluster_user("a", "b-c"));
    }
}
