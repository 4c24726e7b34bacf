//! PostgreSQL's Unix socket in an instance pod's `database` container, reached through the API
//! server's `pods/exec` as Crunchy PGO's own tooling reaches it: the container runs as the
//! `postgres` account, with the socket's directory in `PGHOST` and its port in `PGPORT`, and
//! PGO's pg_hba lets `postgres` in by peer on that socket. So no password is needed, only the
//! caller's permission to exec (RBAC verb `create` on `pods/exec`).
//!
//! Each connection execs [`BRIDGE`], a fixed Python program (Patroni is Python, so every PGO
//! database image has `python3`) joining its stdin and stdout to the socket; PostgreSQL's
//! protocol runs over the exec's stream. Closing the connection closes stdin, which ends the
//! bridge.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::{AttachParams, AttachedProcess};
use kube::client::UpgradeConnectionError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use super::names;
use crate::api::users::SUPERUSER;
use crate::observe::connection::{self, Endpoint, Tunnel};

/// The container PostgreSQL runs in, in PGO's instance pods.
pub const CONTAINER: &str = "database";

/// The program exec'd: constant text, nothing from the API in it. The socket is
/// `$PGHOST/.s.PGSQL.$PGPORT` of the container's environment, PGO's defaults when unset.
pub const BRIDGE: &str = r#"import os, socket, sys, threading
d = os.environ.get("PGHOST", "")
d = d if d.startswith("/") else "/tmp/postgres"
path = os.path.join(d, ".s.PGSQL." + (os.environ.get("PGPORT") or "5432"))
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(path)
except OSError as e:
    sys.stderr.write("no PostgreSQL socket at %s: %s\n" % (path, e.strerror))
    sys.exit(2)
def up():
    while True:
        b = os.read(0, 65536)
        if not b:
            break
        s.sendall(b)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
out = sys.stdout.buffer
while True:
    b = s.recv(65536)
    if not b:
        break
    out.write(b)
    out.flush()
"#;

/// How long the API server and the pod get to start the bridge and PostgreSQL to sign in.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// How long a bridge that ended gets to say why (its exit status, its stderr).
const SAID_WITHIN: Duration = Duration::from_secs(1);

/// How much of the bridge's stderr is kept to explain a failure.
const STDERR_KEPT: usize = 2048;

/// The `database` container of one pod, whose PostgreSQL is reached through its socket.
#[derive(Clone)]
pub struct PodSocket {
    pods: Api<Pod>,
    namespace: String,
    pod: String,
}

impl PodSocket {
    /// The `database` container of `instance`'s pod in `namespace`. The name comes from a
    /// pod's label, which more than the operator may write: it goes into a URL path only as a
    /// DNS label.
    pub fn new(
        client: &kube::Client,
        namespace: &str,
        instance: &str,
    ) -> Result<PodSocket, String> {
        crate::api::validate::dns_label(instance).map_err(|e| format!("instance {e}"))?;
        Ok(PodSocket {
            pods: Api::namespaced(client.clone(), namespace),
            namespace: namespace.to_string(),
            pod: names::pod(instance),
        })
    }

    /// The console's connection to its PostgreSQL, as the superuser to the `postgres`
    /// database; psql's own connections each open a [`Bridge`] instead (see
    /// [`super::pod_socket_listener`]).
    pub fn endpoint(self) -> Endpoint {
        Endpoint::tunnelled(Arc::new(self), SUPERUSER, "postgres")
    }

    /// Exec [`BRIDGE`]: PostgreSQL's socket as a byte stream, and the exec it runs in.
    pub async fn bridge(&self) -> Result<Bridge, String> {
        let (ns, pod) = (&self.namespace, &self.pod);
        let params = AttachParams::default()
            .container(CONTAINER)
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .max_stdin_buf_size(64 * 1024)
            .max_stdout_buf_size(64 * 1024);
        let command = ["python3", "-I", "-c", BRIDGE];
        let mut process = self
            .pods
            .exec(pod, command, &params)
            .await
            .map_err(|e| refused(ns, pod, e))?;
        let (Some(stdin), Some(stdout), Some(mut stderr), Some(status)) = (
            process.stdin(),
            process.stdout(),
            process.stderr(),
            process.take_status(),
        ) else {
            return Err(format!("exec into pod {ns}/{pod}: no stream"));
        };
        // Read all along, so that a talkative bridge never stalls the stream; the start kept.
        let stderr = tokio::spawn(async move {
            let (mut kept, mut buf) = (Vec::new(), [0; 1024]);
            while let Ok(n @ 1..) = stderr.read(&mut buf).await {
                let room = STDERR_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            String::from_utf8_lossy(&kept).trim().to_string()
        });
        let stream: Stream = tokio::io::join(Box::new(stdout), Box::new(stdin));
        Ok(Bridge {
            stream,
            exec: Exec {
                process,
                stderr,
                status: status.boxed(),
                namespace: ns.clone(),
                pod: pod.clone(),
            },
        })
    }

    async fn open(&self, config: tokio_postgres::Config) -> Result<Client, String> {
        let Bridge { stream, exec } = self.bridge().await?;
        match config.connect_raw(stream, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection.then(|_| exec.ended()));
                Ok(client)
            }
            Err(e) if e.as_db_error().is_some() => Err(format!(
                "PostgreSQL in pod {}/{}: {}",
                self.namespace,
                self.pod,
                connection::said(e)
            )),
            Err(e) => Err(exec.failed(&e.to_string()).await),
        }
    }
}

