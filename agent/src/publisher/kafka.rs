//! Kafka output: one message per result, key = site name (per-site order within a
//! partition), JSON value, `schema` header. Delivery is confirmed in the background;
//! `close` flushes explicitly and reports what is still unconfirmed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use sitewatch_checks::{CheckResult, SCHEMA_VERSION};
use tokio::time::Instant;

use super::PublisherError;
use sitewatch_checks::kafka::KafkaContext;

use crate::config::kafka::KafkaConfig;

/// How long start-up waits for broker metadata before carrying on with results queued.
const STARTUP_PROBE: Duration = Duration::from_secs(5);
/// Pause before retrying when librdkafka's local queue is full.
pub(super) const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(50);

/// Delivery counters.
#[derive(Debug, Default)]
pub struct KafkaStats {
    /// Results handed to librdkafka and not yet confirmed or failed.
    pub pending: AtomicU64,
    /// Results the broker acknowledged.
    pub delivered: AtomicU64,
    /// Results that failed for good (e.g. `message.timeout.ms` passed).
    pub failed: AtomicU64,
    /// Whether a broker connection is up (start-up probe, then librdkafka statistics).
    pub broker_up: Arc<AtomicBool>,
}

/// Publishes results to a Kafka topic.
pub struct KafkaPublisher {
    /// Replaced after a fatal error (librdkafka's rule: a fatally failed producer is unusable).
    producer: RwLock<FutureProducer<KafkaContext>>,
    /// Settings the producer is (re)created with.
    client: ClientConfig,
    topic: String,
    stats: Arc<KafkaStats>,
}

/// The producer's own defaults: no loss (idempotence, every replica), compact batches.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("compression.type", "zstd"),
    ("linger.ms", "5"),
    // Results wait up to 5 minutes for a broker that is down or not up yet.
    ("message.timeout.ms", "300000"),
];

/// librdkafka settings for `config`: the shared connection settings, the producer's
/// no-loss defaults, the user's `properties` last.
pub fn client_config(config: &KafkaConfig) -> ClientConfig {
    config.connection().client_config(PRODUCER_DEFAULTS)
}

impl KafkaPublisher {
    /// Creates the producer. Nothing waits for the broker: creating the topic (when asked)
    /// and the start-up probe run in the background, so checks start at once even when
    /// Kafka is unreachable (results queue up, or wait in the spool).
    pub async fn new(config: &KafkaConfig) -> Result<Self, PublisherError> {
        let client = client_config(config);
        let stats: Arc<KafkaStats> = Arc::default();
        let producer = create_producer(&client, &stats)
            .map_err(|e| PublisherError::Setup(format!("kafka producer: {e}")))?;
        let publisher = KafkaPublisher {
            producer: RwLock::new(producer.clone()),
            client: client.clone(),
            topic: config.topic.clone(),
            stats: stats.clone(),
        };
        let config = config.clone();
        tokio::spawn(async move {
            if let Some(create) = &config.create_topic {
                create_topic(
                    &client,
                    &config.topic,
                    create.partitions,
                    create.replication_factor,
                    &[],
                )
                .await;
            }
            probe_broker(producer, &config, &stats).await;
        });
        Ok(publisher)
    }

