//! Operations surface shared by the agent and the sink: a tiny HTTP server for
//! `/healthz` and `/metrics`, lock-free metric types rendered in the Prometheus text
//! format, logging, signals and exit codes, and the units settings are written in.

mod logging;
mod metrics;
mod server;
mod signals;
pub mod units;

pub use logging::{init as init_logging, LogFormat};
pub use metrics::{Counter, Gauge, Histogram, MetricsText};
pub use server::{serve, OpsState};
pub use signals::{watch_signals, EXIT_CONFIG, EXIT_INTERRUPTED};
