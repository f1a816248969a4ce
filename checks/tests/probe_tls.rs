//! Probe against a local https server with a self-signed certificate made
//! in the test: untrusted → down tls; trusted via `tls_ca` → up with expiry.
#![cfg(feature = "engine")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/server.rs"]
mod server;
#[path = "support/spec.rs"]
mod spec;

use chrono::{TimeZone, Utc};
use server::{fixed, start, Server};
use sitewatch_checks::probe::{Prober, TlsClient};
use sitewatch_checks::schema::{ErrorKind, Outcome};
use spec::spec;

/// A self-signed certificate for localhost / 127.0.0.1 valid until 2045-06-01.
fn self_signed() -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params.not_after = rcgen::date_time_ymd(2045, 6, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn https_server(cert_pem: &str, key_pem: &str) -> Server {
    let identity =
        native_tls::Identity::from_pkcs8(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let acceptor = native_tls::TlsAcceptor::new(identity).unwrap();
    start(fixed("200 OK", "secure hello"), Some(acceptor.into())).await
}

#[tokio::test]
async fn untrusted_self_signed_is_down_tls() {
    let (cert, key) = self_signed();
    let srv = https_server(&cert, &key).await;
    let r = Prober::new("a".into(), None)
        .check(&spec(&format!("https://{}/", srv.addr)))
        .await;
    assert_eq!(r.outcome, Outcome::Down);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(e.message.contains("TLS handshake"), "{}", e.message);
    assert!(
        e.message.to_lowercase().contains("certificate"),
        "{}",
        e.message
    );
    assert!(e.message.contains("self-signed"), "{}", e.message);
    assert!(r.timings_ms.tls.is_some() && r.http.is_none());
}

#[tokio::test]
async fn trusted_via_tls_ca_is_up_with_expiry() {
    let (cert, key) = self_signed();
    let srv = https_server(&cert, &key).await;
    let mut s = spec(&format!("https://{}/", srv.addr));
    s.tls = Some(TlsClient::with_extra_roots_pem(cert.as_bytes()).unwrap());
    s.regex = spec::re("secure");
    let r = Prober::new("a".into(), None).check(&s).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");

    let tls = r.tls.unwrap();
    let not_after = Utc.with_ymd_and_hms(2045, 6, 1, 0, 0, 0).unwrap();
    assert_eq!(tls.cert_not_after, not_after);
    let expected = (not_after - Utc::now()).num_days();
    assert!(
        (tls.days_left - expected).abs() <= 1,
        "{} vs {expected}",
        tls.days_left
    );

    let t = &r.timings_ms;
    let (connect, tls_ms, ttfb) = (t.connect.unwrap(), t.tls.unwrap(), t.ttfb.unwrap());
    assert!(tls_ms > 0.0);
    assert!(t.total >= connect + tls_ms + ttfb, "{t:?}");
}

#[tokio::test]
async fn name_mismatch_is_down_tls() {
    let (cert, key) = self_signed();
    let srv = https_server(&cert, &key).await;
    let resolver = std::sync::Arc::new(Fixed(srv.addr));
    let mut s = spec(&format!("https://other.test:{}/", srv.addr.port()));
    s.tls = Some(TlsClient::with_extra_roots_pem(cert.as_bytes()).unwrap());
    let r = Prober::new("a".into(), None)
        .with_resolver(resolver)
        .check(&s)
        .await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.error.unwrap().kind, ErrorKind::Tls);
}

/// Resolves every name to one address.
struct Fixed(std::net::SocketAddr);

impl sitewatch_checks::probe::Resolve for Fixed {
    fn resolve(
        &self,
        _host: &str,
        _port: u16,
    ) -> futures::future::BoxFuture<'static, std::io::Result<Vec<std::net::SocketAddr>>> {
        let a = self.0;
        Box::pin(async move { Ok(vec![a]) })
    }
}

#[tokio::test]
async fn stalled_handshake_times_out_in_tls_phase() {
    // Accepts TCP but never speaks TLS.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut s = spec(&format!("https://{addr}/"));
    s.timeout = std::time::Duration::from_millis(300);
    let r = Prober::new("a".into(), None).check(&s).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert_eq!(e.message, "timed out after 300ms in the TLS handshake");
    assert!(r.timings_ms.connect.is_some() && r.timings_ms.tls.is_none());
}
