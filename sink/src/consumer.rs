//! The consume → batch → store → commit loop.
//!
//! This loop consumes and decodes messages into a batch; when the batch is full (or its
//! oldest message has waited `batch_max_wait`) it goes to the writer task (`writer`), which
//! writes it in one transaction (`pipeline`) while this loop fills the next one. Should the
//! writer still be busy with the previous batch then (it is behind: a backlog), the batch
//! keeps growing until the writer is done, up to `batch_backlog_rows`. Only after
//! a batch's transaction commits are the Kafka offsets it covers committed (`flush`). When
//! PostgreSQL is down the writer retries with backoff and this loop stops one batch ahead;
//! nothing unstored is ever committed. Before partitions are revoked (rebalance) and at
//! shutdown what was consumed is stored and committed first. Every second, sites of the
//! partitions it owns and has consumed to their end are swept for locations gone silent
//! (`sweeper`), after what was consumed before is stored.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::alerts::Alerts;
use crate::config::SinkConfig;
use crate::context::SinkContext;
use crate::database::DatabaseConfigError;
use crate::decode::{decode_catalog, decode_row};
use crate::flush::{grace_after, Consumed, Store};
use crate::ops::{SinkMetrics, SinkOps};
use crate::pipeline::{Pipeline, Rejected};
use crate::sweeper::{PartitionEnds, Positions, SWEEP_EVERY};
use crate::writer::{self, Job};
use crate::{migrations, partitions, retention, rollups};

/// Most messages taken from the client's buffer at a time before the loop looks at its
/// other duties (stopping, the batch deadline, the sweep) again.
const DRAIN_AT_ONCE: usize = 1_000;

