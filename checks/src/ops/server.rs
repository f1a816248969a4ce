//! The HTTP server behind `/healthz` and `/metrics` (hyper, HTTP/1.1, loopback or any address).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What a binary exposes to operators.
pub trait OpsState: Send + Sync + 'static {
    /// `Ok` when ready to do its job (connected to what it needs), else why not.
    fn ready(&self) -> Result<(), String>;
    /// The Prometheus text exposition.
    fn metrics(&self) -> String;
}

fn respond(state: &dyn OpsState, path: &str) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match path {
        "/healthz" => match state.ready() {
            Ok(()) => (StatusCode::OK, "text/plain", "ok\n".to_string()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        "/metrics" => (StatusCode::OK, "text/plain; version=0.0.4", state.metrics()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /healthz or /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}

/// Serves `/healthz` and `/metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<dyn OpsState>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "ops endpoint: accept failed");
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let response = respond(state.as_ref(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "ops endpoint: connection error");
            }
        });
    }
}
