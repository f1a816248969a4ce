//! The consume → batch → write → commit loop.
//!
//! A batch is written in one transaction; only after it commits are the Kafka offsets it
//! covers committed. When PostgreSQL is down the loop stops consuming and retries with
//! backoff; nothing unstored is ever committed. On a rebalance the in-memory batch may be
//! redelivered to another sink: the idempotent insert makes that harmless.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::config::SinkConfig;
use crate::database::{Database, DatabaseConfigError};
use crate::decode::decode;
use crate::writer::{write_batch, Batch, Rejected, Row};
use crate::{migrations, partitions};

/// Longest pause between database retries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long shutdown keeps retrying to store the last batch.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
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
    /// The Kafka consumer could not be created or subscribed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// Applies migrations and runs partition maintenance once.
pub async fn prepare(client: &mut Client, config: &SinkConfig) -> Result<(), SinkError> {
    migrations::migrate(client).await?;
    partitions::create_ahead(client, config.partitions_ahead).await?;
    partitions::drop_older_than(client, config.retention_days).await?;
    Ok(())
}

/// Runs until `token` is cancelled; the current batch is stored and committed before returning.
pub async fn run(config: SinkConfig, token: CancellationToken) -> Result<(), SinkError> {
    let db = config.database()?;
    let Some(mut client) = db.connect(&token).await else {
        return Ok(());
    };
    prepare(&mut client, &config).await?;
    let consumer: StreamConsumer = config.consumer_config().create()?;
    consumer.subscribe(&[&config.topic])?;
    tracing::info!(topic = %config.topic, group = %config.group, "sink consuming");

    let mut batch = Batch::default();
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    let mut batch_deadline = Instant::now() + config.batch_max_wait;
    // `prepare` just did this round of maintenance.
    let mut maintenance =
        tokio::time::interval_at(Instant::now() + MAINTENANCE_EVERY, MAINTENANCE_EVERY);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = maintenance.tick() => {
                if let Err(e) = partitions::create_ahead(&mut client, config.partitions_ahead).await {
                    tracing::warn!(error = %e, "partition maintenance failed");
                }
                if let Err(e) = partitions::drop_older_than(&mut client, config.retention_days).await {
                    tracing::warn!(error = %e, "retention failed");
                }
            }
            _ = tokio::time::sleep_until(batch_deadline), if !batch.is_empty() => {
                flush(&mut client, &db, &config, &consumer, &mut batch, &mut next_offsets, &token).await;
            }
            message = consumer.recv() => match message {
                Err(e) => tracing::warn!(error = %e, "kafka consumer error"),
                Ok(m) => {
                    if batch.is_empty() {
                        batch_deadline = Instant::now() + config.batch_max_wait;
                    }
                    next_offsets.insert(m.partition(), m.offset() + 1);
                    match decode(m.payload()) {
                        Ok(result) => batch.rows.push(Row { partition: m.partition(), offset: m.offset(), result }),
                        Err(rejection) => {
                            tracing::warn!(partition = m.partition(), offset = m.offset(), %rejection, "rejected message");
                            batch.rejected.push(Rejected {
                                topic: m.topic().to_string(),
                                partition: m.partition(),
                                offset: m.offset(),
                                error: rejection.to_string(),
                                payload: m.payload().unwrap_or_default().to_vec(),
                            });
                        }
                    }
                    if batch.len() >= config.batch_max_rows {
                        flush(&mut client, &db, &config, &consumer, &mut batch, &mut next_offsets, &token).await;
                    }
                }
            },
        }
    }
    if !batch.is_empty() {
        // Shutdown: keep trying to store what was consumed for a while; if the database stays
        // down, exit without committing those offsets (they will be redelivered).
        let grace = CancellationToken::new();
        let expire = grace.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            expire.cancel();
        });
        flush(
            &mut client,
            &db,
            &config,
            &consumer,
            &mut batch,
            &mut next_offsets,
            &grace,
        )
        .await;
    }
    tracing::info!("sink stopped");
    Ok(())
}

/// Writes the batch (retrying while the database is down), then commits its offsets.
async fn flush(
    client: &mut Client,
    db: &Database,
    config: &SinkConfig,
    consumer: &StreamConsumer,
    batch: &mut Batch,
    next_offsets: &mut HashMap<i32, i64>,
    token: &CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match write_batch(client, batch).await {
            Ok(stats) => {
                tracing::debug!(?stats, messages = batch.len(), "batch stored");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = batch.len(), retry_in = ?backoff, "cannot store batch; not consuming until it is stored");
                if client.is_closed() {
                    match db.connect(token).await {
                        Some(c) => *client = c,
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
}