    fn producer(&self) -> FutureProducer<KafkaContext> {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the producer when `fenced` (the broker refuses its producer id, as after
    /// deliveries timed out) or when librdkafka reported a fatal error on it: either way it
    /// can send nothing more. Its unconfirmed results fail; the caller sends them again.
    /// Returns whether it was replaced.
    pub(super) fn renew(&self, fenced: bool) -> bool {
        let reason = match self.producer().client().fatal_error() {
            Some((code, reason)) => format!("{code}: {reason}"),
            None if fenced => "the broker fenced its producer id".to_string(),
            None => return false,
        };
        tracing::warn!(reason, "kafka producer can send no more: replacing it");
        match create_producer(&self.client, &self.stats) {
            Ok(producer) => {
                let old = std::mem::replace(
                    &mut *self.producer.write().unwrap_or_else(|e| e.into_inner()),
                    producer,
                );
                // Destroying a producer waits for its threads: not on the async worker.
                std::thread::spawn(move || drop(old));
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot create a new kafka producer");
                false
            }
        }
    }

    /// Delivery counters.
    pub fn stats(&self) -> Arc<KafkaStats> {
        self.stats.clone()
    }

    /// Queues one result; delivery is confirmed in the background. Waits only while
    /// librdkafka's local queue is full (back-pressure instead of dropping).
    pub async fn publish(&self, result: &CheckResult) -> Result<(), PublisherError> {
        let payload = encode(result)?;
        let delivery = loop {
            match self.enqueue(result.site.as_bytes(), &payload) {
                Ok(delivery) => break delivery,
                Err(None) => tokio::time::sleep(QUEUE_FULL_BACKOFF).await,
                Err(Some(e)) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    return Err(PublisherError::Send(format!("{}: {e}", result.site)));
                }
            }
        };
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        let stats = self.stats.clone();
        let site = result.site.clone();
        tokio::spawn(async move {
            let outcome = delivery.await;
            stats.pending.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Ok(Ok(_)) => {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err((e, _))) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%site, error = %e, "kafka did not accept a check result");
                }
                Err(_) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%site, "kafka producer went away before confirming a check result");
                }
            }
        });
        Ok(())
    }

    /// Hands one encoded result to librdkafka. `Err(None)`: its local queue is full, try
    /// again shortly.
    pub(super) fn enqueue(
        &self,
        key: &[u8],
        payload: &[u8],
    ) -> Result<DeliveryFuture, Option<KafkaError>> {
        let version = SCHEMA_VERSION.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: "schema",
            value: Some(version.as_bytes()),
        });
        let record = FutureRecord::to(&self.topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        match self.producer().send_result(record) {
            Ok(delivery) => Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Err(None),
            Err((e, _)) => Err(Some(e)),
        }
    }

    /// Waits up to `deadline` for librdkafka to send what it holds.
    pub(super) async fn flush(&self, deadline: Duration) {
        let producer = self.producer();
        let flush = tokio::task::spawn_blocking(move || producer.flush(deadline)).await;
        if let Ok(Err(e)) = flush {
            tracing::warn!(error = %e, "kafka flush did not complete");
        }
    }

    /// Flushes explicitly (dropping a producer loses queued messages) and waits up to
    /// `deadline` for confirmations; returns how many results were never delivered
    /// (still unconfirmed, or failed earlier).
    pub async fn close(self, deadline: Duration) -> usize {
        let until = Instant::now() + deadline;
        self.flush(deadline).await;
        // Delivery tasks update the counters just after librdkafka fires their callbacks.
        while self.stats.pending.load(Ordering::Relaxed) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let failed = self.stats.failed.load(Ordering::Relaxed);
        // Failed deliveries were logged when they failed; they are undelivered all the same.
        let unsent = self.stats.pending.load(Ordering::Relaxed) + failed;
        if unsent > 0 {
            tracing::error!(unsent, "check results not confirmed by kafka at shutdown");
        }
        tracing::info!(
            delivered = self.stats.delivered.load(Ordering::Relaxed),
            failed,
            unsent,
            "kafka publisher closed"
        );
        usize::try_from(unsent).unwrap_or(usize::MAX)
    }
}

/// Asks the broker for the topic's metadata once, to log at start whether Kafka is there.
async fn probe_broker(
    producer: FutureProducer<KafkaContext>,
    config: &KafkaConfig,
    stats: &KafkaStats,
) {
    let topic = config.topic.clone();
    let probe = tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(Some(&topic), STARTUP_PROBE)
            .map(|_| ())
    })
    .await;
    let brokers = config.brokers.join(",");
    match probe {
        Ok(Ok(())) => {
            stats.broker_up.store(true, Ordering::Relaxed);
            tracing::info!(%brokers, topic = %config.topic, "connected to kafka")
        }
        Ok(Err(e)) => {
            let waiting = match config.spool {
                Some(_) => "results wait in the spool until it is",
                None => "results are queued in memory and delivered when it is (up to message.timeout.ms)",
            };
            tracing::warn!(%brokers, error = %e, "kafka is not reachable yet; checks go on: {waiting}")
        }
        Err(e) => tracing::warn!(error = %e, "kafka start-up probe did not run"),
    }
}

fn create_producer(
    client: &ClientConfig,
    stats: &Arc<KafkaStats>,
) -> Result<FutureProducer<KafkaContext>, KafkaError> {
    // Statistics tell /healthz whether a broker is reachable.
    client.create_with_context(KafkaContext::watching(stats.broker_up.clone()))
}

/// The Kafka value of a result: its JSON.
pub(super) fn encode(result: &CheckResult) -> Result<Vec<u8>, PublisherError> {
    serde_json::to_vec(result).map_err(|e| PublisherError::Encode(format!("{}: {e}", result.site)))
}

/// Creates `topic` with the given topic `settings` (e.g. `cleanup.policy`), unless it
/// exists; problems are logged, never fatal (the topic may be made by other means).
pub async fn create_topic(
    client: &ClientConfig,
    topic: &str,
    partitions: i32,
    replication: i32,
    settings: &[(&str, &str)],
) {
    let admin: AdminClient<KafkaContext> = match client.create_with_context(KafkaContext::new()) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create a kafka admin client; not creating the topic");
            return;
        }
    };
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (key, value) in settings {
        new = new.set(key, value);
    }
    // Bound the request too: an unreachable broker must not hold up start-up for a minute.
    let opts = AdminOptions::new()
        .operation_timeout(Some(STARTUP_PROBE))
        .request_timeout(Some(STARTUP_PROBE));
    match admin.create_topics([&new], &opts).await {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(name) => tracing::info!(topic = %name, partitions, "created kafka topic"),
                    Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        tracing::debug!(topic = %name, "kafka topic exists")
                    }
                    Err((name, code)) => {
                        tracing::warn!(topic = %name, error = %code, "cannot create kafka topic")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot create kafka topic (broker unreachable?)"),
    }
}
