//! Name resolution for the probe: the injectable [`Resolve`] trait and the
//! system resolver used by default.

use std::net::SocketAddr;

use futures::future::BoxFuture;

/// Resolves a host name to socket addresses. Injectable so tests (and special
/// deployments) can map names without touching the system resolver.
pub trait Resolve: Send + Sync {
    /// Addresses for `host:port`, in the order they should be tried.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (`getaddrinfo` via tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let target = format!("{host}:{port}");
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target).await?.collect();
            Ok(addrs)
        })
    }
}
