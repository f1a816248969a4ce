//! The Kafka consumer's context: librdkafka logs go through the shared [`KafkaLog`],
//! statistics become the lag gauge, broker readiness and where partitions end (for the
//! sweep), and before partitions are revoked everything consumed is stored and its offsets
//! committed, so the next owner does not redo that work.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Statistics};
use sitewatch_checks::kafka::{broker_up, consumer_lag, KafkaLog};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{mpsc, oneshot};

use crate::flush::{Consumed, SHUTDOWN_GRACE};
use crate::ops::SinkMetrics;
use crate::sweeper::PartitionEnds;
use crate::writer::Job;

/// Context of the sink's consumer.
pub struct SinkContext {
    log: KafkaLog,
    metrics: Arc<SinkMetrics>,
    /// The batch the consume loop is filling.
    filling: Arc<Mutex<Consumed>>,
    /// The writer's channel while the consume loop runs (weak: the writer stops once the
    /// consume loop has dropped its sender, and the consumer outlives that).
    jobs: mpsc::WeakSender<Job>,
    ends: Arc<PartitionEnds>,
}

impl SinkContext {
    pub(crate) fn new(
        metrics: Arc<SinkMetrics>,
        filling: Arc<Mutex<Consumed>>,
        jobs: mpsc::WeakSender<Job>,
        ends: Arc<PartitionEnds>,
    ) -> Self {
        SinkContext {
            log: KafkaLog::default(),
            metrics,
            filling,
            jobs,
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
    /// Runs inside the consumer's poll, on the task awaiting `recv`. The batch being filled
    /// goes to the writer, and this waits until the writer has stored and committed it and
    /// everything handed over before it (at most [`SHUTDOWN_GRACE`]). Waiting needs the task
    /// to step out of the runtime (`block_in_place`), which needs the multi-thread runtime
    /// the binary uses. Otherwise, once the consume loop has stopped, or while the database
    /// is down, what is not committed yet is redelivered to the next owner (and still stored
    /// here when it can be), which the idempotent insert makes harmless.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Revoke(_)) {
            return;
        }
        let Some(jobs) = self.jobs.upgrade() else {
            return;
        };
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            tracing::debug!("partitions revoked: what was consumed is left for redelivery");
            return;
        }
        let Ok(mut filling) = self.filling.lock() else {
            return;
        };
        tracing::info!("partitions revoked: storing what was consumed first");
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let stored = tokio::task::block_in_place(|| {
            handle.block_on(async {
                if !filling.batch.is_empty() {
                    let job = Job::Store(std::mem::take(&mut *filling));
                    if let Err(e) = jobs.send_timeout(job, SHUTDOWN_GRACE).await {
                        // Kept, to be handed over later: messages of partitions this sink
                        // keeps are not consumed again, so they must not be dropped.
                        if let SendTimeoutError::Timeout(Job::Store(back))
                        | SendTimeoutError::Closed(Job::Store(back)) = e
                        {
                            *filling = back;
                        }
                        return false;
                    }
                    self.metrics.pending.set(0);
                }
                let (done, answer) = oneshot::channel();
                let handed_over = async {
                    jobs.send(Job::Barrier(done)).await.ok()?;
                    answer.await.ok()
                };
                matches!(
                    tokio::time::timeout_at(deadline, handed_over).await,
                    Ok(Some(()))
                )
            })
        });
        if !stored {
            tracing::warn!("partitions revoked before what was consumed was stored; the next owner may get some of it again");
        }
    }
}