/// The bridge's stdout and stdin, joined.
pub type Stream =
    tokio::io::Join<Box<dyn AsyncRead + Send + Unpin>, Box<dyn AsyncWrite + Send + Unpin>>;

/// One exec of [`BRIDGE`]: bytes written to `stream` reach PostgreSQL's socket, its answers
/// come back. `exec` must be kept while the stream is used: dropping it ends the exec.
pub struct Bridge {
    pub stream: Stream,
    pub exec: Exec,
}

/// The exec a [`Bridge`] runs in.
pub struct Exec {
    process: AttachedProcess,
    stderr: JoinHandle<String>,
    status: BoxFuture<'static, Option<Status>>,
    namespace: String,
    pod: String,
}

impl Exec {
    /// After the connection: the bridge is left to end (its stdin closed) and its exec with
    /// it, or is cut off.
    pub async fn ended(self) {
        let _ = tokio::time::timeout(SAID_WITHIN, self.process.join()).await;
    }

    /// Why the bridge ended before PostgreSQL answered (`error`), as far as the exec said.
    pub async fn failed(self, error: &str) -> String {
        let status = tokio::time::timeout(SAID_WITHIN, self.status)
            .await
            .ok()
            .flatten();
        let stderr = tokio::time::timeout(SAID_WITHIN, self.stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        bridge_failed(&self.namespace, &self.pod, error, status, &stderr)
    }
}

impl Tunnel for PodSocket {
    fn connect(&self, config: tokio_postgres::Config) -> BoxFuture<'_, Result<Client, String>> {
        async move {
            tokio::time::timeout(CONNECT_WITHIN, self.open(config))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "exec into pod {}/{}: PostgreSQL did not answer within {}s",
                        self.namespace,
                        self.pod,
                        CONNECT_WITHIN.as_secs()
                    ))
                })
        }
        .boxed()
    }
}

/// An exec the API server refused, saying what would let it through. The refusal comes as
/// the upgrade's status alone: the API server's words are not read.
fn refused(ns: &str, pod: &str, e: kube::Error) -> String {
    let forbidden = match &e {
        kube::Error::UpgradeConnection(UpgradeConnectionError::ProtocolSwitch(code)) => {
            *code == http::StatusCode::FORBIDDEN
        }
        kube::Error::Api(status) => status.code == 403,
        _ => false,
    };
    if forbidden {
        return format!(
            "cannot exec into pod {ns}/{pod}: forbidden: reaching PGO's PostgreSQL as \
             `postgres` without its superuser's Secret needs RBAC verb `create` on \
             `pods/exec` in namespace {ns}"
        );
    }
    format!("cannot exec into pod {ns}/{pod}: {e}")
}

/// A bridge that ended before PostgreSQL answered: why, as far as the exec said.
fn bridge_failed(ns: &str, pod: &str, error: &str, status: Option<Status>, stderr: &str) -> String {
    let exit = status.as_ref().and_then(exit_code);
    let message = status.and_then(|s| s.message).unwrap_or_default();
    let where_ = format!("pod {ns}/{pod}, container {CONTAINER}");
    // 127: the shell's and runc's word for a program not found.
    if exit == Some(127) || message.contains("executable file not found") {
        return format!(
            "{where_} has no python3, which pgdeck runs there to reach PostgreSQL's socket \
             ({})",
            first_of(&[stderr, &message, error])
        );
    }
    format!("{where_}: {}", first_of(&[stderr, &message, error]))
}

/// The exit code a failed exec's status gives (`details.causes[reason=ExitCode]`).
fn exit_code(status: &Status) -> Option<i32> {
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))?
        .message
        .as_ref()?
        .parse()
        .ok()
}

fn first_of<'a>(said: &[&'a str]) -> &'a str {
    said.iter().find(|s| !s.is_empty()).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    fn exited(code: &str, message: &str) -> Status {
        Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            message: Some(message.into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some(code.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_python_is_named_whichever_way_the_runtime_says_it() {
        let by_code = bridge_failed(
            "db",
            "zoo-0",
            "connection closed",
            Some(exited("127", "command terminated with non-zero exit code")),
            "",
        );
        assert!(by_code.starts_with("pod db/zoo-0, container database has no python3"));
        let by_runc = bridge_failed(
            "db",
            "zoo-0",
            "connection closed",
            Some(Status {
                message: Some("exec: \"python3\": executable file not found in $PATH".into()),
                ..Default::default()
            }),
            "",
        );
        assert!(by_runc.contains("has no python3"), "{by_runc}");
        assert!(by_runc.contains("executable file not found"), "{by_runc}");
    }

    #[test]
    fn the_bridges_own_words_come_first() {
        let said = bridge_failed(
            "db",
            "zoo-0",
            "connection closed",
            Some(exited("2", "command terminated with non-zero exit code")),
            "no PostgreSQL socket at /tmp/postgres/.s.PGSQL.5432: No such file or directory",
        );
        assert_eq!(
            said,
            "pod db/zoo-0, container database: no PostgreSQL socket at \
             /tmp/postgres/.s.PGSQL.5432: No such file or directory"
        );
        let bare = bridge_failed("db", "zoo-0", "connection closed", None, "");
        assert_eq!(bare, "pod db/zoo-0, container database: connection closed");
    }
}
