//! Operations surface shared by the agent and the sink: a tiny HTTP server for
//! `/healthz` and `/metrics`, and lock-free metric types rendered in the
//! Prometheus text format.

mod logging;
mod metrics;
mod server;

pub use logging::{init as init_logging, LogFormat};
pub use metrics::{Counter, Gauge, Histogram, MetricsText};
pub use server::{serve, OpsState};
