//! Opening the connection for one request: name resolution, TCP connect
//! (trying each address in turn) and, for https, the TLS handshake with
//! leaf-certificate expiry extraction. Each phase is timed into the trace; the
//! `tls` timing is the handshake alone (the configuration is built beforehand, once).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::{Host, Url};

use super::resolver::Resolve;
use super::tls::TlsClient;
use super::trace::{ms, Phase, Trace};
use crate::schema::{CheckError, ErrorKind, Timings, TlsInfo};

/// A byte stream hyper can speak HTTP over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A plain or TLS connection.
pub(crate) type BoxIo = Box<dyn Io>;

fn fail(kind: ErrorKind, message: impl Into<String>) -> CheckError {
    CheckError {
        kind,
        message: message.into(),
    }
}

/// Opens a fresh connection to `url`'s origin, recording DNS, connect and TLS
/// timings (replacing those of any earlier redirect hop). `tls`: the site's TLS
/// configuration (`None`: the system roots). `sends_body`: the request has a body, so it
/// may be written in more than one piece.
pub(crate) async fn open(
    url: &Url,
    tls: Option<&TlsClient>,
    resolver: &dyn Resolve,
    trace: &Trace,
    sends_body: bool,
) -> Result<BoxIo, CheckError> {
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(fail(
                ErrorKind::Connect,
                format!("unsupported URL scheme `{other}`"),
            ))
        }
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| fail(ErrorKind::Connect, format!("no port for {url}")))?;
    let host = url
        .host()
        .ok_or_else(|| fail(ErrorKind::Connect, format!("no host in {url}")))?;

    {
        // Each hop reports its own phases: forget the previous hop's.
        let mut state = trace.lock();
        state.timings = Timings::default();
        state.tls = None;
        state.http = None;
        state.phase = Phase::Resolving;
    }
    let (addrs, tls_name) = match host {
        Host::Domain(name) => {
            let t = Instant::now();
            let resolved = resolver.resolve(name, port).await;
            trace.lock().timings.dns = Some(ms(t.elapsed()));
            let addrs = resolved
                .map_err(|e| fail(ErrorKind::Dns, format!("cannot resolve `{name}`: {e}")))?;
            if addrs.is_empty() {
                return Err(fail(
                    ErrorKind::Dns,
                    format!("`{name}` resolved to no addresses"),
                ));
            }
            (addrs, name.to_string())
        }
        // An IP literal needs no lookup: the dns timing stays absent.
        Host::Ipv4(ip) => (vec![SocketAddr::new(IpAddr::V4(ip), port)], ip.to_string()),
        Host::Ipv6(ip) => (vec![SocketAddr::new(IpAddr::V6(ip), port)], ip.to_string()),
    };

    trace.enter(Phase::Connecting);
    let t = Instant::now();
    let tcp = connect_any(&addrs).await;
    trace.lock().timings.connect = Some(ms(t.elapsed()));
    let tcp = tcp?;
    // A request without a body goes out in one write, which Nagle never holds back; a
    // TLS handshake or a body may take several, and then Nagle waiting for the server's
    // delayed ACK would add up to 40 ms to the timings. Saves a syscall per plain check.
    if https || sends_body {
        // Failure here is harmless.
        let _ = tcp.set_nodelay(true);
    }

    if !https {
        return Ok(Box::new(tcp));
    }

    let client = match tls {
        Some(client) => client.clone(),
        None => TlsClient::system().map_err(|e| fail(ErrorKind::Tls, e.to_string()))?,
    };
    trace.enter(Phase::TlsHandshake);
    let t = Instant::now();
    let tls = handshake(&client, tcp, &tls_name).await;
    trace.lock().timings.tls = Some(ms(t.elapsed()));
    let tls = tls?;
    let cert_info = leaf_expiry(&tls);
    trace.lock().tls = cert_info;
    Ok(Box::new(tls))
}

/// Connects to the first address that accepts; reports the last failure otherwise.
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, CheckError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        // EMFILE / ENFILE: the agent, not the site, is out of sockets.
        Some((addr, e)) if matches!(e.raw_os_error(), Some(24 | 23)) => fail(
            ErrorKind::AgentOverloaded,
            format!(
                "not judged: the agent could not open a socket to {addr} ({e}); \
                 raise its file limit (LimitNOFILE) or lower agent.max_concurrency"
            ),
        ),
        Some((addr, e)) => fail(ErrorKind::Connect, format!("cannot connect to {addr}: {e}")),
        None => fail(ErrorKind::Connect, "no address to connect to"),
    })
}

async fn handshake(
    client: &TlsClient,
    tcp: TcpStream,
    name: &str,
) -> Result<tokio_native_tls::TlsStream<TcpStream>, CheckError> {
    client.handshake(tcp, name).await.map_err(|e| {
        fail(
            ErrorKind::Tls,
            format!("TLS handshake with `{name}` failed: {e}"),
        )
    })
}

/// The leaf certificate's notAfter and days left, if it can be read.
fn leaf_expiry(tls: &tokio_native_tls::TlsStream<TcpStream>) -> Option<TlsInfo> {
    let cert = tls.get_ref().peer_certificate().ok()??;
    let der = cert.to_der().ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).ok()?;
    let not_after = DateTime::<Utc>::from_timestamp(parsed.validity().not_after.timestamp(), 0)?;
    let days_left = (not_after - Utc::now()).num_days();
    Some(TlsInfo {
        cert_not_after: not_after,
        days_left,
    })
}
