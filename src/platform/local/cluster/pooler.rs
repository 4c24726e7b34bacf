//! pgBouncer on this machine (`spec.proxy.pgBouncer`): `replicas` processes from Debian's
//! package, run as the database account on 127.0.0.1, TLS to clients and to the primary, each
//! pointed at the primary the last pass saw (rewritten and reloaded when it moves).
//!
//! ```text
//! <cluster>/pgbouncer/state.json   pgdeck's own: ports, the SQL applied, a pause under way
//! <cluster>/pgbouncer/<i>.pid      the process pgdeck started
//! <cluster>/pgbouncer/<i>/         the account's: pgbouncer.ini, users.txt, tls.*, run/, log
//! ```
//!
//! pgBouncer reads `users.txt` for two users only: [`POOLER_USER`] (the plain password it logs
//! in to PostgreSQL with; pgdeck keeps the original in `secrets/`, root's alone) and
//! [`ADMIN_USER`] (a SCRAM verifier), which pgdeck uses on the admin console through the
//! process's socket to PAUSE, RESUME, RELOAD and SHOW POOLS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres_protocol::password::scram_sha_256;
use serde::{Deserialize, Serialize};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::super::account::{self, Account};
use super::super::files::{AtPath, read_regular, write_atomic, write_if_changed};
use super::super::home::{ClusterDir, InstanceDir};
use super::super::ports::{Ports, free};
use super::super::process;
use super::secrets::password;
use super::tls::{Ca, Custom};
use crate::api::PostgresCluster;
use crate::api::status::PgBouncerStatus;
use crate::api::users::PasswordType;
use crate::plan::pgbouncer::{self, ADMIN_USER, MAX_PAUSE, PAUSE_TIMEOUT, POOLER_USER, Placement};
use crate::platform::PlatformError;

/// The admin console's password, under the cluster's `secrets/`.
const ADMIN_SECRET: &str = "pgbouncer-admin";

/// What pgdeck remembers of the cluster's poolers, in a directory only it writes.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolerState {
    /// Each pgBouncer's port, by index.
    #[serde(default)]
    pub ports: BTreeMap<u32, u16>,
    /// The authentication function is installed (for these users' fingerprint).
    #[serde(default)]
    pub sql: Option<u64>,
    /// Since when the pools are paused for a switchover (recorded before PAUSE is sent).
    #[serde(default)]
    pub paused_since: Option<jiff::Timestamp>,
}

/// The poolers' directory under the cluster's.
pub fn root(dir: &ClusterDir) -> PathBuf {
    dir.path().join("pgbouncer")
}

fn state_file(dir: &ClusterDir) -> PathBuf {
    root(dir).join("state.json")
}

/// One pgBouncer's directory; its certificate and key where an instance keeps its own.
fn replica_dir(dir: &ClusterDir, i: u32) -> InstanceDir {
    InstanceDir(root(dir).join(i.to_string()))
}

fn pid_file(dir: &ClusterDir, i: u32) -> PathBuf {
    root(dir).join(format!("{i}.pid"))
}

fn ini(dir: &ClusterDir, i: u32) -> PathBuf {
    replica_dir(dir, i).path().join("pgbouncer.ini")
}

fn socket_dir(dir: &ClusterDir, i: u32) -> PathBuf {
    replica_dir(dir, i).socket_dir()
}

