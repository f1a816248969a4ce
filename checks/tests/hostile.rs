//! Hostile sites: each misbehaviour ends as one bounded result within the check's
//! timeout, holding at most `max_body_bytes` of body, and the result still encodes.
#![cfg(feature = "engine")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/server.rs"]
mod server;
#[path = "support/spec.rs"]
mod spec;

use std::sync::Arc;
use std::time::{Duration, Instant};

use server::{start, Handler};
use sitewatch_checks::probe::Prober;
use sitewatch_checks::schema::{CheckResult, ErrorKind, Outcome};
use spec::{re, spec};
use tokio::io::AsyncWriteExt;

const TIMEOUT: Duration = Duration::from_millis(800);

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(String, Box<dyn server::Io>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Arc::new(move |req, io| Box::pin(f(req, io)))
}

/// Checks `path` on a server running `h`; asserts the check ended within its timeout
/// (plus scheduling slack) and that the result encodes as JSON.
async fn check(
    h: Handler,
    configure: impl FnOnce(&mut sitewatch_checks::spec::CheckSpec),
) -> CheckResult {
    let srv = start(h, None).await;
    let mut s = spec(&srv.url("/"));
    s.timeout = TIMEOUT;
    configure(&mut s);
    let started = Instant::now();
    let r = Prober::new("agent".into(), None).check(&s).await;
    // Bounded, not fast: a site that holds the check past its timeout must not hold it
    // much longer (the slack is for a loaded machine, not a speed target).
    assert!(
        started.elapsed() < TIMEOUT + Duration::from_secs(3),
        "check took {:?}",
        started.elapsed()
    );
    let json = serde_json::to_vec(&r).unwrap();
    let back: CheckResult = serde_json::from_slice(&json).unwrap();
    assert_eq!(back.check_id, r.check_id);
    r
}

#[tokio::test]
async fn slowloris_headers_time_out() {
    let r = check(
        handler(|_, mut io| async move {
            let _ = io.write_all(b"HTTP/1.1 200 OK\r\n").await;
            // One header byte every 50 ms, forever.
            loop {
                if io.write_all(b"X").await.is_err() || io.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }),
        |_| {},
    )
    .await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(
        e.message.contains("waiting for response headers"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn slowloris_body_times_out() {
    let r = check(
        handler(|_, mut io| async move {
            let _ = io
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                .await;
            loop {
                if io.write_all(b"W").await.is_err() || io.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }),
        |_| {},
    )
    .await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(
        e.message.contains("reading the response body"),
        "{}",
        e.message
    );
    assert!(r.http.unwrap().body_bytes > 0);
}

/// A body that never ends, as fast as the socket takes it.
fn endless(head: &'static [u8]) -> Handler {
    handler(move |_, mut io| async move {
        let _ = io.write_all(head).await;
        let chunk = vec![b'x'; 64 << 10];
        let size = format!("{:x}\r\n", chunk.len());
        loop {
            let sent = async {
                io.write_all(size.as_bytes()).await?;
                io.write_all(&chunk).await?;
                io.write_all(b"\r\n").await
            };
            if sent.await.is_err() {
                return;
            }
        }
    })
}

#[tokio::test]
async fn an_endless_body_is_cut_at_max_body_bytes() {
    let r = check(
        endless(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        |s| {
            s.max_body_bytes = 256 << 10;
            s.regex = re("xxxx");
        },
    )
    .await;
    assert_eq!(r.outcome, Outcome::Up, "{:?}", r.error);
    let http = r.http.unwrap();
    assert_eq!((http.body_bytes, http.body_truncated), (256 << 10, true));
    assert!(r.regex.unwrap().matched);
}

#[tokio::test]
async fn a_gzip_bomb_is_not_inflated_only_capped() {
    // No decompression: compressed bytes are body bytes, capped like any other.
    let r = check(
        endless(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
        |s| s.max_body_bytes = 64 << 10,
    )
    .await;
    let http = r.http.unwrap();
    assert_eq!((http.body_bytes, http.body_truncated), (64 << 10, true));
}

#[tokio::test]
async fn invalid_utf8_in_headers_and_body_is_checked_not_a_crash() {
    let r = check(
        handler(|_, mut io| async move {
            let mut page =
                b"HTTP/1.1 200 OK\r\nX-Odd: caf\xe9 \xff\xfe\r\nContent-Length: 12\r\n\r\n"
                    .to_vec();
            page.extend_from_slice(b"ok \xff\xfe\xc3( ok!!");
            let _ = io.write_all(&page).await;
        }),
        |s| s.regex = re("ok.*ok"),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Up, "{:?}", r.error);
    assert!(r.regex.unwrap().matched);
}

/// Redirects `/N` to `/N+1`, forever.
fn redirect_loop() -> Handler {
    handler(|req, mut io| async move {
        let n: u64 = req
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.trim_start_matches('/').parse().ok())
            .unwrap_or(0);
        let head = format!(
            "HTTP/1.1 302 Found\r\nLocation: /{}\r\nContent-Length: 0\r\n\r\n",
            n + 1
        );
        let _ = io.write_all(head.as_bytes()).await;
    })
}

#[tokio::test]
async fn ten_thousand_redirects_stop_at_the_limit() {
    let r = check(redirect_loop(), |s| s.follow_redirects = 10).await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert!(
        e.message.contains("more than 10 redirects"),
        "{}",
        e.message
    );
    assert_eq!(r.http.unwrap().redirects, 10);
}

#[tokio::test]
async fn an_endless_redirect_loop_stops_at_the_timeout() {
    // No redirect limit a fast machine could reach within the timeout (10,000 local
    // redirects once finished in under 800 ms on CI): only the timeout can end this check.
    let r = check(redirect_loop(), |s| s.follow_redirects = u32::MAX).await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout, "{}", e.message);
    assert!(e.message.contains("redirects"), "{}", e.message);
}

#[tokio::test]
async fn huge_headers_are_refused_as_an_invalid_response() {
    let r = check(
        handler(|_, mut io| async move {
            let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..20_000 {
                head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(100)).as_bytes());
            }
            head.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
            let _ = io.write_all(&head).await;
        }),
        |_| {},
    )
    .await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Body, "{}", e.message);
    assert!(e.message.contains("invalid HTTP response"), "{}", e.message);
}

#[tokio::test]
async fn one_giant_header_line_is_refused_too() {
    let r = check(
        handler(|_, mut io| async move {
            let mut head = b"HTTP/1.1 200 OK\r\nX-Giant: ".to_vec();
            head.extend(std::iter::repeat_n(b'z', 4 << 20));
            head.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\nok");
            let _ = io.write_all(&head).await;
        }),
        |_| {},
    )
    .await;
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.error.unwrap().message.contains("invalid HTTP response"));
}
