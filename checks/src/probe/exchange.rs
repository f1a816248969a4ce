//! One HTTP/1.1 request/response over a connection opened for it: request
//! building (Host, User-Agent, Connection: close, the site's headers), the
//! hyper handshake, time to first byte, and reading the body up to a cap.

use std::error::Error as StdError;
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use url::Url;

use super::connect::BoxIo;
use super::trace::{ms, Phase, Trace};
use crate::causes::chain;
use crate::schema::{CheckError, ErrorKind, HttpInfo};

/// `User-Agent` sent with every check.
pub const USER_AGENT_VALUE: &str = concat!("sitewatch/", env!("CARGO_PKG_VERSION"));

/// Aborts the spawned connection driver when the exchange is done or dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A received response head with its unread body.
pub(crate) struct Exchange {
    /// Status, version and headers.
    pub(crate) head: http::response::Parts,
    body: Incoming,
    _conn: AbortOnDrop,
}

/// The body as read.
pub(crate) struct Body {
    /// At most the cap.
    pub(crate) bytes: Vec<u8>,
    /// More was available than the cap.
    pub(crate) truncated: bool,
}

fn fail(kind: ErrorKind, message: impl Into<String>) -> CheckError {
    CheckError {
        kind,
        message: message.into(),
    }
}

fn io_kind(e: &(dyn StdError + 'static)) -> Option<std::io::ErrorKind> {
    let mut src: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        src = s.source();
    }
    None
}

/// Builds the request for `url` (origin-form target).
pub(crate) fn build_request(
    url: &Url,
    method: &Method,
    headers: &HeaderMap,
    body: Option<Bytes>,
) -> Result<Request<Full<Bytes>>, CheckError> {
    let host = url.host_str().unwrap_or_default();
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let bad = |e: http::Error| {
        fail(
            ErrorKind::Connect,
            format!("cannot build the request for {url}: {e}"),
        )
    };
    let mut req = Request::builder()
        .method(method.clone())
        .uri(target)
        .body(Full::new(body.unwrap_or_default()))
        .map_err(bad)?;
    let h = req.headers_mut();
    h.insert(
        HOST,
        HeaderValue::from_str(&host).map_err(|e| bad(e.into()))?,
    );
    h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    // The site's headers override the defaults (all values of a repeated name kept).
    for name in headers.keys() {
        h.remove(name);
        for value in headers.get_all(name) {
            h.append(name.clone(), value.clone());
        }
    }
    Ok(req)
}

/// Sends `req` over `io` and waits for the response head, recording TTFB.
pub(crate) async fn send(
    io: BoxIo,
    req: Request<Full<Bytes>>,
    trace: &Trace,
) -> Result<Exchange, CheckError> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| {
            fail(
                ErrorKind::Connect,
                format!("HTTP handshake failed: {}", chain(&e)),
            )
        })?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        // Errors surface through the response future and body. The request said
        // `Connection: close`: once the response is read the socket is simply closed,
        // without a separate shutdown(2) first (the FIN goes out either way).
        let _ = conn.without_shutdown().await;
    }));

    trace.enter(Phase::WaitingHeaders);
    let t = Instant::now();
    let response = sender.send_request(req).await;
    trace.lock().timings.ttfb = Some(ms(t.elapsed()));
    let response = response.map_err(|e| head_error(&e))?;
    let (head, body) = response.into_parts();
    {
        let mut state = trace.lock();
        let redirects = state.redirects;
        state.http = Some(HttpInfo {
            status: head.status.as_u16(),
            version: format!("{:?}", head.version),
            body_bytes: 0,
            body_truncated: false,
            redirects,
        });
    }
    Ok(Exchange {
        head,
        body,
        _conn: conn,
    })
}

fn head_error(e: &hyper::Error) -> CheckError {
    use std::io::ErrorKind as Io;
    match io_kind(e) {
        Some(Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe) => fail(
            ErrorKind::Connect,
            format!("connection reset before the response headers: {}", chain(e)),
        ),
        _ if e.is_incomplete_message() => fail(
            ErrorKind::Body,
            "server closed the connection without sending a response",
        ),
        _ if e.is_parse() => fail(
            ErrorKind::Body,
            format!("invalid HTTP response: {}", chain(e)),
        ),
        _ => fail(ErrorKind::Body, format!("no response: {}", chain(e))),
    }
}

/// Reads the body, stopping once `cap` bytes are held (then `truncated` is set).
pub(crate) async fn read_body(ex: Exchange, cap: usize, trace: &Trace) -> Result<Body, CheckError> {
    trace.enter(Phase::ReadingBody);
    let Exchange {
        mut body, _conn, ..
    } = ex;
    let mut bytes = Vec::new();
    let mut truncated = false;
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                return Err(fail(
                    ErrorKind::Body,
                    format!(
                        "response body broke off after {} bytes: {}",
                        bytes.len(),
                        chain(&e)
                    ),
                ))
            }
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.is_empty() {
            continue;
        }
        let room = cap - bytes.len();
        if data.len() > room {
            bytes.extend_from_slice(&data[..room]);
            truncated = true;
        } else {
            bytes.extend_from_slice(&data);
        }
        if let Some(http) = trace.lock().http.as_mut() {
            http.body_bytes = bytes.len() as u64;
            http.body_truncated = truncated;
        }
        if truncated {
            break;
        }
    }
    Ok(Body { bytes, truncated })
}
