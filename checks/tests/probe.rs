//! Probe against local plain-HTTP servers: status, regexes, timeouts,
//! connection failures, broken bodies, body cap, headers and timings.
#![cfg(feature = "engine")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/server.rs"]
mod server;
#[path = "support/spec.rs"]
mod spec;

use std::sync::Arc;
use std::time::Duration;

use server::{fixed, respond, start, Handler};
use sitewatch_checks::probe::{Prober, USER_AGENT_VALUE};
use sitewatch_checks::schema::{ErrorKind, Outcome, SCHEMA_VERSION};
use sitewatch_checks::spec::StatusSet;
use spec::{re, spec};
use tokio::io::AsyncWriteExt;

fn prober() -> Prober {
    Prober::new("agent-1".into(), Some("lab".into()))
}

#[tokio::test]
async fn matching_regex_is_up_with_timings_and_headers() {
    let srv = start(fixed("200 OK", "hello sitewatch world"), None).await;
    let mut s = spec(&srv.url("/health?x=1"));
    s.regex = re("sitewatch w.rld");
    s.headers.insert("x-probe", "yes".parse().unwrap());
    let r = prober().check(&s).await;

    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert!(r.error.is_none());
    assert_eq!(r.schema, SCHEMA_VERSION);
    assert_eq!(r.check_id.get_version_num(), 7);
    assert_eq!(
        (r.site.as_str(), r.agent.as_str()),
        ("test-site", "agent-1")
    );
    assert_eq!(r.location.as_deref(), Some("lab"));
    assert_eq!(r.url, s.url.to_string());
    let http = r.http.clone().unwrap();
    assert_eq!((http.status, http.version.as_str()), (200, "HTTP/1.1"));
    assert_eq!(
        (http.body_bytes, http.body_truncated, http.redirects),
        (21, false, 0)
    );
    let rx = r.regex.clone().unwrap();
    assert!(rx.matched);
    assert_eq!(rx.pattern, "sitewatch w.rld");
    assert!(r.tls.is_none());

    let t = &r.timings_ms;
    assert!(t.dns.is_none(), "an IP literal needs no lookup");
    assert!(t.tls.is_none());
    let (connect, ttfb) = (t.connect.unwrap(), t.ttfb.unwrap());
    assert!(connect >= 0.0 && ttfb > 0.0);
    assert!(t.total >= ttfb + connect, "{t:?}");

    let req = srv.requests().remove(0).to_lowercase();
    assert!(req.starts_with("get /health?x=1 http/1.1\r\n"), "{req}");
    assert!(req.contains(&format!("host: {}\r\n", srv.addr)), "{req}");
    assert!(req.contains(&format!(
        "user-agent: {}\r\n",
        USER_AGENT_VALUE.to_lowercase()
    )));
    assert!(USER_AGENT_VALUE.starts_with("sitewatch/"));
    assert!(req.contains("x-probe: yes\r\n"), "{req}");
}

#[tokio::test]
async fn non_matching_regex_is_down() {
    let srv = start(fixed("200 OK", "maintenance mode"), None).await;
    let mut s = spec(&srv.url("/"));
    s.regex = re("welcome");
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Regex);
    assert!(e.message.contains("welcome"), "{}", e.message);
    assert!(!r.regex.unwrap().matched);
    assert_eq!(r.http.unwrap().status, 200);
}

#[tokio::test]
async fn regex_absent_matching_is_down_and_not_matching_is_up() {
    let srv = start(fixed("200 OK", "Fatal error: database gone"), None).await;
    let mut s = spec(&srv.url("/"));
    s.regex_absent = re("(?i)fatal error");
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.error.unwrap().kind, ErrorKind::Regex);
    assert!(r.regex_absent.unwrap().matched);

    s.regex_absent = re("exception");
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert!(!r.regex_absent.unwrap().matched);
}

#[tokio::test]
async fn server_error_is_down_http_status() {
    let srv = start(fixed("500 Internal Server Error", "oops"), None).await;
    let r = prober().check(&spec(&srv.url("/"))).await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::HttpStatus);
    assert_eq!(e.message, "expected 200-399, got 500");
    assert_eq!(r.http.unwrap().status, 500);
}

