//! The reconcilers' own HTTP endpoints, the same on both platforms: `/metrics` (Prometheus'
//! text exposition), `/healthz` (the process serves) and `/readyz` (it can do its work).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What a reconciler exposes.
pub trait Exposed: Send + Sync + 'static {
    /// The metrics in the text exposition format (OpenMetrics, which Prometheus reads). It may
    /// read files: it runs off the server's tasks.
    fn text(&self) -> String;
    /// Whether it can do its work, or why not.
    fn ready(&self) -> Result<(), String>;
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `listener` until the task is dropped.
pub async fn serve<E: Exposed>(listener: TcpListener, exposed: Arc<E>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let exposed = exposed.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let exposed = exposed.clone();
                async move { Ok::<_, Infallible>(respond(&req, exposed).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond<E: Exposed>(req: &Request<Incoming>, exposed: Arc<E>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => match tokio::task::spawn_blocking(move || exposed.text()).await {
            Ok(text) => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "collecting the metrics failed\n".into(),
            ),
        },
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" => match exposed.ready() {
            Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_string()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}
