//! `spec.monitoring.pgmonitor.exporter` on this machine: a `prometheus-postgres-exporter` (from
//! Debian's package) per instance, run as the database account on a port of the home's
//! allocator, on 127.0.0.1. It connects through the instance's socket as the monitoring role
//! with a generated password; pgdeck starts and watches it itself (the package's systemd unit,
//! if any, plays no part).

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::super::account::{self, Account};
use super::super::files::{self, AtPath, write_if_changed};
use super::super::home::ClusterDir;
use super::super::objects::ObjectStore;
use super::super::ports::{Ports, free};
use super::super::process;
use super::secrets::password;
use super::state::{InstanceRecord, write_record};
use super::users::{DesiredUser, conninfo_value};
use crate::api::PostgresCluster;
use crate::api::users::{PasswordType, UserSpec};
use crate::plan::monitoring::{self, MONITORING_ROLE, MONITORING_USER};
use crate::platform::PlatformError;

/// The monitoring role as the users task keeps it, with its password (generated once, kept in
/// the cluster's root-only `secrets/`).
pub fn monitoring_user(dir: &ClusterDir) -> Result<DesiredUser, PlatformError> {
    Ok(DesiredUser {
        spec: UserSpec {
            name: MONITORING_USER.into(),
            ..Default::default()
        },
        password: password(dir, MONITORING_USER, PasswordType::AlphaNumeric)?,
        member_of: Some(MONITORING_ROLE),
    })
}

/// The exporter's address, for status: over TLS with `customTLSSecret`.
pub fn url(cluster: &PostgresCluster, port: u16) -> String {
    let tls = monitoring::exporter(cluster).is_some_and(|e| e.custom_tls_secret.is_some());
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{port}/metrics")
}

/// The exporter program, or an error naming the package that provides it.
fn binary() -> Result<PathBuf, PlatformError> {
    account::program(
        "prometheus-postgres-exporter",
        "prometheus-postgres-exporter",
        "it serves spec.monitoring.pgmonitor.exporter's metrics",
    )
}

/// What one instance's exporter needs.
pub struct Exporter<'a> {
    pub cluster: &'a PostgresCluster,
    pub dir: &'a ClusterDir,
    pub account: &'a Account,
    pub ports: &'a Ports,
    pub objects: &'a ObjectStore,
    /// The home's root, in the exporter's environment as in every process pgdeck starts: what
    /// finds this home's processes (`pgdeck` stopping them, the tests' cleanup) finds it too.
    pub home_root: &'a str,
}