/// The state as pgdeck wrote it (a file anyone else made is not read).
pub fn load(dir: &ClusterDir) -> PoolerState {
    use std::os::unix::fs::MetadataExt;
    read_regular(&state_file(dir))
        .ok()
        .flatten()
        .filter(|(_, m)| m.uid() == nix::unistd::geteuid().as_raw() && m.nlink() == 1)
        .and_then(|(bytes, _)| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn save(dir: &ClusterDir, state: &PoolerState) -> Result<(), PlatformError> {
    let path = state_file(dir);
    let bytes = serde_json::to_vec_pretty(state).expect("serializes");
    write_atomic(&path, &bytes, 0o644).at(&path)?;
    Ok(())
}

/// A digest of the users as applied (`state.json`'s `users`): the function is installed again
/// when they, and so perhaps their databases, change.
pub fn users_digest(users: &BTreeMap<String, u64>) -> u64 {
    let json = serde_json::to_vec(users).expect("serializes");
    u64::from_str_radix(&crate::plan::digest(&json), 16).expect("16 hex digits")
}

/// Every port the cluster's poolers hold, for the home's allocator.
pub fn recorded_ports(dir: &ClusterDir) -> Vec<u16> {
    load(dir).ports.into_values().collect()
}

/// The pgBouncer pgdeck started as replica `i`, when it still runs that configuration as the
/// account.
fn pid(dir: &ClusterDir, i: u32, account: &Account) -> Option<u32> {
    let config = ini(dir, i).display().to_string();
    process::tracked(&pid_file(dir, i), |pid, args| {
        args.first().is_some_and(|a| a.ends_with("pgbouncer"))
            && args.contains(&config)
            && process::uid(pid) == Some(account.uid.as_raw())
    })
}

/// Whether something takes TCP connections on 127.0.0.1:`port`.
fn listening(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// How pgdeck reaches one pgBouncer's admin console: its socket, as [`ADMIN_USER`].
#[derive(Clone)]
pub struct Console {
    socket_dir: PathBuf,
    port: u16,
    password: String,
}

impl Console {
    /// Run `command` on the console; an answer within `timeout` or an error.
    pub async fn run(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<Vec<SimpleQueryMessage>, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.socket_dir)
            .port(self.port)
            .user(ADMIN_USER)
            .password(&self.password)
            .dbname("pgbouncer")
            .connect_timeout(Duration::from_secs(2));
        let work = async {
            let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            client.simple_query(command).await.map_err(|e| {
                e.as_db_error()
                    .map_or(e.to_string(), |d| d.message().into())
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer to {command} within {timeout:?}")))
    }
}

/// PAUSE on every console, each within [`PAUSE_TIMEOUT`]: a pool that does not drain in time
/// (a session-pooled client holds its server) leaves the switchover to go on regardless.
pub async fn pause(consoles: &[Console]) {
    let runs = consoles.iter().map(|c| c.run("PAUSE", PAUSE_TIMEOUT));
    for result in futures::future::join_all(runs).await {
        if let Err(e) = result {
            tracing::warn!("pgBouncer PAUSE: {e}");
        }
    }
}

fn admin_password(dir: &ClusterDir) -> Result<String, PlatformError> {
    Ok(password(dir, ADMIN_SECRET, PasswordType::AlphaNumeric)?)
}

/// The admin's SCRAM verifier for `users.txt`, made once per password (a fresh salt each pass
/// would rewrite the file, and reload pgBouncer, every pass). Kept beside the password with
/// the password's digest: a new password gets a new verifier.
fn admin_verifier(dir: &ClusterDir, password: &str) -> Result<String, PlatformError> {
    let path = dir.secrets().join("pgbouncer-admin.verifier");
    let digest = crate::plan::digest(password.as_bytes());
    let stored = std::fs::read_to_string(&path).ok();
    if let Some((d, verifier)) = stored.as_deref().and_then(|s| s.trim().split_once(' '))
        && d == digest
    {
        return Ok(verifier.to_string());
    }
    let verifier = scram_sha_256(password.as_bytes());
    write_atomic(&path, format!("{digest} {verifier}").as_bytes(), 0o600).at(&path)?;
    Ok(verifier)
}

/// The consoles of the cluster's poolers that run now. Reads the admin's password, never
/// makes one (the console calls this too): the pass that started them made it.
pub fn consoles(dir: &ClusterDir, account: &Account) -> Vec<Console> {
    let state = load(dir);
    let Some(password) = super::secrets::stored(dir, ADMIN_SECRET) else {
        return Vec::new();
    };
    state
        .ports
        .iter()
        .filter(|(i, _)| pid(dir, **i, account).is_some())
        .map(|(i, port)| Console {
            socket_dir: socket_dir(dir, *i),
            port: *port,
            password: password.clone(),
        })
        .collect()
}

/// The pools of the cluster's first running pgBouncer (`SHOW POOLS`), for the console.
pub async fn pools(
    dir: &ClusterDir,
    account: &Account,
) -> Result<crate::observe::pgbouncer::Pools, String> {
    let console = consoles(dir, account)
        .into_iter()
        .next()
        .ok_or("no pgBouncer runs")?;
    let rows = console.run("SHOW POOLS", Duration::from_secs(2)).await?;
    Ok(crate::observe::pgbouncer::Pools {
        from: None,
        pools: crate::observe::pgbouncer::pools(&rows),
    })
}

/// Record a pause before it is sent, so that a reconciler that dies after sending it resumes
/// the pools on its next pass; returns the consoles to pause (none when no pooler runs).
pub fn begin_pause(dir: &ClusterDir, account: &Account) -> Result<Vec<Console>, PlatformError> {
    let consoles = consoles(dir, account);
    if !consoles.is_empty() {
        let mut state = load(dir);
        state.paused_since.get_or_insert_with(jiff::Timestamp::now);
        save(dir, &state)?;
    }
    Ok(consoles)
}

/// Stop every pgBouncer of the cluster (it is deleted or shut down): stopped by pgdeck, not
/// exited, when they start again.
pub async fn stop_all(dir: &ClusterDir, account: &Account) {
    for i in load(dir).ports.keys() {
        if let Some(pid) = pid(dir, *i, account) {
            process::stop(pid, Duration::from_secs(10)).await;
        }
        let _ = std::fs::remove_file(pid_file(dir, *i));
        let _ = replica_dir(dir, *i).remove_socket_dir();
    }
}

/// The last line of a log the account writes (read without following a link), for status.
fn last_line(log: &Path) -> Option<String> {
    let (bytes, _) = read_regular(log).ok()??;
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    String::from_utf8_lossy(tail)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(300).collect())
}

/// The cluster's poolers, as one pass sees and keeps them.
pub struct Poolers<'a> {
    pub cluster: &'a PostgresCluster,
    pub dir: &'a ClusterDir,
    pub account: &'a Account,
    pub ports: &'a Ports,
    pub ca: &'a Ca,
    /// The DBA's certificates, pgBouncer's among them when the spec names one.
    pub custom_tls: Option<&'a Custom>,
    pub home_root: &'a str,
}

/// What one pass did, for status.
pub struct Outcome {
    pub status: Option<PgBouncerStatus>,
    /// Something the DBA should know (a pgBouncer that would not start, SQL that failed).
    pub problem: Option<String>,
    /// The pgBouncers that run, watched between passes.
    pub pids: Vec<u32>,
}

impl Poolers<'_> {
    fn replicas(&self) -> Option<u32> {
        let p = self.cluster.spec.proxy.as_ref()?;
        Some(p.pg_bouncer.replicas.unwrap_or(1).max(0) as u32)
    }

    fn admin_password(&self) -> Result<String, PlatformError> {
        admin_password(self.dir)
    }

    fn pooler_password(&self) -> Result<String, PlatformError> {
        Ok(password(self.dir, "pgbouncer", PasswordType::AlphaNumeric)?)
    }

    /// Keep `replicas` pgBouncers running, pointed at the primary on `primary_port` (`None`:
    /// unknown this pass, the last configuration stays); resume paused pools when
    /// [`pgbouncer::resume`] says so. `primary_ready`: that primary accepts connections.
    pub async fn reconcile(
        &self,
        primary_port: Option<u16>,
        primary_ready: bool,
        switching: bool,
    ) -> Result<Outcome, PlatformError> {
        let mut state = load(self.dir);
        let Some(replicas) = self.replicas() else {
            self.remove_all(&mut state).await?;
            return Ok(Outcome {
                status: None,
                problem: None,
                pids: Vec::new(),
            });
        };
        let binary = account::program(
            "pgbouncer",
            "pgbouncer",
            "pgBouncer pools connections (spec.proxy.pgBouncer)",
        )?;
        std::fs::create_dir_all(root(self.dir)).at(&root(self.dir))?;
        for i in state
            .ports
            .keys()
            .copied()
            .filter(|i| *i >= replicas)
            .collect::<Vec<_>>()
        {
            self.remove(&mut state, i).await?;
        }
        let admin = self.admin_password()?;
        let users = pgbouncer::auth_file(&[
            (POOLER_USER, &self.pooler_password()?),
            (ADMIN_USER, &admin_verifier(self.dir, &admin)?),
        ]);
        let mut problem = None;
        let mut ready = 0;
        let mut hosts = Vec::new();
        for i in 0..replicas {
            // A stopped pgBouncer whose port another program took meanwhile moves.
            let taken = |p: &u16| pid(self.dir, i, self.account).is_none() && !free(*p);
            if let Some(old) = state.ports.get(&i).copied().filter(taken) {
                tracing::warn!("pgBouncer {i}: port {old} is taken by another program; moving");
                state.ports.remove(&i);
                self.ports.release(old);
            }
            let port = match state.ports.get(&i) {
                Some(p) => *p,
                None => {
                    let p = self.ports.allocate().ok_or_else(|| {
                        PlatformError::Operator("no free port on 127.0.0.1 in 20000-31999".into())
                    })?;
                    state.ports.insert(i, p);
                    save(self.dir, &state)?;
                    p
                }
            };
            hosts.push(format!("127.0.0.1:{port}"));
            let console = Console {
                socket_dir: socket_dir(self.dir, i),
                port,
                password: admin.clone(),
            };
            match self
                .keep(i, port, primary_port, &users, &binary, &console)
                .await
            {
                Ok(true) => ready += 1,
                Ok(false) => {}
                Err(e) => problem = Some(format!("pgBouncer {i}: {e}")),
            }
        }
        if let Some(since) = state.paused_since {
            let paused_for = Duration::try_from(jiff::Timestamp::now().duration_since(since))
                .unwrap_or(MAX_PAUSE);
            if pgbouncer::resume(paused_for, switching, primary_ready) {
                self.resume(&mut state).await?;
            }
        }
        Ok(Outcome {
            status: Some(PgBouncerStatus {
                replicas: replicas as i32,
                ready_replicas: ready,
                hosts,
                paused: state.paused_since.is_some(),
            }),
            problem,
            pids: (0..replicas)
                .filter_map(|i| pid(self.dir, i, self.account))
                .collect(),
        })
    }

    /// Write replica `i`'s files and keep it running; says whether it answers.
    async fn keep(
        &self,
        i: u32,
        port: u16,
        primary_port: Option<u16>,
        users: &str,
        binary: &Path,
        console: &Console,
    ) -> Result<bool, PlatformError> {
        let inst = replica_dir(self.dir, i);
        self.account.make_dir(inst.path(), 0o700).at(inst.path())?;
        let run = inst.make_socket_dir(self.account).at(&inst.socket_dir())?;
        let path = ini(self.dir, i);
        let mut changed = match self
            .custom_tls
            .and_then(|c| c.install_pooler(&inst, self.account))
        {
            Some(installed) => installed?,
            None => self.ca.ensure_server(&inst, "pgbouncer", self.account)?,
        };
        let users_path = inst.path().join("users.txt");
        changed |= write_if_changed(&users_path, users.as_bytes(), 0o600, Some(self.account))
            .at(&users_path)?;
        if let Some(primary_port) = primary_port {
            let at = Placement {
                listen_addr: "127.0.0.1".into(),
                listen_port: port,
                unix_socket_dir: run.display().to_string(),
                auth_file: users_path.display().to_string(),
                ca_file: self.dir.ca_cert().display().to_string(),
                server_ca_file: self.dir.ca_cert().display().to_string(),
                cert_file: inst.tls_cert().display().to_string(),
                key_file: inst.tls_key().display().to_string(),
                primary_host: "127.0.0.1".into(),
                primary_port,
                admin_users: Some(ADMIN_USER.into()),
                stats_user: None,
                include: None,
                logfile: None,
            };
            let text = pgbouncer::render(self.cluster, &at);
            changed |=
                write_if_changed(&path, text.as_bytes(), 0o600, Some(self.account)).at(&path)?;
        }
        if !path.exists() {
            return Ok(false); // no primary seen yet: nothing to point it at
        }
        match pid(self.dir, i, self.account) {
            Some(pid) => {
                if changed && let Err(e) = console.run("RELOAD", Duration::from_secs(2)).await {
                    tracing::warn!("pgBouncer {i}: RELOAD: {e}; sending SIGHUP");
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGHUP,
                    );
                }
                Ok(listening(port))
            }
            None => {
                // One pgdeck started before is gone: say so, with its last words.
                let exited = pid_file(self.dir, i).exists();
                tracing::info!(cluster = self.cluster.name(), "starting pgBouncer {i}");
                let env = [(process::HOME_ENV, self.home_root.to_string())];
                let log = inst.path().join("pgbouncer.log");
                let last_words = exited.then(|| last_line(&log)).flatten();
                let pid = process::spawn(
                    binary,
                    &[path.display().to_string()],
                    Some(self.account),
                    &log,
                    &env,
                )?;
                process::track(&pid_file(self.dir, i), Some(pid))?;
                match exited {
                    true => Err(PlatformError::Operator(format!(
                        "it exited and was started again; its log ends: {}",
                        last_words.as_deref().unwrap_or("(nothing)")
                    ))),
                    false => Ok(false),
                }
            }
        }
    }

    /// RESUME every pool; the pause is over once each running pgBouncer took it (one that is
    /// not paused, or was restarted, says so and counts as resumed).
    async fn resume(&self, state: &mut PoolerState) -> Result<(), PlatformError> {
        let mut all = true;
        for console in consoles(self.dir, self.account) {
            match console.run("RESUME", Duration::from_secs(2)).await {
                Ok(_) => {}
                Err(e) if e.contains("not paused") => {}
                Err(e) => {
                    tracing::warn!("pgBouncer RESUME: {e}");
                    all = false;
                }
            }
        }
        if all {
            state.paused_since = None;
            save(self.dir, state)?;
        }
        Ok(())
    }

    async fn remove(&self, state: &mut PoolerState, i: u32) -> Result<(), PlatformError> {
        if let Some(pid) = pid(self.dir, i, self.account) {
            process::stop(pid, Duration::from_secs(10)).await;
        }
        let inst = replica_dir(self.dir, i);
        inst.remove_socket_dir().at(&inst.socket_dir())?;
        match std::fs::remove_dir_all(inst.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).at(inst.path()).map_err(Into::into);
            }
            _ => {}
        }
        let _ = std::fs::remove_file(pid_file(self.dir, i));
        if let Some(port) = state.ports.remove(&i) {
            self.ports.release(port);
        }
        save(self.dir, state)
    }

    /// `spec.proxy.pgBouncer` is gone: stop every pgBouncer and remove its files. The SQL
    /// side (the pooler's role may no longer log in) is [`disable`]'s, on the primary.
    async fn remove_all(&self, state: &mut PoolerState) -> Result<(), PlatformError> {
        if !root(self.dir).exists() {
            return Ok(());
        }
        for i in state.ports.keys().copied().collect::<Vec<_>>() {
            self.remove(state, i).await?;
        }
        if state.sql.is_none() {
            let root = root(self.dir);
            std::fs::remove_dir_all(&root).at(&root)?;
        }
        Ok(())
    }

    /// Whether the authentication function must be (re)installed, or the pooler's role
    /// disabled: `Some(true)`, `Some(false)`; `None` when nothing is to do. `users` is the
    /// fingerprint of the users as applied (their databases change with them).
    pub fn sql_due(&self, users: u64) -> Option<bool> {
        let state = load(self.dir);
        match (self.replicas().is_some(), state.sql) {
            (true, Some(done)) if done == users => None,
            (true, _) => Some(true),
            (false, Some(_)) => Some(false),
            (false, None) => None,
        }
    }

    /// What [`install`] or [`disable`] need, for a task.
    pub fn sql_job(&self, enable: bool) -> Result<Option<String>, PlatformError> {
        Ok(enable
            .then(|| self.pooler_password())
            .transpose()?
            .map(|p| scram_sha_256(p.as_bytes())))
    }

    /// Record what the SQL task did: installed for `users`, or disabled (then the poolers'
    /// directory goes too).
    pub fn sql_done(&self, installed: Option<u64>) -> Result<(), PlatformError> {
        let mut state = load(self.dir);
        state.sql = installed;
        if installed.is_none() && self.replicas().is_none() {
            let root = root(self.dir);
            return match std::fs::remove_dir_all(&root) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(&root)?,
                _ => Ok(()),
            };
        }
        save(self.dir, &state)
    }
}

