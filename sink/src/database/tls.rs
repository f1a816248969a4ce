//! TLS to PostgreSQL on OpenSSL, set up for exactly what the `sslmode` checks. A mode
//! that checks no certificate (`prefer`, `require` without a CA file) never loads the
//! system's CA bundle: with OpenSSL 3 that costs tens of milliseconds at every start
//! (twice over through native-tls), which is most of a short command's run time
//! (`sitewatch-sink report`). A CA file, when given, is the only trust anchor (libpq's
//! `sslrootcert`); the system roots are loaded only for a checking mode without one.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslMode, SslVerifyMode, SslVersion,
};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::{X509VerifyResult, X509};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_openssl::SslStream;
use tokio_postgres::tls::{self, ChannelBinding, MakeTlsConnect, TlsConnect};

use super::DatabaseConfigError;

/// What the server's certificate must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Nothing: the connection is encrypted, the server not authenticated.
    Nothing,
    /// Signed by a trusted CA.
    Chain,
    /// Signed by a trusted CA and naming the host connected to.
    ChainAndHost,
}

/// Makes TLS connections to the database; cheap to clone (the context is shared).
#[derive(Clone)]
pub struct Connector {
    context: SslContext,
    check: Check,
}

impl Connector {
    /// Checks by `check`, trusting the certificates in `ca` (PEM) or else the system's.
    pub(super) fn new(check: Check, ca: Option<&Path>) -> Result<Self, DatabaseConfigError> {
        let tls = |e: ErrorStack| DatabaseConfigError::Tls(e.to_string());
        let mut builder = SslContext::builder(SslMethod::tls_client()).map_err(tls)?;
        builder
            .set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(tls)?;
        // Async streams retry writes with a buffer that may have moved.
        builder.set_mode(
            SslMode::AUTO_RETRY
                | SslMode::ACCEPT_MOVING_WRITE_BUFFER
                | SslMode::ENABLE_PARTIAL_WRITE,
        );
        // A CA file is read whatever the mode: a broken one is a mistake to report at start.
        if let Some(path) = ca {
            trust_file(&mut builder, path)?;
        }
        if check == Check::Nothing {
            builder.set_verify(SslVerifyMode::NONE);
        } else {
            builder.set_verify(SslVerifyMode::PEER);
            if ca.is_none() {
                builder.set_default_verify_paths().map_err(tls)?;
            }
        }
        Ok(Connector {
            context: builder.build(),
            check,
        })
    }
}

/// Trusts the certificates in the PEM file at `path`, and nothing else.
fn trust_file(builder: &mut SslContextBuilder, path: &Path) -> Result<(), DatabaseConfigError> {
    let ca_error = |message: String| DatabaseConfigError::Ca {
        path: path.to_path_buf(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certs = X509::stack_from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error("no PEM certificate in the file".to_string()));
    }
    for cert in certs {
        builder
            .cert_store_mut()
            .add_cert(cert)
            .map_err(|e| ca_error(e.to_string()))?;
    }
    Ok(())
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Handshake;
    type Error = ErrorStack;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Handshake, ErrorStack> {
        Ok(Handshake {
            context: self.context.clone(),
            check: self.check,
            domain: domain.to_string(),
        })
    }
}

/// One TLS handshake with the server at `domain`.
pub struct Handshake {
    context: SslContext,
    check: Check,
    domain: String,
}

/// Why a TLS handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// OpenSSL refused the per-connection settings.
    #[error("TLS setup: {0}")]
    Setup(#[from] ErrorStack),
    /// The server's certificate was refused.
    #[error("the server's certificate was refused: {reason} ({error})")]
    Certificate {
        /// OpenSSL's verdict on the certificate.
        reason: String,
        /// The handshake error.
        error: openssl::ssl::Error,
    },
    /// The handshake failed otherwise.
    #[error("TLS handshake: {0}")]
    Handshake(openssl::ssl::Error),
}

impl Handshake {
    fn ssl(&self) -> Result<Ssl, ErrorStack> {
        let mut ssl = Ssl::new(&self.context)?;
        let ip = self.domain.parse::<IpAddr>().ok();
        // Server name indication is for names only.
        if ip.is_none() && !self.domain.is_empty() {
            ssl.set_hostname(&self.domain)?;
        }
        if self.check == Check::ChainAndHost {
            let param = ssl.param_mut();
            param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
            match ip {
                Some(ip) => param.set_ip(ip)?,
                None => param.set_host(&self.domain)?,
            }
        }
        Ok(ssl)
    }
}

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = HandshakeError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream<S>, HandshakeError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let mut stream = SslStream::new(self.ssl()?, stream)?;
            if let Err(error) = Pin::new(&mut stream).connect().await {
                let verdict = stream.ssl().verify_result();
                return Err(if verdict == X509VerifyResult::OK {
                    HandshakeError::Handshake(error)
                } else {
                    HandshakeError::Certificate {
                        reason: verdict.error_string().to_string(),
                        error,
                    }
                });
            }
            Ok(TlsStream(stream))
        })
    }
}

/// An established TLS connection.
pub struct TlsStream<S>(SslStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tls::TlsStream for TlsStream<S> {
    /// SCRAM's `tls-server-end-point`: a hash of the server's certificate, by the hash its
    /// signature uses (SHA-256 in place of MD5 and SHA-1, as RFC 5929 says).
    fn channel_binding(&self) -> ChannelBinding {
        let Some(cert) = self.0.ssl().peer_certificate() else {
            return ChannelBinding::none();
        };
        let digest = cert
            .signature_algorithm()
            .object()
            .nid()
            .signature_algorithms()
            .and_then(|algorithms| match algorithms.digest {
                Nid::MD5 | Nid::SHA1 => Some(MessageDigest::sha256()),
                nid => MessageDigest::from_nid(nid),
            });
        match digest.and_then(|md| cert.digest(md).ok()) {
            Some(hash) => ChannelBinding::tls_server_end_point(hash.to_vec()),
            None => ChannelBinding::none(),
        }
    }
}
