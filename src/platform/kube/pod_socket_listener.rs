//! A local stand-in for an instance pod's PostgreSQL socket, for psql, an external program
//! that cannot speak through `pods/exec` itself: a Unix socket `.s.PGSQL.<port>` in a private
//! directory (mode 0700: only this account may connect), each connection to it relayed through
//! an exec bridge of its own ([`PodSocket::bridge`]). psql signs in as `postgres` by peer at the
//! far end; the bytes travel over the API server's TLS. Dropping the [`PodSocketListener`]
//! closes the socket and every connection through it, and removes the directory.

use std::os::unix::fs::PermissionsExt;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};

use super::pod_socket::{Bridge, PodSocket};

/// The longest startup message read before refusing a connection (PostgreSQL's own limit).
const STARTUP_MAX: usize = 10_000;

pub struct PodSocketListener {
    task: JoinHandle<()>,
    /// Removed on drop, after the task is stopped.
    dir: tempfile::TempDir,
}

impl PodSocketListener {
    /// Listen on `.s.PGSQL.<port>` in a new private directory for `socket`'s PostgreSQL.
    pub fn open(socket: PodSocket, port: u16) -> Result<PodSocketListener, String> {
        let dir = tempfile::Builder::new()
            .prefix("pgdeck-psql-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|e| format!("cannot create a private directory for psql's socket: {e}"))?;
        let path = dir.path().join(format!(".s.PGSQL.{port}"));
        let listener = UnixListener::bind(&path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        let task = tokio::spawn(async move {
            // Dropped with the task: every connection ends with the listener.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(relay(socket.clone(), client));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(PodSocketListener { task, dir })
    }

    /// The directory the socket is in, absolute and in text: psql's host.
    pub fn host(&self) -> Result<String, String> {
        let dir = self.dir.path();
        std::path::absolute(dir)
            .map_err(|e| format!("psql's socket directory {}: {e}", dir.display()))?
            .into_os_string()
            .into_string()
            .map_err(|p| format!("psql's socket directory {} is not UTF-8", p.display()))
    }
}

impl Drop for PodSocketListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Carry one connection's bytes to and from its own bridge until both sides are done; when no
/// bridge opens, tell psql why, as PostgreSQL would.
async fn relay(socket: PodSocket, mut client: UnixStream) {
    match socket.bridge().await {
        Ok(Bridge { mut stream, exec }) => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut stream).await;
            drop(stream);
            exec.ended().await;
        }
        Err(why) => refuse(&mut client, &why).await,
    }
}

/// Answer psql's startup message with a FATAL ErrorResponse carrying `why`, so psql prints it.
async fn refuse(client: &mut UnixStream, why: &str) {
    let mut length = [0; 4];
    if client.read_exact(&mut length).await.is_err() {
        return;
    }
    let length = u32::from_be_bytes(length) as usize;
    if !(8..=STARTUP_MAX).contains(&length) {
        return;
    }
    let mut startup = vec![0; length - 4];
    if client.read_exact(&mut startup).await.is_err() {
        return;
    }
    let _ = client.write_all(&error_response(why)).await;
    let _ = client.shutdown().await;
}

/// PostgreSQL's ErrorResponse message: FATAL, connection failure (08006), `message`.
fn error_response(message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (code, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "08006"),
        (b'M', message),
    ] {
        fields.push(code);
        // A NUL would end the field early: none in what is said.
        fields.extend(value.bytes().filter(|b| *b != 0));
        fields.push(0);
    }
    fields.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&fields);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_an_error_response_psql_can_read() {
        let out = error_response("no\0 exec");
        assert_eq!(out[0], b'E');
        let length = u32::from_be_bytes(out[1..5].try_into().unwrap()) as usize;
        assert_eq!(length, out.len() - 1);
        assert_eq!(
            &out[5..],
            b"SFATAL\0VFATAL\0C08006\0Mno exec\0\0".as_slice()
        );
    }
}
