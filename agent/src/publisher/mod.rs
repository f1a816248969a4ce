//! Where results go: stdout (JSON lines) or Kafka.

mod kafka;
mod shipper;
mod spooled;
mod stdout;

pub use kafka::{client_config, create_topic, KafkaPublisher, KafkaStats};
pub use spooled::SpooledPublisher;
pub use stdout::StdoutPublisher;

use std::time::Duration;

use sitewatch_checks::CheckResult;

use crate::config::KafkaConfig;

/// Errors of the output.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    /// The output could not be set up.
    #[error("cannot set up output: {0}")]
    Setup(String),
    /// A result could not be encoded.
    #[error("cannot encode result for {0}")]
    Encode(String),
    /// A result could not be handed to the output.
    #[error("cannot publish result for {0}")]
    Send(String),
}

/// The configured output.
pub enum Publisher {
    /// JSON lines on stdout.
    Stdout(StdoutPublisher),
    /// A Kafka topic.
    Kafka(KafkaPublisher),
    /// A Kafka topic, through the disk spool.
    Spooled(SpooledPublisher),
}

impl Publisher {
    /// Kafka when configured (through the spool when it has one), else stdout.
    pub async fn from_config(kafka: Option<&KafkaConfig>) -> Result<Publisher, PublisherError> {
        Ok(match kafka {
            Some(k) => match &k.spool {
                Some(spool) => Publisher::Spooled(SpooledPublisher::new(k, spool).await?),
                None => Publisher::Kafka(KafkaPublisher::new(k).await?),
            },
            None => Publisher::Stdout(StdoutPublisher::new()),
        })
    }

    /// Hands one result to the output. A failure is logged and returned so the caller counts it.
    pub async fn publish(&self, result: CheckResult) -> Result<(), PublisherError> {
        match self {
            Publisher::Stdout(p) => p.publish(&result).await,
            Publisher::Kafka(p) => {
                let sent = p.publish(&result).await;
                if let Err(e) = &sent {
                    tracing::error!(error = %e, "result not published");
                }
                sent
            }
            Publisher::Spooled(p) => p.publish(&result).await,
        }
    }

    /// Called when no more results are waiting: makes what was published durable. If part
    /// of that was put off (stdout gathers lines for a few ms), returns when to call again.
    #[must_use = "a put-off flush must be called again"]
    pub fn flush(&self) -> Option<tokio::time::Instant> {
        match self {
            Publisher::Stdout(p) => p.flush(),
            Publisher::Kafka(_) => None,
            Publisher::Spooled(p) => {
                p.flush();
                None
            }
        }
    }

    /// Spool counters (`None` without a spool).
    pub fn spool_stats(&self) -> Option<std::sync::Arc<crate::spool::SpoolStats>> {
        match self {
            Publisher::Spooled(p) => Some(p.spool_stats()),
            _ => None,
        }
    }

    /// Kafka delivery counters and broker state (`None` for stdout).
    pub fn kafka_stats(&self) -> Option<std::sync::Arc<KafkaStats>> {
        match self {
            Publisher::Stdout(_) => None,
            Publisher::Kafka(p) => Some(p.stats()),
            Publisher::Spooled(p) => Some(p.stats()),
        }
    }

    /// Delivers what is still queued, waiting at most `deadline`; returns how many were left unsent.
    pub async fn close(self, deadline: Duration) -> usize {
        match self {
            Publisher::Stdout(p) => p.close(deadline).await,
            Publisher::Kafka(p) => p.close(deadline).await,
            Publisher::Spooled(p) => p.close(deadline).await,
        }
    }
}