#[tokio::test]
async fn expected_404_is_up() {
    let srv = start(fixed("404 Not Found", "gone"), None).await;
    let mut s = spec(&srv.url("/old"));
    s.expect_status = StatusSet::parse("404").unwrap();
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert_eq!(r.http.unwrap().status, 404);
}

fn delayed_head(delay: Duration) -> Handler {
    Arc::new(move |_req, mut io| {
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            respond(&mut io, "200 OK", "", b"late").await;
        })
    })
}

#[tokio::test]
async fn slow_headers_time_out_naming_the_phase() {
    let srv = start(delayed_head(Duration::from_secs(3)), None).await;
    let mut s = spec(&srv.url("/"));
    s.timeout = Duration::from_millis(300);
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert_eq!(
        e.message,
        "timed out after 300ms waiting for response headers"
    );
    assert!(r.timings_ms.total >= 300.0 && r.timings_ms.total < 2000.0);
    assert!(r.timings_ms.connect.is_some());
    assert!(r.http.is_none());
}

#[tokio::test]
async fn slow_body_times_out_while_reading_it() {
    let h: Handler = Arc::new(|_req, mut io| {
        Box::pin(async move {
            let _ = io
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                .await;
            let _ = io.flush().await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        })
    });
    let srv = start(h, None).await;
    let mut s = spec(&srv.url("/"));
    s.timeout = Duration::from_millis(300);
    let r = prober().check(&s).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert_eq!(e.message, "timed out after 300ms reading the response body");
    let http = r.http.unwrap();
    assert_eq!((http.status, http.body_bytes), (200, 3));
}

#[tokio::test]
async fn refused_connection_is_down_connect() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = prober()
        .check(&spec(&format!("http://127.0.0.1:{port}/")))
        .await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Connect);
    assert!(
        e.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        e.message
    );
    assert!(r.timings_ms.connect.is_some() && r.timings_ms.ttfb.is_none());
}

#[tokio::test]
async fn reset_mid_body_is_down_body() {
    let h: Handler = Arc::new(|_req, mut io| {
        Box::pin(async move {
            let _ = io
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst bytes")
                .await;
            let _ = io.flush().await;
            drop(io);
        })
    });
    let srv = start(h, None).await;
    let r = prober().check(&spec(&srv.url("/"))).await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Body, "{}", e.message);
    assert!(e.message.contains("after 11 bytes"), "{}", e.message);
}

#[tokio::test]
async fn closed_without_response_is_down() {
    let h: Handler = Arc::new(|_req, io| Box::pin(async move { drop(io) }));
    let srv = start(h, None).await;
    let r = prober().check(&spec(&srv.url("/"))).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.error.is_some() && r.http.is_none());
}

#[tokio::test]
async fn body_over_cap_is_truncated_but_up() {
    static BIG: [u8; 10_000] = [b'a'; 10_000];
    let h: Handler = Arc::new(|_req, mut io| {
        Box::pin(async move { respond(&mut io, "200 OK", "", &BIG).await })
    });
    let srv = start(h, None).await;
    let mut s = spec(&srv.url("/"));
    s.max_body_bytes = 1000;
    s.regex = re("^a+$");
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let http = r.http.unwrap();
    assert_eq!((http.body_bytes, http.body_truncated), (1000, true));

    // Exactly at the cap is not truncated.
    s.max_body_bytes = 10_000;
    let http = prober().check(&s).await.http.unwrap();
    assert_eq!((http.body_bytes, http.body_truncated), (10_000, false));
}

#[tokio::test]
async fn over_degraded_after_is_degraded_slow() {
    let srv = start(delayed_head(Duration::from_millis(150)), None).await;
    let mut s = spec(&srv.url("/"));
    s.degraded_after = Some(Duration::from_millis(50));
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Degraded, "{r:?}");
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Slow);
    assert!(e.message.contains("50ms"), "{}", e.message);

    s.degraded_after = Some(Duration::from_secs(3));
    assert_eq!(prober().check(&s).await.outcome, Outcome::Up);
}

