//! Probe redirects, injected name resolution and plugins, against local servers.
#![cfg(feature = "engine")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/server.rs"]
mod server;
#[path = "support/spec.rs"]
mod spec;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use server::{path, respond, start, Handler, Server};
use sitewatch_checks::probe::{Prober, Resolve};
use sitewatch_checks::schema::{ErrorKind, Outcome, PluginOutcome, PluginResult};
use sitewatch_checks::spec::{PluginBinding, ResponsePlugin, ResponseView};
use spec::spec;

/// `/r1` → `/r2` (relative) → `/final` (absolute) → 200 "arrived".
async fn chain() -> Server {
    let h: Handler = Arc::new(|req, mut io| {
        Box::pin(async move {
            match path(&req).as_str() {
                "/r1" => respond(&mut io, "302 Found", "Location: r2\r\n", b"").await,
                "/r2" => {
                    let host = req
                        .lines()
                        .find_map(|l| l.strip_prefix("host: ").or(l.strip_prefix("Host: ")))
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    let loc = format!("Location: http://{host}/final\r\n");
                    respond(&mut io, "301 Moved Permanently", &loc, b"").await
                }
                "/final" => respond(&mut io, "200 OK", "", b"arrived").await,
                "/form" => respond(&mut io, "303 See Other", "Location: /final\r\n", b"").await,
                _ => respond(&mut io, "404 Not Found", "", b"").await,
            }
        })
    });
    start(h, None).await
}

#[tokio::test]
async fn redirects_not_followed_by_default() {
    let srv = chain().await;
    let r = Prober::new("a".into(), None)
        .check(&spec(&srv.url("/r1")))
        .await;
    assert_eq!(
        r.outcome,
        Outcome::Up,
        "3xx is in the default 200-399: {r:?}"
    );
    let http = r.http.unwrap();
    assert_eq!((http.status, http.redirects), (302, 0));
    assert_eq!(srv.requests().len(), 1);
}

#[tokio::test]
async fn unfollowed_redirect_judged_by_expect_status() {
    let srv = chain().await;
    let mut s = spec(&srv.url("/r1"));
    s.expect_status = sitewatch_checks::spec::StatusSet::parse("200").unwrap();
    let r = Prober::new("a".into(), None).check(&s).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.error.unwrap().message, "expected 200, got 302");
}

#[tokio::test]
async fn redirect_chain_followed() {
    let srv = chain().await;
    let mut s = spec(&srv.url("/r1"));
    s.follow_redirects = 5;
    s.regex = spec::re("arrived");
    let r = Prober::new("a".into(), None).check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let http = r.http.unwrap();
    assert_eq!((http.status, http.redirects, http.body_bytes), (200, 2, 7));
    assert_eq!(
        r.url,
        srv.url("/r1"),
        "the reported url stays the configured one"
    );
    let paths: Vec<String> = srv.requests().iter().map(|q| path(q)).collect();
    assert_eq!(paths, ["/r1", "/r2", "/final"]);
}

#[tokio::test]
async fn too_many_redirects_is_down() {
    let srv = chain().await;
    let mut s = spec(&srv.url("/r1"));
    s.follow_redirects = 1;
    let r = Prober::new("a".into(), None).check(&s).await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::HttpStatus);
    assert!(
        e.message.starts_with("more than 1 redirects"),
        "{}",
        e.message
    );
    assert_eq!(r.http.unwrap().redirects, 1);
}

/// Maps names to addresses; anything else fails like NXDOMAIN.
struct MapResolver(HashMap<String, SocketAddr>, Mutex<Vec<String>>);

impl Resolve for MapResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        self.1.lock().unwrap().push(format!("{host}:{port}"));
        let found = self.0.get(host).copied();
        let host = host.to_string();
        Box::pin(async move {
            found.map(|a| vec![a]).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))
            })
        })
    }
}

#[tokio::test]
async fn injected_resolver_maps_names() {
    let srv = chain().await;
    let resolver = Arc::new(MapResolver(
        HashMap::from([("shop.test".to_string(), srv.addr)]),
        Mutex::new(Vec::new()),
    ));
    let prober = Prober::new("a".into(), None).with_resolver(resolver.clone());
    let port = srv.addr.port();
    let r = prober
        .check(&spec(&format!("http://shop.test:{port}/final")))
        .await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let t = &r.timings_ms;
    let (dns, connect, ttfb) = (t.dns.unwrap(), t.connect.unwrap(), t.ttfb.unwrap());
    assert!(dns >= 0.0 && connect >= 0.0 && ttfb > 0.0);
    assert!(t.total >= dns + connect + ttfb, "{t:?}");
    assert_eq!(*resolver.1.lock().unwrap(), [format!("shop.test:{port}")]);
    let req = srv.requests().remove(0);
    assert!(
        req.contains(&format!("host: shop.test:{port}\r\n")),
        "{req}"
    );
}

