//! The Kafka consumer's context: librdkafka statistics become the lag gauge and broker
//! readiness, and before partitions are revoked the pending batch is stored and its
//! offsets committed, so the next owner does not redo that work.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Statistics};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Mutex;

use crate::config::SinkConfig;
use crate::flush::{flush, grace_token, Pending};
use crate::ops::SinkMetrics;

/// Context of the sink's consumer.
pub struct SinkContext {
    metrics: Arc<SinkMetrics>,
    pending: Arc<Mutex<Pending>>,
    config: Arc<SinkConfig>,
}

impl SinkContext {
    pub(crate) fn new(
        metrics: Arc<SinkMetrics>,
        pending: Arc<Mutex<Pending>>,
        config: Arc<SinkConfig>,
    ) -> Self {
        SinkContext {
            metrics,
            pending,
            config,
        }
    }
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        let up = statistics
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        self.metrics.kafka_up.store(up, Ordering::Relaxed);
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.desired)
            .map(|p| p.consumer_lag.max(0))
            .sum();
        self.metrics.lag.set(lag);
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
            handle.block_on(flush(
                &mut pending,
                &self.config.topic,
                consumer,
                &grace_token(),
            ))
        });
    }
}