/// Install the pooler's role (able to log in with `verifier`) and its authentication function
/// in every database that takes connections (templates included, so databases made later
/// have it), through `socket_dir`/`port` as the superuser; `verifier` `None` disables the role.
pub async fn apply_sql(
    socket_dir: &Path,
    port: u16,
    verifier: Option<String>,
) -> Result<(), String> {
    let connect = |db: String| {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(socket_dir)
            .port(port)
            .user(crate::plan::patroni::SUPERUSER)
            .dbname(&db)
            .connect_timeout(Duration::from_secs(2));
        async move {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| format!("cannot connect to {db} on the primary: {e}"))?;
            tokio::spawn(connection);
            Ok::<_, String>(client)
        }
    };
    let admin = connect("postgres".into()).await?;
    let Some(verifier) = verifier else {
        return admin
            .batch_execute(&pgbouncer::disable_sql())
            .await
            .map_err(|e| format!("disabling {POOLER_USER}: {e}"));
    };
    admin
        .batch_execute(&pgbouncer::role_sql(&verifier))
        .await
        .map_err(|e| format!("{POOLER_USER}: {e}"))?;
    let databases: Vec<String> = admin
        .query(
            "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY datname",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for db in databases {
        let client = connect(db.clone()).await?;
        client
            .batch_execute(&pgbouncer::install_sql())
            .await
            .map_err(|e| format!("pgBouncer's function in {db}: {e}"))?;
    }
    Ok(())
}