#[tokio::test]
async fn dns_failure_is_down_dns() {
    let resolver = Arc::new(MapResolver(HashMap::new(), Mutex::new(Vec::new())));
    let prober = Prober::new("a".into(), None).with_resolver(resolver);
    let r = prober.check(&spec("http://nowhere.test/")).await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Dns);
    assert!(e.message.contains("nowhere.test"), "{}", e.message);
    assert!(r.timings_ms.dns.is_some() && r.timings_ms.connect.is_none());
}

/// Returns a fixed verdict and records what it was shown.
struct FakePlugin(PluginOutcome, Mutex<Vec<(u16, String, String)>>);

impl ResponsePlugin for FakePlugin {
    fn check(&self, name: &str, r: &ResponseView<'_>, config: &[(String, String)]) -> PluginResult {
        let cfg = config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let body = String::from_utf8_lossy(r.body).into_owned();
        self.1.lock().unwrap().push((r.status, body, cfg));
        PluginResult {
            name: name.to_string(),
            outcome: self.0,
            message: format!("said {:?}", self.0),
            metrics: Vec::new(),
            labels: Vec::new(),
            duration_ms: 0.1,
        }
    }
}

fn binding(name: &str, p: Arc<FakePlugin>) -> PluginBinding {
    PluginBinding {
        name: name.into(),
        plugin: p,
        config: vec![("k".into(), "v".into())],
    }
}

#[tokio::test]
async fn plugins_see_the_response_and_set_the_outcome() {
    let srv = chain().await;
    let pass = Arc::new(FakePlugin(PluginOutcome::Pass, Mutex::default()));
    let warn = Arc::new(FakePlugin(PluginOutcome::Warn, Mutex::default()));
    let fail = Arc::new(FakePlugin(PluginOutcome::Fail, Mutex::default()));
    let prober = Prober::new("a".into(), None);

    let mut s = spec(&srv.url("/final"));
    s.plugins = vec![binding("p", pass.clone())];
    let r = prober.check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert_eq!(r.plugins.len(), 1);
    assert_eq!(
        pass.1.lock().unwrap()[0],
        (200, "arrived".to_string(), "k=v".to_string())
    );

    s.plugins = vec![binding("p", pass.clone()), binding("w", warn.clone())];
    let r = prober.check(&s).await;
    assert_eq!(r.outcome, Outcome::Degraded);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Plugin);
    assert!(
        e.message.contains("`w`") && e.message.contains("said Warn"),
        "{}",
        e.message
    );

    s.plugins = vec![binding("w", warn), binding("f", fail)];
    let r = prober.check(&s).await;
    assert_eq!(r.outcome, Outcome::Down);
    let names: Vec<&str> = r.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["w", "f"]);
    assert!(r.error.unwrap().message.contains("`f` failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_run_on_a_multi_thread_runtime() {
    let srv = chain().await;
    let fail = Arc::new(FakePlugin(PluginOutcome::Fail, Mutex::default()));
    let mut s = spec(&srv.url("/final"));
    s.plugins = vec![binding("f", fail)];
    // A status failure stays the reported reason; plugins still run and are recorded.
    s.expect_status = sitewatch_checks::spec::StatusSet::parse("204").unwrap();
    let r = Prober::new("a".into(), None).check(&s).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.error.unwrap().kind, ErrorKind::HttpStatus);
    assert_eq!(r.plugins[0].outcome, PluginOutcome::Fail);
}

#[tokio::test]
async fn see_other_turns_post_into_get() {
    let srv = chain().await;
    let mut s = spec(&srv.url("/form"));
    s.method = http::Method::POST;
    s.body = Some(bytes::Bytes::from_static(b"a=1"));
    s.follow_redirects = 3;
    let r = Prober::new("a".into(), None).check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let reqs = srv.requests();
    assert!(reqs[0].starts_with("POST /form ") && reqs[0].ends_with("a=1"));
    assert!(reqs[1].starts_with("GET /final "), "{}", reqs[1]);
    assert!(!reqs[1].to_lowercase().contains("content-length: 3"));
}

struct PanicPlugin;

impl ResponsePlugin for PanicPlugin {
    fn check(&self, _: &str, _: &ResponseView<'_>, _: &[(String, String)]) -> PluginResult {
        panic!("plugin bug");
    }
}

#[tokio::test]
async fn panicking_plugin_is_an_error_result_and_degrades() {
    let srv = chain().await;
    let mut s = spec(&srv.url("/final"));
    s.plugins = vec![PluginBinding {
        name: "boom".into(),
        plugin: Arc::new(PanicPlugin),
        config: Vec::new(),
    }];
    let r = Prober::new("a".into(), None).check(&s).await;
    assert_eq!(r.outcome, Outcome::Degraded, "{r:?}");
    assert_eq!(r.plugins[0].name, "boom");
    assert_eq!(r.plugins[0].outcome, PluginOutcome::Error);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Plugin);
    assert!(e.message.contains("`boom` could not run"), "{}", e.message);
}
