//! The consume → batch → store → commit loop.
//!
//! A batch is written in one transaction (`pipeline`); only after it commits are the Kafka
//! offsets it covers committed (`flush`). When PostgreSQL is down the loop stops consuming
//! and retries with backoff; nothing unstored is ever committed. Before partitions are
//! revoked (rebalance) and at shutdown the current batch is stored and committed first.
//! Every second, sites of the partitions it owns and has consumed to their end are swept
//! for locations gone silent (`sweeper`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use tokio::sync::Mutex;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::alerts::Alerts;
use crate::config::SinkConfig;
use crate::context::SinkContext;
use crate::database::DatabaseConfigError;
use crate::decode::{decode_catalog, decode_row};
use crate::flush::{flush, grace_token, Pending, Store};
use crate::ops::{SinkMetrics, SinkOps};
use crate::pipeline::{Pipeline, Rejected};
use crate::sweeper::{PartitionEnds, Positions, SWEEP_EVERY};
use crate::{migrations, partitions, retention, rollups, verdicts};

/// How often partitions are created ahead and what is past retention dropped.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

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
async fn maintain(client: &mut Client, config: &SinkConfig) -> Result<(), tokio_postgres::Error> {
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
    let pending = Arc::new(Mutex::new(Pending::new(Store {
        client,
        db,
        pipeline,
        metrics: metrics.clone(),
        alerts,
    })));
    // Statistics (on in the shared settings) feed the lag gauge, Kafka readiness and
    // where partitions end.
    let ends = Arc::new(PartitionEnds::default());
    let context = SinkContext::new(metrics.clone(), pending.clone(), ends.clone());
    let consumer: StreamConsumer<SinkContext> = consumer_config.create_with_context(context)?;
    let mut topics = vec![config.topic.as_str()];
    topics.extend(config.catalog_topic());
    consumer.subscribe(&topics)?;
    tracing::info!(topics = %topics.join(","), group = %config.group, "sink consuming");
    let mut positions = Positions::default();
    let mut sweep_tick = tokio::time::interval(SWEEP_EVERY);
    sweep_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);

    // When the current batch must be written at the latest (`None`: no batch).
    let mut batch_deadline: Option<Instant> = None;
    // `prepare` just did this round of maintenance.
    let mut maintenance =
        tokio::time::interval_at(Instant::now() + MAINTENANCE_EVERY, MAINTENANCE_EVERY);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = maintenance.tick() => {
                if let Err(e) = maintain(&mut pending.lock().await.store.client, &config).await {
                    tracing::warn!(error = %e, "partition maintenance or retention failed");
                }
            }
            _ = sleep_until(batch_deadline), if batch_deadline.is_some() => {
                flush(&mut *pending.lock().await, &consumer, &token).await;
                batch_deadline = None;
            }
            _ = sweep_tick.tick() => {
                let mut p = pending.lock().await;
                let owned = positions.caught_up(&consumer, &ends, &config.topic);
                if sweep(&mut p, &owned, &consumer, &token).await {
                    batch_deadline = None;
                }
            }
            message = consumer.recv() => match message {
                Err(e) => tracing::warn!(error = %e, "kafka consumer error"),
                Ok(m) => {
                    let mut p = pending.lock().await;
                    if p.batch.is_empty() {
                        batch_deadline = Some(Instant::now() + config.batch_max_wait);
                    }
                    if m.topic() == config.topic {
                        positions.consumed(m.partition(), m.offset());
                    }
                    add(&mut p, &m, config.catalog_topic());
                    if p.batch.len() >= config.batch_max_rows {
                        flush(&mut p, &consumer, &token).await;
                        batch_deadline = None;
                    }
                }
            },
        }
    }
    // Shutdown: keep trying to store what was consumed for a while; if the database stays
    // down, exit without committing those offsets (they will be redelivered).
    flush(&mut *pending.lock().await, &consumer, &grace_token()).await;
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

/// Runs the verdict sweep for the sites of the `owned` results partitions (owned and
/// consumed to their end) that have a location gone silent, storing the pending batch
/// first; returns whether it stored the batch.
async fn sweep<C, X>(
    p: &mut Pending,
    owned: &[i32],
    consumer: &C,
    token: &CancellationToken,
) -> bool
where
    C: Consumer<X>,
    X: ConsumerContext,
{
    let sites = match verdicts::sweep_candidates(&p.store.client, owned).await {
        Ok(sites) if !sites.is_empty() => sites,
        Ok(_) => return false,
        Err(e) => {
            tracing::debug!(error = %e, "cannot look for silent locations");
            return false;
        }
    };
    let flushed = !p.batch.is_empty();
    flush(p, consumer, token).await;
    let alerts = p.store.alerts.clone();
    match verdicts::sweep_with(&mut p.store.client, &sites, alerts.as_deref()).await {
        Ok(saved) => {
            p.store.metrics.events.add(saved.events);
            if saved.events > 0 {
                tracing::info!(
                    events = saved.events,
                    "sweep: silent locations left the vote"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "sweep for silent locations failed; trying again"),
    }
    flushed
}

/// Adds one consumed message to the pending batch: decoded (a result, or a site catalog
/// entry from `catalog_topic`), or kept aside as rejected.
fn add(p: &mut Pending, m: &BorrowedMessage<'_>, catalog_topic: Option<&str>) {
    p.next_offsets
        .insert((m.topic().to_string(), m.partition()), m.offset() + 1);
    let decoded = if Some(m.topic()) == catalog_topic {
        let timestamp = m.timestamp().to_millis();
        decode_catalog(m.key(), m.payload(), timestamp).map(|e| p.batch.catalog.push(e))
    } else {
        decode_row(m.payload(), m.partition(), m.offset()).map(|row| p.batch.rows.push(row))
    };
    match decoded {
        Ok(()) => {}
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
}

/// Sleeps until `deadline` (forever without one; the select arm is disabled then).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
