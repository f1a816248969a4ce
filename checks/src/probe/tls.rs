//! TLS client configurations, built once and shared by every check that uses them.
//!
//! Building a connector loads the system trust store (about 140 certificates parsed from
//! PEM): tens of milliseconds of CPU. Done per check, that work dominated an https check
//! and was counted in its `tls` timing. Here each distinct configuration (the system
//! roots, or the system roots plus one `tls_ca` file) is built once and cloned cheaply;
//! a check's handshake only creates a session from it.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio::net::TcpStream;

/// A TLS client configuration: the system roots plus, optionally, extra trusted CAs.
/// Cheap to clone; two values are equal when they trust the same extra certificates.
#[derive(Clone)]
pub struct TlsClient {
    inner: Arc<Inner>,
}

struct Inner {
    connector: tokio_native_tls::TlsConnector,
    /// DER of each extra root, in the order given: the configuration's identity.
    extra_roots: Vec<Vec<u8>>,
}

/// Why a TLS configuration cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsSetupError {
    /// The PEM text holds no certificate that can be read.
    #[error("not a PEM certificate: {0}")]
    BadCertificate(String),
    /// The TLS library refused the configuration.
    #[error("cannot set up TLS: {0}")]
    Build(String),
}

impl TlsClient {
    /// The system roots only; built on first use and shared by the whole process.
    pub fn system() -> Result<TlsClient, TlsSetupError> {
        static SYSTEM: OnceLock<Result<TlsClient, TlsSetupError>> = OnceLock::new();
        SYSTEM.get_or_init(|| Self::build(Vec::new())).clone()
    }

    /// The system roots plus the certificate(s) in `pem` (one or more PEM blocks).
    pub fn with_extra_roots_pem(pem: &[u8]) -> Result<TlsClient, TlsSetupError> {
        let certs = native_tls::Certificate::stack_from_pem(pem)
            .map_err(|e| TlsSetupError::BadCertificate(e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsSetupError::BadCertificate(
                "no certificate found".to_string(),
            ));
        }
        let der = certs
            .iter()
            .map(|c| c.to_der())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsSetupError::BadCertificate(e.to_string()))?;
        Self::build(der)
    }

    fn build(extra_roots: Vec<Vec<u8>>) -> Result<TlsClient, TlsSetupError> {
        let mut builder = native_tls::TlsConnector::builder();
        for der in &extra_roots {
            let cert = native_tls::Certificate::from_der(der)
                .map_err(|e| TlsSetupError::BadCertificate(e.to_string()))?;
            builder.add_root_certificate(cert);
        }
        let connector = builder
            .build()
            .map_err(|e| TlsSetupError::Build(e.to_string()))?;
        Ok(TlsClient {
            inner: Arc::new(Inner {
                connector: connector.into(),
                extra_roots,
            }),
        })
    }

    /// Extra roots trusted besides the system's.
    pub fn extra_roots(&self) -> usize {
        self.inner.extra_roots.len()
    }

    /// Runs the handshake for `name` over `tcp`.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        name: &str,
    ) -> Result<tokio_native_tls::TlsStream<TcpStream>, native_tls::Error> {
        self.inner.connector.connect(name, tcp).await
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.extra_roots == other.inner.extra_roots
    }
}

impl Eq for TlsClient {}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("extra_roots", &self.inner.extra_roots.len())
            .finish_non_exhaustive()
    }
}

/// Builds each distinct configuration once: sites naming the same CA file (or the same
/// certificate in another file) share one [`TlsClient`].
#[derive(Debug, Default)]
pub struct TlsClients {
    by_pem: std::collections::HashMap<Vec<u8>, TlsClient>,
}

impl TlsClients {
    /// The configuration trusting the system roots plus the CA(s) in `pem`.
    pub fn with_extra_roots_pem(&mut self, pem: &[u8]) -> Result<TlsClient, TlsSetupError> {
        if let Some(client) = self.by_pem.get(pem) {
            return Ok(client.clone());
        }
        let client = TlsClient::with_extra_roots_pem(pem)?;
        // Same certificates written differently (another file, other comments): one client.
        if let Some(same) = self.by_pem.values().find(|c| **c == client) {
            let same = same.clone();
            self.by_pem.insert(pem.to_vec(), same.clone());
            return Ok(same);
        }
        self.by_pem.insert(pem.to_vec(), client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: &[u8] = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";

    #[test]
    fn system_configuration_is_built_once() {
        let a = TlsClient::system().unwrap();
        let b = TlsClient::system().unwrap();
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
        assert_eq!(a.extra_roots(), 0);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(
            TlsClient::with_extra_roots_pem(b"hello"),
            Err(TlsSetupError::BadCertificate(_))
        ));
        assert!(TlsClient::with_extra_roots_pem(BAD).is_err());
    }

    fn ca_pem(name: &str) -> String {
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn one_configuration_per_distinct_ca() {
        let (one, two) = (ca_pem("one.test"), ca_pem("two.test"));
        let mut clients = TlsClients::default();
        let a = clients.with_extra_roots_pem(one.as_bytes()).unwrap();
        let again = clients.with_extra_roots_pem(one.as_bytes()).unwrap();
        // The same certificate in a file that also has a comment.
        let commented = format!("# our CA\n{one}");
        let same = clients.with_extra_roots_pem(commented.as_bytes()).unwrap();
        let other = clients.with_extra_roots_pem(two.as_bytes()).unwrap();
        assert!(Arc::ptr_eq(&a.inner, &again.inner));
        assert!(Arc::ptr_eq(&a.inner, &same.inner));
        assert!(!Arc::ptr_eq(&a.inner, &other.inner));
        assert_ne!(a, other);
        assert_ne!(a, TlsClient::system().unwrap());
    }
}