/// Longest shutdown waits for the re-pack task to cancel its statement in flight.
const REPACK_STOP_WAIT: Duration = Duration::from_secs(10);

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
    /// The schema cannot be migrated, or is newer than this build knows.
    #[error("database schema: {0}")]
    Schema(#[from] migrations::MigrationError),
    /// Results stored before rollups existed could not be rolled up.
    #[error("rollups: {0}")]
    Rollups(#[from] rollups::RebuildError),
}

/// Applies migrations, rolls up results stored before rollups existed, and runs partition
/// maintenance once.
pub async fn prepare(client: &mut Client, config: &SinkConfig) -> Result<(), SinkError> {
    migrations::migrate(client).await?;
    rollups::rebuild::run_pending(client).await?;
    maintain(client, config).await?;
    Ok(())
}

/// Creates partitions ahead and drops what is past retention.
pub(crate) async fn maintain(
    client: &mut Client,
    config: &SinkConfig,
) -> Result<(), tokio_postgres::Error> {
    partitions::create_ahead(client, config.partitions_ahead).await?;
    retention::apply(client, &config.retention(), chrono::Utc::now().date_naive()).await?;
    Ok(())
}

/// Runs until `token` is cancelled; the current batch is stored and committed before returning.
/// With `config.listen`, serves `/healthz` and `/metrics` meanwhile.
pub async fn run(config: SinkConfig, token: CancellationToken) -> Result<(), SinkError> {
    run_with(config, None, token).await
}

/// As [`run`], with an alerting policy: verdict changes write notifications in the batch
/// transaction, and a dispatcher task delivers them (it finishes its round in flight
/// before this returns).
pub async fn run_with(
    config: SinkConfig,
    alerts: Option<Arc<Alerts>>,
    token: CancellationToken,
) -> Result<(), SinkError> {
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
    let dispatcher = alerts.clone().map(|alerts| {
        tokio::spawn(crate::alerts::dispatch::run(
            db.clone(),
            alerts,
            metrics.alerts.clone(),
            token.clone(),
        ))
    });
    // Off the batch loop: a rebuild takes minutes on a big day and has its own connection.
    let repacker = config.repack_after.0.map(|grace| {
        tokio::spawn(crate::repack::run_periodically(
            db.clone(),
            grace,
            config.retention_days,
            metrics.clone(),
            token.clone(),
        ))
    });
    let pipeline = match &alerts {
        Some(alerts) => Pipeline::with_alerts(alerts.clone()),
        None => Pipeline::default(),
    };
    let store = Store {
        client,
        lanes: (1..config.write_connections.max(1)).map(|_| None).collect(),
        db,
        pipeline: Arc::new(pipeline),
        metrics: metrics.clone(),
        alerts,
    };
    let (jobs, jobs_rx) = writer::channel();
    let filling = Arc::new(Mutex::new(Consumed::default()));
    // Statistics (on in the shared settings) feed the lag gauge, Kafka readiness and
    // where partitions end.
    let ends = Arc::new(PartitionEnds::default());
    let context = SinkContext::new(
        metrics.clone(),
        filling.clone(),
        jobs.downgrade(),
        ends.clone(),
    );
    let consumer: Arc<StreamConsumer<SinkContext>> =
        Arc::new(consumer_config.create_with_context(context)?);
    let mut topics = vec![config.topic.as_str()];
    topics.extend(config.catalog_topic());
    consumer.subscribe(&topics)?;
    tracing::info!(topics = %topics.join(","), group = %config.group, "sink consuming");
    // What is being written when the sink is told to stop gets a grace period.
    let writer = tokio::spawn(writer::run(
        store,
        consumer.clone(),
        jobs_rx,
        config.clone(),
        grace_after(&token),
    ));
    let mut positions = Positions::default();
    let mut sweep_tick = tokio::time::interval(SWEEP_EVERY);
    sweep_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);

    // When the batch being filled must go to the writer at the latest (`None`: empty).
    let mut batch_deadline: Option<Instant> = None;
    // The batch being filled is due (full, or its oldest message waited long enough): it
    // goes to the writer as soon as the writer is free, and meanwhile keeps growing up to
    // `batch_backlog_rows` (a backlog is written in fewer, larger transactions).
    let mut due = false;
    let most = config.batch_backlog_rows.max(config.batch_max_rows);
    // The writer's turn: a due batch is handed over only when the writer has no batch of
    // this loop's queued or being written (the permit comes back once that one is done).
    // Until then it keeps growing: a batch waiting in the queue could not, so a backlog would
    // be written in more, smaller transactions (each costs its sites' rollup and verdict
    // rows), and it would be written no sooner.
    let turn = Arc::new(Semaphore::new(1));
    let mut messages = consumer.stream();
    loop {
        let filled = filling.lock().map_or(0, |f| f.batch.len());
        tokio::select! {
            // Handing over first: a batch due goes as soon as the writer is free, not larger.
            biased;
            _ = token.cancelled() => break,
            permit = turn.clone().acquire_owned(), if due => {
                // (Nothing to take if taken meanwhile, before a rebalance.)
                if let Ok(permit) = permit {
                    hand_over(&filling, &jobs, &metrics, Some(permit)).await;
                }
                due = false;
                batch_deadline = None;
            }
            _ = sleep_until(batch_deadline), if batch_deadline.is_some() && !due => {
                due = true;
            }
            _ = sweep_tick.tick() => {
                let owned = positions.caught_up(&*consumer, &ends, &config.topic);
                if !owned.is_empty() {
                    // Everything consumed of those partitions is stored before the sweep.
                    hand_over(&filling, &jobs, &metrics, None).await;
                    batch_deadline = None;
                    due = false;
                    send(&jobs, Job::Sweep(owned)).await;
                }
            }
            message = messages.next(), if filled < most => {
                // Then whatever the client has already fetched, without going round the
                // select for each message (at a backlog's pace that overhead counts).
                let mut next = message;
                let mut taken = 0;
                // A message is taken from the stream only to be added at once, so ending
                // the loop never drops one.
                while let Some(consumed) = next.take() {
                    taken += 1;
                    let filled = match consumed {
                        Err(e) => {
                            tracing::warn!(error = %e, "kafka consumer error");
                            break;
                        }
                        Ok(m) => {
                            if m.topic() == config.topic {
                                positions.consumed(m.partition(), m.offset());
                            }
                            let Ok(mut f) = filling.lock() else { break };
                            if f.batch.is_empty() {
                                batch_deadline = Some(Instant::now() + config.batch_max_wait);
                            }
                            add(&mut f, &m, config.catalog_topic(), &metrics);
                            due |= f.batch.len() >= config.batch_max_rows;
                            f.batch.len()
                        }
                    };
                    if due {
                        match turn.clone().try_acquire_owned() {
                            Ok(permit) => {
                                hand_over(&filling, &jobs, &metrics, Some(permit)).await;
                                due = false;
                                batch_deadline = None;
                            }
                            // The writer is busy: the batch grows, up to `most`.
                            Err(_) if filled >= most => break,
                            Err(_) => {}
                        }
                    }
                    if taken < DRAIN_AT_ONCE {
                        next = messages.next().now_or_never().flatten();
                    }
                }
            }
        }
    }

    // Shutdown: what was consumed is handed over; the writer finishes every batch it has
    // (for a while, if the database is down: then exits without committing those offsets,
    // and they will be redelivered).
    hand_over(&filling, &jobs, &metrics, None).await;
    drop(jobs);
    if let Err(e) = writer.await {
        tracing::error!(error = %e, "the batch writer failed");
    }
    if let Some(repacker) = repacker {
        // It cancels its statement in flight and returns within seconds, unless the
        // database does not answer at all.
        match tokio::time::timeout(REPACK_STOP_WAIT, repacker).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the re-pack task failed"),
            Err(_) => tracing::warn!("the re-pack task did not stop in time; leaving it"),
        }
    }
    if let Some(dispatcher) = dispatcher {
        if let Err(e) = dispatcher.await {
            tracing::error!(error = %e, "the notification dispatcher failed");
        }
    }
    tracing::info!("sink stopped");
    Ok(())
}

