//! Storing what has been consumed: a batch is written by the [`Pipeline`] (retrying while
//! the database is down) and only then are its Kafka offsets committed. Used by the writer
//! task (`writer`), which gets batches from the consume loop (`consumer`) and, before
//! partitions are revoked, from the consumer context (`context`). A large batch is written
//! in parts split by site, each on its own connection at the same time
//! (`--write-connections`): a backlog is drained on more than one of the database's cores.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::database::Database;
use crate::ops::SinkMetrics;
use crate::pipeline::{Batch, Pipeline, WriteStats};

/// Longest pause between database retries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Fewest results in each part of a batch written in parts over several connections.
const MIN_PART_ROWS: usize = 1000;
/// How long shutdown (or a rebalance) keeps retrying to store what was consumed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The database side of the loop: connection, how to reconnect, what to run, what to count.
pub(crate) struct Store {
    pub(crate) client: Client,
    /// Connections for the other parts of a batch written in parts (see [`Store::parts`]):
    /// `None` until first needed.
    pub(crate) lanes: Vec<Option<Client>>,
    pub(crate) db: Database,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) metrics: Arc<SinkMetrics>,
    /// The alerting policy, for the sweep's notifications.
    pub(crate) alerts: Option<Arc<crate::alerts::Alerts>>,
}

/// Consumed messages not yet stored: a batch and the offsets to commit once it is.
#[derive(Debug, Default)]
pub(crate) struct Consumed {
    pub(crate) batch: Batch,
    /// Next offset to commit per topic and partition once the batch is stored (by topic
    /// first: a message's topic is then looked up without allocating its name).
    pub(crate) next_offsets: HashMap<String, HashMap<i32, i64>>,
    /// The consume loop's turn to hand over a batch, held until this one is done (`None`
    /// for a batch handed over out of turn: at a rebalance, a sweep or shutdown).
    pub(crate) turn: Option<OwnedSemaphorePermit>,
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
        let parts = self.parts(consumed.batch.rows.len());
        let stored = if parts < 2 {
            let stored = self.write_first(&consumed.batch, token).await;
            stored.is_some()
        } else {
            self.metrics.split_batches.inc();
            self.write_in_parts(consumed.batch, parts, token).await
        };
        if !stored {
            return false;
        }
        commit_offsets(consumer, &consumed.next_offsets);
        true
    }

    /// Writes `batch` on the first connection (see [`write_until_stored`]).
    async fn write_first(
        &mut self,
        batch: &Batch,
        token: &CancellationToken,
    ) -> Option<WriteStats> {
        write_until_stored(
            &self.pipeline,
            &self.db,
            &self.metrics,
            &mut self.client,
            batch,
            token,
        )
        .await
    }

    /// Into how many parts a batch of `rows` results is written: one per connection, but
    /// parts of at least [`MIN_PART_ROWS`] (a small batch is one transaction).
    fn parts(&self, rows: usize) -> usize {
        (1 + self.lanes.len()).min(rows / MIN_PART_ROWS).max(1)
    }

    /// Writes `batch` split by site into `parts`, each in its own transaction on its own
    /// connection, at the same time; true once every part is stored. Parts touch disjoint
    /// sites, so they never wait for each other's row locks, and each part's steps see what
    /// the whole batch's would for its sites. A part stored while another is given up on is
    /// redelivered with it (no offset is committed) and then skipped as already stored.
    async fn write_in_parts(
        &mut self,
        batch: Batch,
        parts: usize,
        token: &CancellationToken,
    ) -> bool {
        // Partitions first, once: parts creating the same one at the same time would collide.
        let days = batch.rows.iter().map(|r| r.result.started_at.date_naive());
        if let Err(e) = crate::partitions::ensure_days(&mut self.client, days).await {
            tracing::debug!(error = %e, "cannot create partitions ahead of a batch in parts");
        }
        let mut split = batch.split_by_site(parts).into_iter();
        let first = split.next().unwrap_or_default();
        let others: Vec<_> = split
            .zip(self.lanes.iter_mut())
            .map(|(part, lane)| {
                let (pipeline, db, metrics) =
                    (self.pipeline.clone(), self.db.clone(), self.metrics.clone());
                let (lane_taken, token) = (lane.take(), token.clone());
                tokio::spawn(async move {
                    let mut client = match lane_taken {
                        Some(client) if !client.is_closed() => client,
                        _ => match db.connect_once().await {
                            Ok(client) => client,
                            // A database at its connection limit still takes the batch, on
                            // the first connection: slower, not stuck.
                            Err(e) => {
                                tracing::warn!(
                                    error = %sitewatch_checks::causes::chain(&e),
                                    "cannot open another database connection for a part of a batch; the first connection writes it"
                                );
                                return Lane::Unwritten(part);
                            }
                        },
                    };
                    let stored =
                        write_until_stored(&pipeline, &db, &metrics, &mut client, &part, &token)
                            .await
                            .is_some();
                    Lane::Done { client, stored }
                })
            })
            .collect();
        let (first_stored, others) = tokio::join!(
            self.write_first(&first, token),
            futures::future::join_all(others)
        );
        let mut stored = first_stored.is_some();
        let mut unwritten = Vec::new();
        for (lane, done) in self.lanes.iter_mut().zip(others) {
            match done {
                Ok(Lane::Done {
                    client,
                    stored: part_stored,
                }) => {
                    *lane = Some(client);
                    stored &= part_stored;
                }
                Ok(Lane::Unwritten(part)) => unwritten.push(part),
                Err(e) => {
                    tracing::error!(error = %e, "writing a part of a batch failed");
                    stored = false;
                }
            }
        }
        for part in unwritten {
            if !stored {
                break;
            }
            stored = self.write_first(&part, token).await.is_some();
        }
        stored
    }
}

/// How a part handed to another connection ended.
enum Lane {
    /// Stored (or given up on: `stored` is false); the connection goes back to its lane.
    Done { client: Client, stored: bool },
    /// No connection could be opened for it: the first connection writes it after its own.
    Unwritten(Batch),
}

/// Writes `batch` on `client`, reconnecting and retrying with backoff on failure; `None` if
/// `token` was cancelled first.
async fn write_until_stored(
    pipeline: &Pipeline,
    db: &Database,
    metrics: &SinkMetrics,
    client: &mut Client,
    batch: &Batch,
    token: &CancellationToken,
) -> Option<WriteStats> {
    if batch.is_empty() {
        return Some(WriteStats::default());
    }
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = Instant::now();
        match pipeline.write(client, batch).await {
            Ok(stats) => {
                tracing::debug!(?stats, messages = batch.len(), "batch stored");
                record(metrics, &stats, batch, started.elapsed());
                return Some(stats);
            }
            Err(e) => {
                metrics.db_up.store(false, Ordering::Relaxed);
                metrics.db_errors.inc();
                tracing::warn!(error = %e, messages = batch.len(), retry_in = ?backoff, "cannot store batch; consuming pauses (one batch ahead) until it is stored");
                if client.is_closed() {
                    *client = db.connect(token).await?;
                }
                tokio::select! {
                    _ = token.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
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
fn commit_offsets<C, X>(consumer: &C, next: &HashMap<String, HashMap<i32, i64>>)
where
    C: Consumer<X>,
    X: ConsumerContext,
{
    let mut offsets = TopicPartitionList::new();
    for (topic, partitions) in next {
        for (&partition, &next) in partitions {
            if let Err(e) = offsets.add_partition_offset(topic, partition, Offset::Offset(next)) {
                tracing::warn!(error = %e, "cannot record offset");
            }
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
