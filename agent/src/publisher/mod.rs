//! Where results go: stdout (JSON lines) or Kafka.

mod stdout;

pub use stdout::StdoutPublisher;

use std::time::Duration;

use sitewatch_checks::CheckResult;

/// Errors setting up a publisher.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    /// The output could not be set up.
    #[error("cannot set up output: {0}")]
    Setup(String),
}

/// The configured output.
pub enum Publisher {
    /// JSON lines on stdout.
    Stdout(StdoutPublisher),
}

impl Publisher {
    /// Hands one result to the output. Never drops it silently: failures are logged and counted.
    pub async fn publish(&self, result: CheckResult) {
        match self {
            Publisher::Stdout(p) => p.publish(&result).await,
        }
    }

    /// Delivers what is still queued, waiting at most `deadline`; returns how many were left unsent.
    pub async fn close(self, deadline: Duration) -> usize {
        match self {
            Publisher::Stdout(p) => p.close(deadline).await,
        }
    }
}
