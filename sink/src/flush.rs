//! Storing what has been consumed: a batch is written by the [`Pipeline`] (retrying while
//! the database is down) and only then are its Kafka offsets committed. Used by the writer
//! task (`writer`), which gets batches from the consume loop (`consumer`) and, before
//! partitions are revoked, from the consumer context (`context`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::database::Database;
use crate::ops::SinkMetrics;
use crate::pipeline::{Batch, Pipeline, WriteStats};

/// Longest pause between database retries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long shutdown (or a rebalance) keeps retrying to store what was consumed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The database side of the loop: connection, how to reconnect, what to run, what to count.
pub(crate) struct Store {
    pub(crate) client: Client,
    pub(crate) db: Database,
    pub(crate) pipeline: Pipeline,
    pub(crate) metrics: Arc<SinkMetrics>,
    /// The alerting policy, for the sweep's notifications.
    pub(crate) alerts: Option<Arc<crate::alerts::Alerts>>,
}

/// Consumed messages not yet stored: a batch and the offsets to commit once it is.
#[derive(Debug, Default)]
pub(crate) struct Consumed {
    pub(crate) batch: Batch,
    /// Next offset to commit per (topic, partition) once the batch is stored.
    pub(crate) next_offsets: HashMap<(String, i32), i64>,
}

impl Store {
    /// Writes `consumed`'s batch (retrying while the database is down, until `token` is
    /// cancelled), then commits its offsets; false if it gave up (nothing committed: the
    /// batch will be redelivered). An empty batch is a no-op.
    pub(crate) async fn store_and_commit<C, X>(
        &mut self,
        consumed: Consumed,
        consumer: &C,
        token: &CancellationToken,
    ) -> bool
    where
        C: Consumer<X>,
        X: ConsumerContext,
    {
        if consumed.batch.is_empty() {
            return true;
        }
        if !self.write_until_stored(&consumed.batch, token).await {
            return false;
        }
        commit_offsets(consumer, consumed.next_offsets.into_iter());
        true
    }

    /// Writes `batch`, reconnecting and retrying with backoff on failure; false if `token`
    /// was cancelled first.
    async fn write_until_stored(&mut self, batch: &Batch, token: &CancellationToken) -> bool {
        let mut backoff = Duration::from_millis(200);
        loop {
            let started = Instant::now();
            match self.pipeline.write(&mut self.client, batch).await {
                Ok(stats) => {
                    tracing::debug!(?stats, messages = batch.len(), "batch stored");
                    record(&self.metrics, &stats, batch, started.elapsed());
                    return true;
                }
                Err(e) => {
                    self.metrics.db_up.store(false, Ordering::Relaxed);
                    self.metrics.db_errors.inc();
                    tracing::warn!(error = %e, messages = batch.len(), retry_in = ?backoff, "cannot store batch; consuming pauses (one batch ahead) until it is stored");
                    if self.client.is_closed() {
                        match self.db.connect(token).await {
                            Some(c) => self.client = c,
                            None => return false,
                        }
                    }
                    tokio::select! {
                        _ = token.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Counts a stored batch.
fn record(m: &SinkMetrics, stats: &WriteStats, batch: &Batch, took: Duration) {
    m.db_up.store(true, Ordering::Relaxed);
    m.batches.inc();
    if stats.rewritten {
        m.rewrites.inc();
    }
    m.batch_duration.observe(took.as_secs_f64());
    m.rows_written.add(stats.inserted);
    m.duplicates
        .add((batch.rows.len() as u64).saturating_sub(stats.inserted));
    m.rejected.add(stats.rejected);
    m.catalog_conflicts.add(stats.catalog_conflicts);
    m.events.add(stats.step("verdicts"));
}

/// Commits `next` offsets per (topic, partition). Stored but not committed is safe: a
/// redelivery is an idempotent no-op.
fn commit_offsets<C, X>(consumer: &C, next: impl Iterator<Item = ((String, i32), i64)>)
where
    C: Consumer<X>,
    X: ConsumerContext,
{
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), next) in next {
        if let Err(e) = offsets.add_partition_offset(&topic, partition, Offset::Offset(next)) {
            tracing::warn!(error = %e, "cannot record offset");
        }
    }
    if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
        tracing::warn!(error = %e, "offset commit failed; messages will be redelivered and skipped as duplicates");
    }
}

/// A token cancelled [`SHUTDOWN_GRACE`] after `token` is: what is being stored when the sink
/// is told to stop (and what was consumed before) gets that long, if the database is down.
pub(crate) fn grace_after(token: &CancellationToken) -> CancellationToken {
    let grace = CancellationToken::new();
    let (expire, stop) = (grace.clone(), token.clone());
    tokio::spawn(async move {
        stop.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        expire.cancel();
    });
    grace
}