/// Sends the batch being filled to the writer (waiting while the writer still has one
/// queued), with the consume loop's `turn` if it is handed over in turn; nothing if it is
/// empty (the turn is then given back at once).
async fn hand_over(
    filling: &Mutex<Consumed>,
    jobs: &mpsc::Sender<Job>,
    metrics: &SinkMetrics,
    turn: Option<OwnedSemaphorePermit>,
) {
    if let Some(mut filled) = take(filling, metrics) {
        filled.turn = turn;
        send(jobs, Job::Store(filled)).await;
    }
}

/// Takes the batch being filled, unless it is empty.
fn take(filling: &Mutex<Consumed>, metrics: &SinkMetrics) -> Option<Consumed> {
    let filled = match filling.lock() {
        Ok(mut f) if !f.batch.is_empty() => std::mem::take(&mut *f),
        _ => return None,
    };
    metrics.pending.set(0);
    Some(filled)
}

/// Queues `job` for the writer.
async fn send(jobs: &mpsc::Sender<Job>, job: Job) {
    if jobs.send(job).await.is_err() {
        writer_gone();
    }
}

fn writer_gone() {
    // Only if the writer task panicked; its offsets stay uncommitted.
    tracing::error!("the batch writer has stopped; consumed messages will be redelivered");
}

/// Adds one consumed message to the batch being filled: decoded (a result, or a site
/// catalog entry from `catalog_topic`), or kept aside as rejected.
fn add(
    f: &mut Consumed,
    m: &BorrowedMessage<'_>,
    catalog_topic: Option<&str>,
    metrics: &SinkMetrics,
) {
    let partitions = match f.next_offsets.get_mut(m.topic()) {
        Some(partitions) => partitions,
        None => f.next_offsets.entry(m.topic().to_string()).or_default(),
    };
    partitions.insert(m.partition(), m.offset() + 1);
    let decoded = if Some(m.topic()) == catalog_topic {
        let timestamp = m.timestamp().to_millis();
        decode_catalog(m.key(), m.payload(), timestamp).map(|e| f.batch.catalog.push(e))
    } else {
        decode_row(m.payload(), m.partition(), m.offset()).map(|row| f.batch.rows.push(row))
    };
    match decoded {
        Ok(()) => {}
        Err(rejection) => {
            tracing::warn!(partition = m.partition(), offset = m.offset(), %rejection, "rejected message");
            f.batch.rejected.push(Rejected {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                error: rejection.to_string(),
                payload: m.payload().unwrap_or_default().to_vec(),
            });
        }
    }
    metrics.pending.set(f.batch.len() as i64);
}

/// Sleeps until `deadline` (forever without one; the select arm is disabled then).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
