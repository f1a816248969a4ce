//! The consume → batch → write → commit loop.
//!
//! A batch is written in one transaction; only after it commits are the Kafka offsets it
//! covers committed. When PostgreSQL is down the loop stops consuming and retries with
//! backoff; nothing unstored is ever committed. Before partitions are revoked (rebalance)
//! and at shutdown the current batch is stored and committed first (see `context`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::config::SinkConfig;
use crate::context::SinkContext;
use crate::database::{Database, DatabaseConfigError};
use crate::decode::decode;
use crate::ops::{SinkMetrics, SinkOps};
use crate::writer::{write_batch, Batch, Rejected, Row};
use crate::{migrations, partitions};

/// Longest pause between database retries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long shutdown (or a rebalance) keeps retrying to store the current batch.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often partitions are created ahead and old ones dropped.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Failures that stop the sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// PostgreSQL could not be reached or rejected the schema.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// The database settings cannot work (bad URL, unreadable CA file).
    #[error("database settings: {0}")]
    DbConfig(#[from] DatabaseConfigError),
    /// The `/healthz` + `/metrics` address cannot be bound.
    #[error("cannot listen on {0} for /healthz and /metrics: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    /// The Kafka consumer could not be created or subscribed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The Kafka settings do not fit together.
    #[error("kafka settings: {0}")]
    KafkaConfig(String),
}

/// Applies migrations and runs partition maintenance once.
pub async fn prepare(client: &mut Client, config: &SinkConfig) -> Result<(), SinkError> {
    migrations::migrate(client).await?;
    partitions::create_ahead(client, config.partitions_ahead).await?;
    partitions::drop_older_than(client, config.retention_days).await?;
    Ok(())
}

/// The database side of the loop: connection, how to reconnect, what to count.
pub(crate) struct Store {
    client: Client,
    db: Database,
    metrics: Arc<SinkMetrics>,
}

/// What has been consumed and not yet stored, with where to store it. Shared with the
/// consumer context, which flushes it before partitions are revoked.
pub(crate) struct Pending {
    store: Store,
    batch: Batch,
    /// Next offset to commit per partition once the batch is stored.
    next_offsets: HashMap<i32, i64>,
}

/// Runs until `token` is cancelled; the current batch is stored and committed before returning.
/// With `config.listen`, serves `/healthz` and `/metrics` meanwhile.
pub async fn run(config: SinkConfig, token: CancellationToken) -> Result<(), SinkError> {
    let config = Arc::new(config);
    // Settings that cannot work are found before anything starts.
    let consumer_config = config.consumer_config().map_err(SinkError::KafkaConfig)?;
    let metrics = Arc::new(SinkMetrics::default());
    if let Some(addr) = config.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| SinkError::Listen(addr, e))?;
        tracing::info!(%addr, "serving /healthz and /metrics");
        let stop = token.clone();
        tokio::spawn(sitewatch_checks::ops::serve(
            listener,
            Arc::new(SinkOps(metrics.clone())),
            async move { stop.cancelled().await },
        ));
    }
    let db = config.database()?;
    let Some(mut client) = db.connect(&token).await else {
        return Ok(());
    };
    prepare(&mut client, &config).await?;
    metrics.db_up.store(true, Ordering::Relaxed);
    let pending = Arc::new(Mutex::new(Pending {
        store: Store {
            client,
            db,
            metrics: metrics.clone(),
        },
        batch: Batch::default(),
        next_offsets: HashMap::new(),
    }));
    // Statistics (on in the shared settings) feed the lag gauge and Kafka readiness.
    let consumer: StreamConsumer<SinkContext> = consumer_config
        .create_with_context(SinkContext::new(metrics, pending.clone(), config.clone()))?;
    consumer.subscribe(&[&config.topic])?;
    tracing::info!(topic = %config.topic, group = %config.group, "sink consuming");

    // When the current batch must be written at the latest (`None`: no batch).
    let mut batch_deadline: Option<Instant> = None;
    // `prepare` just did this round of maintenance.
    let mut maintenance =
        tokio::time::interval_at(Instant::now() + MAINTENANCE_EVERY, MAINTENANCE_EVERY);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = maintenance.tick() => {
                let client = &mut pending.lock().await.store.client;
                if let Err(e) = partitions::create_ahead(client, config.partitions_ahead).await {
                    tracing::warn!(error = %e, "partition maintenance failed");
                }
                if let Err(e) = partitions::drop_older_than(client, config.retention_days).await {
                    tracing::warn!(error = %e, "retention failed");
                }
            }
            _ = sleep_until(batch_deadline), if batch_deadline.is_some() => {
                flush(&mut *pending.lock().await, &config, &consumer, &token).await;
                batch_deadline = None;
            }
            message = consumer.recv() => match message {
                Err(e) => tracing::warn!(error = %e, "kafka consumer error"),
                Ok(m) => {
                    let mut p = pending.lock().await;
                    if p.batch.is_empty() {
                        batch_deadline = Some(Instant::now() + config.batch_max_wait);
                    }
                    p.next_offsets.insert(m.partition(), m.offset() + 1);
                    match decode(m.payload()) {
                        Ok(result) => p.batch.rows.push(Row { partition: m.partition(), offset: m.offset(), result }),
                        Err(rejection) => {
                            tracing::warn!(partition = m.partition(), offset = m.offset(), %rejection, "rejected message");
                            p.batch.rejected.push(Rejected {
                                topic: m.topic().to_string(),
                                partition: m.partition(),
                                offset: m.offset(),
                                error: rejection.to_string(),
                                payload: m.payload().unwrap_or_default().to_vec(),
                            });
                        }
                    }
                    p.store.metrics.pending.set(p.batch.len() as i64);
                    if p.batch.len() >= config.batch_max_rows {
                        flush(&mut p, &config, &consumer, &token).await;
                        batch_deadline = None;
                    }
                }
            },
        }
    }
    // Shutdown: keep trying to store what was consumed for a while; if the database stays
    // down, exit without committing those offsets (they will be redelivered).
    flush(
        &mut *pending.lock().await,
        &config,
        &consumer,
        &grace_token(),
    )
    .await;
    tracing::info!("sink stopped");
    Ok(())
}

