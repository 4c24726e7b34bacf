//! The stand-in kubelet's exec (`pods/<pod>/exec`): what the API server hands a websocket
//! upgrade to, speaking Kubernetes' remote command protocol (`v5.channel.k8s.io` or
//! `v4.channel.k8s.io`: channel 0 stdin, 1 stdout, 2 stderr, 3 the exit as a `Status`; v5
//! closes stdin with a frame `[255, 0]`). It runs the command the client sent, unchanged, on
//! this machine as a PGO `database` container runs it: as the `postgres` account (runuser),
//! with PGO's environment (`PGHOST` the socket directory of the pod's real PostgreSQL,
//! `PGPORT` its port) and a container's `PATH`. As the runtime does, a program not on that
//! `PATH` is never started and the exec fails saying so.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::websocket::{self, Socket, frame};
use super::{BoxError, Reply};

const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// A container's `PATH`.
pub const CONTAINER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A pod's `database` container as the stand-in kubelet runs commands in it.
#[derive(Clone, Debug)]
pub struct PodShell {
    /// Where the pod's PostgreSQL has its socket (`PGHOST`), and its port (`PGPORT`).
    pub socket_dir: PathBuf,
    pub port: u16,
    /// The container's `PATH` ([`CONTAINER_PATH`] for an image with Python).
    pub path: String,
}

/// `(namespace, pod)` of `/api/v1/namespaces/NS/pods/POD/exec`.
pub fn target(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once("/pods/")?;
    let pod = rest.strip_suffix("/exec")?;
    Some((ns.to_string(), pod.to_string()))
}

/// What an exec asks for, from its query.
#[derive(Debug, Default)]
pub struct Asked {
    pub command: Vec<String>,
    pub container: Option<String>,
    stdin: bool,
}

impl Asked {
    pub fn from_query(query: &str) -> Asked {
        let mut asked = Asked::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = value.replace('+', " ");
            let value = percent_encoding::percent_decode_str(&value)
                .decode_utf8_lossy()
                .into_owned();
            match key {
                "command" => asked.command.push(value),
                "container" => asked.container = Some(value),
                "stdin" => asked.stdin = value == "true",
                _ => {}
            }
        }
        asked
    }
}

/// Answer an exec into a pod whose container is `shell`: upgrade, run, carry the streams.
pub async fn answer(
    req: http::Request<kube::client::Body>,
    shell: PodShell,
) -> Result<http::Response<Reply>, BoxError> {
    let asked = Asked::from_query(req.uri().query().unwrap_or_default());
    websocket::answer(req, PROTOCOLS, move |ws, protocol| {
        run(ws, protocol, shell, asked)
    })
    .await
}

/// The runtime's words for a program it cannot find.
fn not_found(program: &str) -> String {
    format!(
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \
         \"{program}\": executable file not found in $PATH: unknown"
    )
}

fn on_path(program: &str, path: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    path.split(':')
        .any(|dir| Path::new(dir).join(program).is_file())
}

async fn run(ws: Socket, protocol: &str, shell: PodShell, asked: Asked) {
    let (mut sink, mut from_client) = ws.split();
    let program = asked.command.first().cloned().unwrap_or_default();
    if !on_path(&program, &shell.path) {
        let status = serde_json::json!({"metadata": {}, "status": "Failure",
                                        "message": not_found(&program), "reason": "InternalError",
                                        "code": 500});
        let _ = sink.send(frame(3, status.to_string().as_bytes())).await;
        let _ = sink.send(Message::Close(None)).await;
        return;
    }
    let spawned = tokio::process::Command::new("/usr/sbin/runuser")
        .env_clear()
        .env("PATH", &shell.path)
        .env("PGHOST", &shell.socket_dir)
        .env("PGPORT", shell.port.to_string())
        .args(["-u", "postgres", "--"])
        .args(&asked.command)
        .stdin(if asked.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let status = serde_json::json!({"metadata": {}, "status": "Failure",
                                            "message": e.to_string(), "code": 500});
            let _ = sink.send(frame(3, status.to_string().as_bytes())).await;
            return;
        }
    };
    let mut stdin = child.stdin.take();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let closes = protocol.starts_with("v5");
    // The client's frames to stdin, until it closes stdin or the stream.
    let feed = async {
        while let Some(Ok(message)) = from_client.next().await {
            match message {
                Message::Binary(bytes) => match (bytes.first(), bytes.get(1)) {
                    (Some(0), _) => {
                        if let Some(s) = stdin.as_mut()
                            && s.write_all(&bytes[1..]).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    (Some(255), Some(0)) if closes => stdin = None,
                    _ => {}
                },
                Message::Close(_) => break,
                _ => {}
            }
        }
        // The stream gone: as the kubelet does, the process's stdin is closed.
        drop(stdin.take());
        std::future::pending::<()>().await
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(16);
    let pump = |mut from: Box<dyn tokio::io::AsyncRead + Unpin + Send>, channel: u8| {
        let tx = tx.clone();
        async move {
            let mut buf = vec![0; 16 * 1024];
            while let Ok(n @ 1..) = from.read(&mut buf).await {
                if tx.send(frame(channel, &buf[..n])).await.is_err() {
                    break;
                }
            }
        }
    };
    let out = pump(Box::new(stdout), 1);
    let err = pump(Box::new(stderr), 2);
    drop(tx);
    let send = async {
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    };
    let ran = async {
        tokio::join!(out, err, send);
        child.wait().await
    };
    let exit = tokio::select! {
        exit = ran => exit,
        _ = feed => unreachable!("feeding never ends by itself"),
    };
    let status = match exit.ok().and_then(|e| e.code()) {
        Some(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        code => {
            let code = code.unwrap_or(-1);
            serde_json::json!({"metadata": {}, "status": "Failure",
                "message": format!("command terminated with non-zero exit code: error executing command {:?}, exit code {code}", asked.command),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
        }
    };
    let _ = sink.send(frame(3, status.to_string().as_bytes())).await;
    let _ = sink.send(Message::Close(None)).await;
}
