//! A tiny HTTP/1.1 site on 127.0.0.1 for tests: fixed pages by path, a new
//! connection per request (`Connection: close`), as the agent checks.

use std::io::{Read, Write};
use std::net::TcpListener;

/// One page: status line, extra headers, body.
#[derive(Debug, Clone)]
pub struct Page {
    /// Path the page is served at (exact match, query ignored).
    pub path: String,
    /// Status, e.g. `200 OK`.
    pub status: String,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
    /// How long the server waits before answering.
    pub delay: std::time::Duration,
}

impl Page {
    /// A `200 OK` page.
    pub fn ok(path: &str, body: &str) -> Self {
        Page {
            path: path.into(),
            status: "200 OK".into(),
            headers: Vec::new(),
            body: body.into(),
            delay: std::time::Duration::ZERO,
        }
    }

    /// The same page, answered after `delay`.
    pub fn delayed(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The same page with another status.
    pub fn status(mut self, status: &str) -> Self {
        self.status = status.into();
        self
    }

    /// The same page with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Serves `pages` (unknown paths are 404) on a free port until the process ends.
pub fn serve(pages: Vec<Page>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let pages = pages.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&req);
                let target = head.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or("/");
                let not_found = Page::ok(path, "not found").status("404 Not Found");
                let page = pages.iter().find(|p| p.path == path).unwrap_or(&not_found);
                let mut out = format!(
                    "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    page.status,
                    page.body.len()
                );
                for (k, v) in &page.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&page.body);
                std::thread::sleep(page.delay);
                let _ = stream.write_all(out.as_bytes());
            });
        }
    });
    port
}

/// `/` (and `/two`) say Welcome; `/error` is a 500 saying "broken".
pub fn welcome() -> u16 {
    serve(vec![
        Page::ok("/", "<h1>Welcome</h1>"),
        Page::ok("/two", "<h1>Welcome</h1>"),
        Page::ok("/error", "broken").status("500 Internal Server Error"),
    ])
}

/// A port that accepts connections and never answers; each accepted connection is
/// announced on the returned channel (and held open until the process ends).
pub fn hang() -> (u16, std::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            held.push(stream);
            let _ = tx.send(());
        }
    });
    (port, rx)
}

/// A plain HTTP/1.1 GET to `addr` (`host:port`); the whole response as text, or empty
/// while nothing listens there.
pub fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
