//! The Kafka consumer's context: librdkafka logs go through the shared [`KafkaLog`],
//! statistics become the lag gauge, broker readiness and where partitions end (for the
//! sweep), and before partitions are revoked the pending batch is stored and its
//! offsets committed, so the next owner does not redo that work.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Statistics};
use sitewatch_checks::kafka::{broker_up, consumer_lag, KafkaLog};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Mutex;

use crate::flush::{flush, grace_token, Pending};
use crate::ops::SinkMetrics;
use crate::sweeper::PartitionEnds;

/// Context of the sink's consumer.
pub struct SinkContext {
    log: KafkaLog,
    metrics: Arc<SinkMetrics>,
    pending: Arc<Mutex<Pending>>,
    ends: Arc<PartitionEnds>,
}

impl SinkContext {
    pub(crate) fn new(
        metrics: Arc<SinkMetrics>,
        pending: Arc<Mutex<Pending>>,
        ends: Arc<PartitionEnds>,
    ) -> Self {
        SinkContext {
            log: KafkaLog::default(),
            metrics,
            pending,
            ends,
        }
    }
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        self.metrics
            .kafka_up
            .store(broker_up(&statistics), Ordering::Relaxed);
        self.metrics.lag.set(consumer_lag(&statistics));
        self.ends.update(&statistics);
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ConsumerContext for SinkContext {
    /// Runs inside the consumer's poll, on the task awaiting `recv`. Storing needs the
    /// async database client, so the task steps out of the runtime (`block_in_place`)
    /// while it waits; that needs the multi-thread runtime the binary uses. Otherwise,
    /// or if the batch is being written right now, the batch is simply redelivered to the
    /// next owner, which the idempotent insert makes harmless.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Revoke(_)) {
            return;
        }
        let Ok(mut pending) = self.pending.try_lock() else {
            return;
        };
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            tracing::debug!("partitions revoked: pending batch left for redelivery");
            return;
        }
        tracing::info!("partitions revoked: storing the pending batch first");
        tokio::task::block_in_place(|| {
            handle.block_on(flush(&mut pending, consumer, &grace_token()))
        });
    }
}
