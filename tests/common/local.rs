//! A throwaway pgdeck home for tests that run real clusters. Dropping it kills every process
//! the home started (reconciler, etcd, Patroni, PostgreSQL), also when the test failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pgdeck::platform::local::home::InstanceDir;

/// Real clusters are heavy on a two-core machine: at most `PGDECK_TEST_HOMES` (2 unless set)
/// tests of a test binary run them at once; the others wait their turn.
static HOMES: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A place among the homes allowed at once, given back when the home is dropped.
struct Turn;

impl Turn {
    fn take() -> Turn {
        let most = std::env::var("PGDECK_TEST_HOMES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2usize)
            .max(1);
        let (count, freed) = &HOMES;
        let mut taken = count.lock().unwrap_or_else(|e| e.into_inner());
        while *taken >= most {
            taken = freed.wait(taken).unwrap_or_else(|e| e.into_inner());
        }
        *taken += 1;
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let (count, freed) = &HOMES;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

pub struct LocalHome {
    path: PathBuf,
    _turn: Turn,
}

impl LocalHome {
    pub fn new() -> LocalHome {
        LocalHome::named("pgdeck-test-")
    }

    /// A home whose directory name starts with `prefix` (a benchmark's, apart from tests').
    pub fn named(prefix: &str) -> LocalHome {
        let turn = Turn::take();
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .unwrap();
        let path = dir.keep();
        // The postgres account must be able to enter the home.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        LocalHome { path, _turn: turn }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The client port of the home's etcd.
    pub fn etcd_port(&self) -> u16 {
        let ep: serde_json::Value =
            serde_json::from_str(&super::read(&self.path.join("etcd/endpoint.json"))).unwrap();
        ep["client_port"].as_u64().unwrap() as u16
    }

    /// A token of etcd's root user, pgdeck's own.
    pub fn etcd_root_token(&self) -> String {
        let root = super::read(&self.path.join("etcd/root.password"));
        let body = serde_json::json!({ "name": "root", "password": root.trim() });
        let reply = etcd(self.etcd_port(), "/v3/auth/authenticate", &body, None);
        reply["token"].as_str().unwrap().to_string()
    }

    pub fn command(&self) -> Command {
        let mut c = super::pgdeck();
        c.env("PGDECK_HOME", &self.path)
            .env_remove("KUBECONFIG")
            .arg("--platform")
            .arg("local");
        c
    }

    /// Run pgdeck with `args`; panics with its output when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pgdeck {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    pub fn apply_text(&self, manifest: &str, extra: &[&str]) -> Output {
        let file = self.path.join(format!("manifest-{}.yaml", rand_suffix()));
        std::fs::write(&file, manifest).unwrap();
        let mut args = vec!["apply", "-f", file.to_str().unwrap()];
        args.extend(extra);
        self.run(&args)
    }

    /// `pgdeck apply --wait`: the manifest is applied and the cluster Ready within `timeout`,
    /// or the test fails with pgdeck's message.
    pub fn apply_ready(&self, manifest: &str, timeout: &str) {
        let out = self.apply_text(manifest, &["--wait", "--timeout", timeout]);
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The shell command that opens the console on this home.
    pub fn console_command(&self) -> String {
        format!(
            "PGDECK_HOME={} PGDECK_CONFIG_DIR={}/config {} --platform local",
            self.path.display(),
            self.path.display(),
            env!("CARGO_BIN_EXE_pgdeck")
        )
    }

    /// The events recorded for `cluster`, oldest first.
    pub fn events(&self, cluster: &str) -> Vec<serde_json::Value> {
        let file = format!("namespaces/default/{cluster}.events.jsonl");
        std::fs::read_to_string(self.path.join(file))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `pgdeck status NAME -o json`.
    pub fn status(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", name, "-o", "json"])).unwrap()
    }

    /// Poll the status until `done` holds, or panic after `timeout` showing the last status.
    pub fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let s = self.status(name);
            if done(&s) {
                return s;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; status:\n{}",
                    serde_json::to_string_pretty(&s).unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Wait until the cluster runs `n` ready instances with a primary.
    pub fn settle(&self, name: &str, n: usize, what: &str) -> serde_json::Value {
        self.wait_for(name, Duration::from_secs(180), what, |s| all_ready(s, n))
    }

    /// Wait until `n` instances are ready and a standby is synchronous: only then does Patroni
    /// promote a replica without losing a commit (without one it rightly promotes nobody).
    pub fn protected(&self, name: &str, n: usize) -> serde_json::Value {
        self.wait_for(
            name,
            Duration::from_secs(180),
            "a synchronous standby",
            |s| {
                all_ready(s, n)
                    && s["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "SynchronousReplication" && c["status"] == "True")
                    })
            },
        )
    }

    /// psql with a URI from `pgdeck uri`; returns its unaligned output.
    pub fn psql(&self, uri: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([uri.trim(), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// SQL as the superuser on the primary, through its socket (peer authentication as
    /// `postgres`).
    pub fn superuser(&self, cluster: &str, db: &str, sql: &str) -> String {
        self.try_superuser(cluster, db, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// [`Self::superuser`], or psql's error.
    pub fn try_superuser(&self, cluster: &str, db: &str, sql: &str) -> Result<String, String> {
        output_of(self.superuser_psql(cluster, db, sql)?)
    }

    /// psql running `sql` as the superuser on the primary, through its socket, not started.
    pub fn superuser_psql(&self, cluster: &str, db: &str, sql: &str) -> Result<Command, String> {
        let status = self.status(cluster);
        let primary = status["primary"].as_str().ok_or("no primary")?;
        self.psql_on(cluster, primary, db, sql)
    }

    /// SQL as the superuser on one instance, through its socket; psql's error when it fails.
    pub fn sql_on(
        &self,
        cluster: &str,
        instance: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        output_of(self.psql_on(cluster, instance, db, sql)?)
    }

    /// psql running `sql` as the superuser on one instance, through its socket, not started.
    pub fn psql_on(
        &self,
        cluster: &str,
        instance: &str,
        db: &str,
        sql: &str,
    ) -> Result<Command, String> {
        let status = self.status(cluster);
        let port = status["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == instance)
            .ok_or_else(|| format!("no instance {instance}"))?["port"]
            .to_string();
        let socket = InstanceDir(
            self.path()
                .join("namespaces/default")
                .join(cluster)
                .join("instances")
                .join(instance),
        )
        .socket_dir();
        let mut psql = Command::new("runuser");
        psql.args(["-u", "postgres", "--", "psql", "-h"])
            .arg(&socket)
            .args([
                "-p",
                &port,
                "-d",
                db,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ]);
        Ok(psql)
    }

    /// Processes this home started.
    pub fn processes(&self) -> Vec<u32> {
        let needle = format!("PGDECK_HOME={}", self.path.display());
        let home = self.path.display().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| *pid != std::process::id())
            .filter(|pid| {
                let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                env.split(|b| *b == 0).any(|v| v == needle.as_bytes())
                    || String::from_utf8_lossy(&cmd).contains(&home)
            })
            .collect()
    }

    /// Pids of processes whose command line contains all of `parts`.
    pub fn pids_matching(&self, parts: &[&str]) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|pid| {
                let cmd = String::from_utf8_lossy(
                    &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(),
                )
                .replace('\0', " ");
                parts.iter().all(|p| cmd.contains(p))
            })
            .collect()
    }

    /// The instance's PostgreSQL processes: the postmaster (from its pid file) and its
    /// children.
    pub fn postgres_pids(&self, cluster: &str, instance: &str) -> Vec<i32> {
        let pid_file = self
            .path
            .join("namespaces/default")
            .join(cluster)
            .join("instances")
            .join(instance)
            .join("data/postmaster.pid");
        let Some(postmaster) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
        else {
            return Vec::new();
        };
        let parent = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()?
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<i32>()
                .ok()
        };
        let children = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| parent(*pid) == Some(postmaster));
        std::iter::once(postmaster).chain(children).collect()
    }

    /// The instance's Patroni.
    pub fn patroni_pids(&self, cluster: &str, instance: &str) -> Vec<i32> {
        let dir = format!("/{cluster}/instances/{instance}/");
        self.pids_matching(&["patroni", &dir])
            .into_iter()
            .map(|p| p as i32)
            .collect()
    }

    pub fn kill_operator(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.path.join("operator.lock")) {
            // A benchmark may hold the lock itself, to keep any reconciler out of its home.
            if let Ok(pid) = pid.trim().parse::<i32>()
                && pid as u32 != std::process::id()
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The name of an instance that is not the primary.
pub fn a_replica(status: &serde_json::Value) -> String {
    let primary = status["primary"].as_str().unwrap_or_default();
    status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .find(|n| n != primary)
        .expect("a replica")
}

/// `n` instances, every one ready, and a primary.
pub fn all_ready(status: &serde_json::Value, n: usize) -> bool {
    let list = status["instances"].as_array().cloned().unwrap_or_default();
    list.len() == n && list.iter().all(|i| i["ready"] == true) && status["primary"].is_string()
}

/// Processes stopped with SIGSTOP, continued when this goes: a test that fails while they are
/// frozen must not leave them behind (a stopped process never notices its postmaster died).
pub struct Frozen(Vec<i32>);

impl Frozen {
    pub fn freeze(pids: Vec<i32>) -> Frozen {
        signal(&pids, Signal::SIGSTOP);
        Frozen(pids)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(&self.0, Signal::SIGCONT);
    }
}

pub fn signal(pids: &[i32], sig: Signal) {
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), sig);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

impl Drop for LocalHome {
    fn drop(&mut self) {
        // The reconciler first, so it does not restart what we stop; then everything else,
        // until nothing of this home runs.
        self.kill_operator();
        for _ in 0..50 {
            let pids = self.processes();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if std::env::var_os("PGDECK_KEEP_TEST_HOME").is_none() {
            // Instances' and poolers' socket directories live outside the home, under /run.
            let children = |dir: &Path| -> Vec<PathBuf> {
                std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .collect()
            };
            for ns in children(&self.path.join("namespaces")) {
                for cluster in children(&ns) {
                    for kind in ["instances", "pgbouncer"] {
                        for dir in children(&cluster.join(kind)) {
                            let _ = InstanceDir(dir).remove_socket_dir();
                        }
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

const VOLUME: &str = "{accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}";

/// A cluster of one instance set with a volume repository; the extras are YAML lines added to
/// the instance set, to the spec and to the repository.
pub fn manifest(
    name: &str,
    replicas: u32,
    instance_extra: &str,
    spec_extra: &str,
    repo_extra: &str,
) -> String {
    format!(
        "apiVersion: pgdeck.dev/v1beta1
kind: PostgresCluster
metadata:
  name: {name}
spec:
  postgresVersion: 15
  instances:
    - name: instance1
      replicas: {replicas}
      dataVolumeClaimSpec: {VOLUME}
{instance_extra}{spec_extra}  backups:
    pgbackrest:
      repos:
        - name: repo1
          volume: {{volumeClaimSpec: {VOLUME}}}
{repo_extra}"
    )
}

/// etcd's JSON gateway, with a token when given.
pub fn etcd(
    port: u16,
    path: &str,
    body: &serde_json::Value,
    token: Option<&str>,
) -> serde_json::Value {
    let mut c = Command::new("curl");
    c.args(["-s", "-m", "10", "-X", "POST"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .args(["-d", &body.to_string()]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: {t}")]);
    }
    serde_json::from_slice(&c.output().unwrap().stdout).unwrap()
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// What `psql` printed, trimmed, or its error.
fn output_of(mut psql: Command) -> Result<String, String> {
    let out = psql.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8(out.stdout).unwrap().trim().to_string())
}
