//! The stand-in kubelet's port-forward (`pods/<pod>/portforward`): what the API server hands a
//! websocket upgrade to, speaking Kubernetes' channel protocol (`v4.channel.k8s.io`: per port a
//! data channel 0 and an error channel 1, each opened by a frame carrying the port as two bytes
//! little-endian, every binary frame led by its channel byte) and connecting the data channel to
//! a real server on this machine, as the kubelet connects to the pod's port.
//!
//! The upgrade is a real HTTP/1 upgrade over a loopback connection, so the response the
//! in-memory API server returns carries hyper's pending upgrade, as a real one's does.

use std::net::SocketAddr;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

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
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let kubelet = listener.local_addr()?;
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let service = hyper::service::service_fn(move |req| upgrade(req, expected, server));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    });
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(TcpStream::connect(kubelet).await?))
            .await?;
    tokio::spawn(connection.with_upgrades());
    let (parts, _) = req.into_parts();
    let forwarded = http::Request::from_parts(parts, Empty::<Bytes>::new());
    let response = sender.send_request(forwarded).await?;
    Ok(response.map(|b| b.map_err(Into::into).boxed_unsync()))
}

/// The kubelet's side of the handshake: switch to the channel protocol, then serve it.
async fn upgrade(
    mut req: http::Request<hyper::body::Incoming>,
    expected: u16,
    server: Option<SocketAddr>,
) -> Result<http::Response<Empty<Bytes>>, BoxError> {
    let asked = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    if !asked("sec-websocket-protocol")
        .split(',')
        .any(|p| p.trim() == PROTOCOL)
    {
        return Ok(http::Response::builder().status(400).body(Empty::new())?);
    }
    let accept = derive_accept_key(asked("sec-websocket-key").as_bytes());
    let port: u16 = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("ports=")))
        .and_then(|p| p.parse().ok())
        .ok_or("no port asked")?;
    let pending = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = pending.await {
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            carry(ws, port, server.filter(|_| port == expected)).await;
        }
    });
    Ok(http::Response::builder()
        .status(101)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", PROTOCOL)
        .body(Empty::new())?)
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(data);
    Message::binary(bytes)
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
