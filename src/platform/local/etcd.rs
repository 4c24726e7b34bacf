//! One etcd per pgdeck home: Patroni's DCS. Started on free 127.0.0.1 ports, recorded in
//! `<home>/etcd/endpoint.json`, adopted when it already runs.

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::files::{AtPath, read_optional, write_atomic};
use super::home::Home;
use super::ports::{Ports, free};
use super::process;
use crate::platform::PlatformError;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
struct Endpoint {
    client_port: u16,
    peer_port: u16,
}

#[derive(Clone, Debug)]
pub struct Etcd {
    /// `127.0.0.1:<port>`, as Patroni's etcd3 `hosts` wants it.
    pub host: String,
    http: reqwest::Client,
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

    /// The value of `key`, `None` when it is not set; an error when etcd did not answer.
    pub async fn get(&self, key: &str) -> Result<Option<String>, PlatformError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = serde_json::json!({ "key": b64.encode(key.as_bytes()) });
        let failed = |e: String| PlatformError::Operator(format!("etcd: cannot read {key}: {e}"));
        let reply: serde_json::Value = self
            .http
            .post(self.url("/v3/kv/range"))
            .json(&body)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| failed(e.to_string()))?
            .json()
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(reply["kvs"][0]["value"]
            .as_str()
            .and_then(|v| b64.decode(v).ok())
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Delete every key under `prefix` (a cluster's Patroni keys, once it is deleted, so a
    /// new cluster of the same name starts clean).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), PlatformError> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let body = serde_json::json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&end) });
        self.http
            .post(self.url("/v3/kv/deleterange"))
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| PlatformError::Operator(format!("etcd: cannot delete {prefix}: {e}")))?;
        Ok(())
    }
}

/// Stop the home's etcd, when it runs (its data stays for the next start).
pub async fn stop(home: &Home) {
    for pid in running(home) {
        process::stop(pid, Duration::from_secs(10)).await;
    }
}

/// The etcd processes that serve `home`'s data directory.
fn running(home: &Home) -> Vec<u32> {
    let data = home.etcd_dir().join("data").display().to_string();
    process::find(|args| args[0].ends_with("etcd") && args.iter().any(|a| a == &data))
}

/// The running etcd of `home`: adopted when it answers, started otherwise.
pub async fn ensure(
    home: &Home,
    binary: &std::path::Path,
    ports: &Ports,
) -> Result<Etcd, PlatformError> {
    let dir = home.etcd_dir();
    std::fs::create_dir_all(&dir).at(&dir)?;
    let record = dir.join("endpoint.json");
    let recorded: Option<Endpoint> = read_optional(&record)
        .at(&record)?
        .and_then(|t| serde_json::from_str(&t).ok());
    let http = reqwest::Client::new();
    let data = dir.join("data");
    let data_arg = data.display().to_string();
    let running = running(home);

    if let Some(ep) = recorded {
        let etcd = Etcd {
            host: format!("127.0.0.1:{}", ep.client_port),
            http: http.clone(),
        };
        if !running.is_empty() && etcd.healthy().await {
            ports.claim(ep.client_port);
            ports.claim(ep.peer_port);
            return Ok(etcd);
        }
    }
    for pid in running {
        process::stop(pid, Duration::from_secs(5)).await;
    }
    // Keep the recorded ports when they are free: Patroni's configurations name them.
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
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    process::spawn(
        binary,
        &args,
        None,
        &dir.join("etcd.log"),
        &[(process::HOME_ENV, home.root().display().to_string())],
    )?;
    let etcd = Etcd {
        host: format!("127.0.0.1:{}", ep.client_port),
        http,
    };
    for _ in 0..100 {
        if etcd.healthy().await {
            return Ok(etcd);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(PlatformError::Operator(format!(
        "etcd did not become healthy within 10s; see {}",
        dir.join("etcd.log").display()
    )))
}
