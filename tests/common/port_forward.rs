//! The stand-in kubelet's port-forward (`pods/<pod>/portforward`): what the API server hands a
//! websocket upgrade to, speaking Kubernetes' channel protocol (`v4.channel.k8s.io`: per port a
//! data channel 0 and an error channel 1, each opened by a frame carrying the port as two bytes
//! little-endian, every binary frame led by its channel byte) and connecting the data channel to
//! a real server on this machine, as the kubelet connects to the pod's port.

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::websocket::{self, frame};
use super::{BoxError, Reply};

const PROTOCOL: &str = "v4.channel.k8s.io";

/// `(namespace, pod)` of `/api/v1/namespaces/NS/pods/POD/portforward`.
pub fn target(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once("/pods/")?;
    let pod = rest.strip_suffix("/portforward")?;
    Some((ns.to_string(), pod.to_string()))
}

/// Answer a port-forward request to a pod whose port `expected` is served at `server` (none:
/// nothing listens): upgrade to a websocket and carry the bytes, or say on the error channel
/// why not.
pub async fn answer(
    req: http::Request<kube::client::Body>,
    expected: u16,
    server: Option<SocketAddr>,
) -> Result<http::Response<Reply>, BoxError> {
    let port: u16 = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("ports=")))
        .and_then(|p| p.parse().ok())
        .ok_or("no port asked")?;
    let server = server.filter(|_| port == expected);
    websocket::answer(req, &[PROTOCOL], move |ws, _| carry(ws, port, server)).await
}

/// Open both channels, then carry bytes between the data channel and `server` (none: nothing
/// listens on the pod's port) until either side closes.
async fn carry<S>(ws: WebSocketStream<S>, port: u16, server: Option<SocketAddr>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    for channel in [0, 1] {
        if sink
            .send(frame(channel, &port.to_le_bytes()))
            .await
            .is_err()
        {
            return;
        }
    }
    let connected = match server {
        Some(address) => TcpStream::connect(address).await.map_err(|e| e.to_string()),
        None => Err("connection refused".into()),
    };
    let tcp = match connected {
        Ok(tcp) => tcp,
        Err(e) => {
            // As the kubelet words it.
            let message = format!("error forwarding port {port} to pod: {e}");
            let _ = sink.send(frame(1, message.as_bytes())).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    let (mut from_server, mut to_server) = tcp.into_split();
    let up = async {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Binary(bytes)
                    if bytes.first() == Some(&0)
                        && to_server.write_all(&bytes[1..]).await.is_err() =>
                {
                    break;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_server.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0; 16 * 1024];
        while let Ok(n) = from_server.read(&mut buf).await {
            if n == 0 || sink.send(frame(0, &buf[..n])).await.is_err() {
                break;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    // Either side closing ends the stream, as the kubelet does.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