/// Sleeps until `deadline` (forever without one; the select arm is disabled then).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A token cancelled after [`SHUTDOWN_GRACE`]: bounds a last flush while the database is down.
pub(crate) fn grace_token() -> CancellationToken {
    let grace = CancellationToken::new();
    let expire = grace.clone();
    tokio::spawn(async move {
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        expire.cancel();
    });
    grace
}

/// Writes the pending batch (retrying while the database is down, until `token` is
/// cancelled), then commits its offsets. An empty batch is a no-op.
pub(crate) async fn flush<C: Consumer<SinkContext>>(
    pending: &mut Pending,
    config: &SinkConfig,
    consumer: &C,
    token: &CancellationToken,
) {
    if pending.batch.is_empty() {
        return;
    }
    let Pending {
        store,
        batch,
        next_offsets,
    } = pending;
    let mut backoff = Duration::from_millis(200);
    let m = store.metrics.clone();
    loop {
        let started = Instant::now();
        match write_batch(&mut store.client, batch).await {
            Ok(stats) => {
                tracing::debug!(?stats, messages = batch.len(), "batch stored");
                m.db_up.store(true, Ordering::Relaxed);
                m.batches.inc();
                if stats.rewritten {
                    m.rewrites.inc();
                }
                m.batch_duration.observe(started.elapsed().as_secs_f64());
                m.rows_written.add(stats.inserted);
                m.duplicates
                    .add((batch.rows.len() as u64).saturating_sub(stats.inserted));
                m.rejected.add(stats.rejected);
                break;
            }
            Err(e) => {
                m.db_up.store(false, Ordering::Relaxed);
                m.db_errors.inc();
                tracing::warn!(error = %e, messages = batch.len(), retry_in = ?backoff, "cannot store batch; not consuming until it is stored");
                if store.client.is_closed() {
                    match store.db.connect(token).await {
                        Some(c) => store.client = c,
                        None => return,
                    }
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, next) in next_offsets.drain() {
        if let Err(e) = offsets.add_partition_offset(&config.topic, partition, Offset::Offset(next))
        {
            tracing::warn!(error = %e, "cannot record offset");
        }
    }
    // Stored but not committed is safe: a redelivery is an idempotent no-op.
    if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
        tracing::warn!(error = %e, "offset commit failed; messages will be redelivered and skipped as duplicates");
    }
    *batch = Batch::default();
    m.pending.set(0);
}
