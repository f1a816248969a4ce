//! Tiny in-process HTTP/1.1 servers on 127.0.0.1 for probe tests: each
//! connection's request (head and body) is captured, then a handler writes
//! whatever raw bytes the test wants (or misbehaves on purpose).

#![allow(dead_code)] // each test crate uses a different subset

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server-side stream (plain or TLS).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Answers one request: gets the raw request text and the stream.
pub type Handler = Arc<dyn Fn(String, Box<dyn Io>) -> BoxFuture<'static, ()> + Send + Sync>;

/// A running test server.
pub struct Server {
    pub addr: SocketAddr,
    /// Raw requests received, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Starts a server; with `tls`, every connection is TLS-accepted first.
pub async fn start(handler: Handler, tls: Option<tokio_native_tls::TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let tls = tls.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut io: Box<dyn Io> = match tls {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(s) => Box::new(s),
                        Err(_) => return,
                    },
                    None => Box::new(tcp),
                };
                let Some(request) = read_request(&mut io).await else {
                    return;
                };
                seen.lock().unwrap().push(request.clone());
                handler(request, io).await;
            });
        }
    });
    Server { addr, requests }
}

/// Reads the head and (by Content-Length) the body.
async fn read_request(io: &mut Box<dyn Io>) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = io.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = io.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The request target of a raw request (`GET /x HTTP/1.1` → `/x`).
pub fn path(request: &str) -> String {
    request.split_whitespace().nth(1).unwrap_or("/").to_string()
}

/// Writes a complete response with Content-Length and closes.
pub async fn respond(io: &mut Box<dyn Io>, status: &str, extra_headers: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
        body.len()
    );
    let _ = io.write_all(head.as_bytes()).await;
    let _ = io.write_all(body).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// A handler that always answers with `status` and `body`.
pub fn fixed(status: &'static str, body: &'static str) -> Handler {
    Arc::new(move |_req, mut io| {
        Box::pin(async move { respond(&mut io, status, "", body.as_bytes()).await })
    })
}