impl Exporter<'_> {
    /// Keep the exporter of `rec` running as the spec says: started (or restarted with new
    /// queries, certificate or flags) when it asks for one, stopped and its port given back
    /// when not. Returns the exporter's pid.
    pub async fn reconcile(&self, rec: &InstanceRecord) -> Result<Option<u32>, PlatformError> {
        let Some(spec) = monitoring::exporter(self.cluster) else {
            // One ran while the instance has a port for it.
            if let Some(port) = rec.exporter_port {
                stop_for(self.dir, rec).await;
                let rec = InstanceRecord {
                    exporter_port: None,
                    ..rec.clone()
                };
                write_record(self.dir, &rec)?;
                self.ports.release(port);
            }
            return Ok(None);
        };
        let ns = self.cluster.namespace();
        let queries = monitoring::queries(spec, |name| {
            self.objects
                .get::<ConfigMap>(ns, name)
                .map_err(|e| e.to_string())
        })
        .map_err(PlatformError::Operator)?;
        let tls = monitoring::tls_pair(spec, |name| {
            self.objects
                .get::<Secret>(ns, name)
                .map_err(|e| e.to_string())
        })
        .map_err(PlatformError::Operator)?;
        let mut rec = rec.clone();
        let running = pid(self.dir, &rec);
        let port = match rec.exporter_port {
            Some(port) if running.is_some() || free(port) => port,
            // None yet, or another program took it while none ran here.
            taken => {
                let port = self.ports.allocate().ok_or_else(|| {
                    PlatformError::Operator("no free port on 127.0.0.1 in 20000-31999".into())
                })?;
                rec.exporter_port = Some(port);
                write_record(self.dir, &rec)?;
                if let Some(taken) = taken {
                    self.ports.release(taken);
                }
                port
            }
        };
        let inst = self.dir.instance(&rec.name);
        let mut args = vec![format!("--web.listen-address=127.0.0.1:{port}")];
        // Files in the account's directory: each replaced by a fresh one, never written
        // through a link left under its name.
        let write = |path: &std::path::Path, bytes: &[u8], mode| {
            write_if_changed(path, bytes, mode, Some(self.account)).at(path)
        };
        let mut changed = false;
        if let Some(text) = &queries {
            let path = inst.exporter_queries();
            changed |= write(&path, text.as_bytes(), 0o640)?;
            args.push(format!("--extend.query-path={}", path.display()));
        }
        let [cert_file, key_file, web_file] = inst.exporter_tls();
        match tls {
            Some(pair) => {
                let web = monitoring::web_config(
                    &cert_file.display().to_string(),
                    &key_file.display().to_string(),
                );
                changed |= write(&cert_file, &pair.cert, 0o600)?;
                changed |= write(&key_file, &pair.key, 0o600)?;
                changed |= write(&web_file, web.as_bytes(), 0o600)?;
                args.push(format!("--web.config.file={}", web_file.display()));
            }
            None => {
                for path in [&cert_file, &key_file, &web_file] {
                    files::remove_if_exists(path).at(path)?;
                }
            }
        }
        if let Some(pid) = running {
            // It reads its queries when it starts: new ones, or other flags, start it anew.
            if !changed && process::cmdline(pid).get(1..) == Some(&args[..]) {
                return Ok(Some(pid));
            }
            process::stop(pid, Duration::from_secs(5)).await;
        }
        let password = password(self.dir, MONITORING_USER, PasswordType::AlphaNumeric)?;
        // Through the socket, which is no network: TLS has nothing to protect there.
        let dsn = format!(
            "host={} port={} user={MONITORING_USER} dbname=postgres sslmode=disable password={}",
            conninfo_value(&inst.socket_dir().display().to_string()),
            rec.pg_port,
            conninfo_value(&password),
        );
        tracing::info!(cluster = self.cluster.name(), instance = %rec.name, port, "starting the exporter");
        let pid = process::spawn(
            &binary()?,
            &args,
            Some(self.account),
            &inst.exporter_log(),
            &[
                ("DATA_SOURCE_NAME", dsn),
                (process::HOME_ENV, self.home_root.to_string()),
            ],
        )?;
        process::track(&self.dir.exporter_pid_file(&rec.name), Some(pid))?;
        Ok(Some(pid))
    }
}

/// The exporter pgdeck started for `rec`, while it runs: as the account that owns the
/// instance, on the instance's exporter port.
fn pid(dir: &ClusterDir, rec: &InstanceRecord) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::symlink_metadata(dir.instance(&rec.name).path())
        .ok()?
        .uid();
    let listen = format!("--web.listen-address=127.0.0.1:{}", rec.exporter_port?);
    process::tracked(&dir.exporter_pid_file(&rec.name), |pid, args| {
        args.first()
            .is_some_and(|a| a.ends_with("prometheus-postgres-exporter"))
            && args.contains(&listen)
            && process::uid(pid) == Some(owner)
    })
}

/// Stop the exporter of instance `name`, if one runs.
pub async fn stop(dir: &ClusterDir, name: &str) {
    let recorded = super::state::instances(dir)
        .into_iter()
        .find(|r| r.name == name && r.exporter_port.is_some());
    if let Some(rec) = recorded {
        stop_for(dir, &rec).await;
    }
}

async fn stop_for(dir: &ClusterDir, rec: &InstanceRecord) {
    if let Some(pid) = pid(dir, rec) {
        process::stop(pid, Duration::from_secs(5)).await;
        let _ = process::track(&dir.exporter_pid_file(&rec.name), None);
    }
}
