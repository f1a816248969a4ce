//! Support shared by the integration tests of every crate: a real Kafka-protocol broker
//! (Tansu via `scripts/kafka-dev`), free loopback ports, sample results, and real local
//! receivers of notifications (HTTP, SMTP, Debian's Alertmanager), `/metrics` values.
//! Test code: it panics on failure, which is how a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod alertmanager;
pub mod broker;
pub mod browser;
pub mod db;
pub mod fixtures;
pub mod forward;
pub mod fuzz;
pub mod http;
pub mod link;
pub mod metrics;
pub mod pg_cluster;
pub mod plugins;
pub mod receiver;
pub mod site;
pub mod smtp;

/// A loopback TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
