//! Kafka output through the disk spool. Results are appended to the spool; one shipper
//! task sends them to Kafka in spool order and confirms each in the spool when the broker
//! acknowledges it. Failed deliveries are sent again from the spool, in order, after a
//! backoff; whatever is unconfirmed at exit stays on disk for the next start.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sitewatch_checks::CheckResult;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::kafka::{encode, KafkaPublisher};
use super::shipper::Shipper;
use super::{KafkaStats, PublisherError};
use crate::config::KafkaConfig;
use crate::spool::{self, SpoolAcks, SpoolSettings, SpoolStats, SpoolWriter};

/// Results appended before the spool is flushed even if more are waiting.
const FLUSH_EVERY: usize = 256;

/// Publishes results to Kafka through the spool.
pub struct SpooledPublisher {
    kafka: Arc<KafkaPublisher>,
    writer: Mutex<SpoolWriter>,
    acks: SpoolAcks,
    /// Tells the shipper to finish by the given time.
    stop: oneshot::Sender<Instant>,
    shipper: tokio::task::JoinHandle<()>,
}

impl SpooledPublisher {
    /// Opens the spool (replaying what it holds first) and starts the shipper.
    pub async fn new(
        config: &KafkaConfig,
        settings: &SpoolSettings,
    ) -> Result<SpooledPublisher, PublisherError> {
        let (writer, reader, acks) =
            spool::open(settings).map_err(|e| PublisherError::Setup(e.to_string()))?;
        tracing::info!(dir = %settings.dir.display(), max_bytes = settings.max_bytes, "results are spooled to disk until kafka confirms them");
        let kafka = Arc::new(KafkaPublisher::new(config).await?);
        let (stop, stop_rx) = oneshot::channel();
        let shipper = Shipper::new(kafka.clone(), reader, acks.clone());
        Ok(SpooledPublisher {
            kafka,
            writer: Mutex::new(writer),
            acks,
            stop,
            shipper: tokio::spawn(shipper.run(stop_rx)),
        })
    }

    /// Appends a result to the spool (visible to the shipper at the next [`flush`](Self::flush)).
    /// If the spool cannot be written (disk full), the result goes straight to Kafka.
    pub async fn publish(&self, result: &CheckResult) -> Result<(), PublisherError> {
        let payload = encode(result)?;
        let appended = {
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            writer
                .append(result.site.as_bytes(), &payload)
                .and_then(|_| {
                    // Under sustained load the queue never runs empty: flush every so often too.
                    if writer.unflushed() >= FLUSH_EVERY {
                        writer.flush()
                    } else {
                        Ok(())
                    }
                })
        };
        if let Err(e) = appended {
            tracing::error!(error = %e, "cannot write to the spool: sending the result straight to kafka");
            return self.kafka.publish(result).await;
        }
        Ok(())
    }

    /// Makes appended results durable against a process crash and wakes the shipper.
    pub fn flush(&self) {
        let flushed = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush();
        if let Err(e) = flushed {
            tracing::error!(error = %e, "cannot flush the spool");
        }
    }

    /// Delivery counters.
    pub fn stats(&self) -> Arc<KafkaStats> {
        self.kafka.stats()
    }

    /// Spool counters.
    pub fn spool_stats(&self) -> Arc<SpoolStats> {
        self.acks.stats()
    }

    /// Syncs the spool, lets the shipper deliver for up to `deadline`, and records what was
    /// confirmed. Unconfirmed results stay in the spool, so nothing counts as lost.
    pub async fn close(self, deadline: Duration) -> usize {
        if let Err(e) = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .close()
        {
            tracing::error!(error = %e, "cannot sync the spool at shutdown");
        }
        let _ = self.stop.send(Instant::now() + deadline);
        if let Err(e) = self.shipper.await {
            tracing::error!(error = %e, "spool shipper failed");
        }
        if let Err(e) = self.acks.persist() {
            tracing::error!(error = %e, "cannot record the confirmed spool position");
        }
        let stats = self.kafka.stats();
        let backlog = self.acks.backlog();
        if backlog > 0 {
            tracing::warn!(backlog, "results kafka has not confirmed stay in the spool: they are sent at the next start");
        }
        tracing::info!(
            delivered = stats.delivered.load(Ordering::Relaxed),
            backlog,
            "kafka publisher closed"
        );
        0
    }
}