#[tokio::test]
async fn method_and_body_are_sent() {
    let srv = start(fixed("201 Created", "ok"), None).await;
    let mut s = spec(&srv.url("/submit"));
    s.method = http::Method::POST;
    s.body = Some(bytes::Bytes::from_static(b"{\"a\":1}"));
    s.headers.insert("user-agent", "custom/1".parse().unwrap());
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let req = srv.requests().remove(0);
    let lower = req.to_lowercase();
    assert!(lower.starts_with("post /submit http/1.1\r\n"), "{req}");
    assert!(lower.contains("content-length: 7\r\n"), "{req}");
    assert!(lower.contains("user-agent: custom/1\r\n"), "{req}");
    assert!(req.ends_with("\r\n\r\n{\"a\":1}"), "{req}");
}

#[test]
fn check_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let p = prober();
    let s = spec("http://127.0.0.1:9/");
    let fut = p.check(&s);
    assert_send(&fut);
    drop(fut);
}

/// A stall clock the test's server moves, as if the agent had been unable to run.
#[derive(Default)]
struct Stalls(std::sync::atomic::AtomicU64);

impl sitewatch_checks::probe::StallClock for Stalls {
    fn stalled(&self) -> Duration {
        Duration::from_millis(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// A server that reports `stall_ms` of agent stall, then answers after `delay` (or never).
fn stalling(stalls: Arc<Stalls>, stall_ms: u64, delay: Option<Duration>) -> Handler {
    Arc::new(move |_req, mut io| {
        let stalls = stalls.clone();
        Box::pin(async move {
            stalls
                .0
                .fetch_add(stall_ms, std::sync::atomic::Ordering::Relaxed);
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
            respond(&mut io, "200 OK", "", b"late").await;
        })
    })
}

#[tokio::test]
async fn time_the_agent_stalled_is_neither_a_timeout_nor_slowness() {
    // 400 ms to answer, a 300 ms timeout, 500 ms of it the agent could not run: the
    // deadline moves by the stall (at most by the timeout again), and the site is up.
    let stalls = Arc::new(Stalls::default());
    let srv = start(
        stalling(stalls.clone(), 500, Some(Duration::from_millis(400))),
        None,
    )
    .await;
    let prober = || prober().with_stall_clock(stalls.clone());
    let mut s = spec(&srv.url("/"));
    s.timeout = Duration::from_millis(300);
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert_eq!(r.agent_stall_ms, Some(500.0));

    // Slowness is judged on the time the agent could run the check: 400 - 500 < 100 ms.
    s.timeout = Duration::from_secs(5);
    s.degraded_after = Some(Duration::from_millis(100));
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert!(r.timings_ms.total >= 400.0);
}

#[tokio::test]
async fn a_check_the_agent_stalled_longer_than_its_timeout_is_not_judged() {
    let stalls = Arc::new(Stalls::default());
    let srv = start(stalling(stalls.clone(), 10_000, None), None).await;
    let mut s = spec(&srv.url("/"));
    s.timeout = Duration::from_millis(300);
    let r = prober().with_stall_clock(stalls.clone()).check(&s).await;
    assert_eq!(
        r.outcome,
        Outcome::Degraded,
        "never down for the agent's fault"
    );
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::AgentOverloaded);
    assert!(e.message.contains("not judged"), "{}", e.message);
    assert_eq!(r.agent_stall_ms, Some(10_000.0));
    // It waited twice the timeout, no longer.
    assert!(r.timings_ms.total >= 600.0 && r.timings_ms.total < 3_000.0);

    // A site that does not answer while the agent was not stalled is down, as ever.
    let srv = start(stalling(Arc::default(), 0, None), None).await;
    let mut s = spec(&srv.url("/"));
    s.timeout = Duration::from_millis(300);
    let r = prober().check(&s).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.error.unwrap().kind, ErrorKind::Timeout);
    assert_eq!(r.agent_stall_ms, None);
}
