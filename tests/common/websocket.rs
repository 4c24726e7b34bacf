//! The stand-in kubelet's end of a connect subresource's websocket (`pods/<pod>/portforward`,
//! `pods/<pod>/exec`): the API server hands the upgrade on to it, and it serves Kubernetes'
//! channel protocol, every binary frame led by its channel byte.
//!
//! The upgrade is a real HTTP/1 upgrade over a loopback connection, so the response the
//! in-memory API server returns carries hyper's pending upgrade, as a real one's does.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{BoxError, Reply};

pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Upgrade `req` to a websocket in the first of `protocols` (in the kubelet's order of
/// preference) that the client offers, and have `serve` serve it with the protocol chosen; a
/// client offering none of them gets 400.
pub async fn answer<F, Fut>(
    req: http::Request<kube::client::Body>,
    protocols: &'static [&'static str],
    serve: F,
) -> Result<http::Response<Reply>, BoxError>
where
    F: FnOnce(Socket, &'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let kubelet = listener.local_addr()?;
    // One request on the loopback connection: the one handed on.
    let serve = Arc::new(Mutex::new(Some(serve)));
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let service = hyper::service::service_fn(move |req| {
            let serve = serve.lock().unwrap().take();
            upgrade(req, protocols, serve)
        });
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

/// The kubelet's side of the handshake: switch to the protocol, then serve it.
async fn upgrade<F, Fut>(
    mut req: http::Request<hyper::body::Incoming>,
    protocols: &'static [&'static str],
    serve: Option<F>,
) -> Result<http::Response<Empty<Bytes>>, BoxError>
where
    F: FnOnce(Socket, &'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let asked = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let offered = asked("sec-websocket-protocol");
    let chosen = protocols
        .iter()
        .find(|p| offered.split(',').any(|o| o.trim() == **p));
    let (Some(&protocol), Some(serve)) = (chosen, serve) else {
        return Ok(http::Response::builder().status(400).body(Empty::new())?);
    };
    let accept = derive_accept_key(asked("sec-websocket-key").as_bytes());
    let pending = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = pending.await {
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            serve(ws, protocol).await;
        }
    });
    Ok(http::Response::builder()
        .status(101)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", protocol)
        .body(Empty::new())?)
}

/// A binary frame on `channel`.
pub fn frame(channel: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(data);
    Message::binary(bytes)
}
