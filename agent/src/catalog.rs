//! The site catalog, agent side: the sites this agent checks, as resolved from its YAML,
//! published to the compacted catalog topic (`kafka.catalog_topic`, default
//! `sitewatch.sites`): key = site name, value = a [`SiteDefinition`]. A site this agent
//! published and no longer has gets a tombstone (a null value). Published at start and
//! after every successful reload; with stdout output (no `kafka:` block) nothing is.
//!
//! Several agents (locations) publish the same sites under the same keys. To tell which
//! sites it removed, the agent reads the topic first: a site whose latest definition is its
//! own and which its config no longer has is removed; one whose latest definition came
//! from another agent is left alone (that agent still checks it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use sitewatch_checks::catalog::{SiteDefinition, CATALOG_SCHEMA_VERSION};
use sitewatch_checks::kafka::KafkaContext;
use tokio::sync::Mutex;

use crate::config::{AgentConfig, KafkaConfig};
use crate::publisher::{client_config, create_topic, PublisherError};

/// How long one publication waits for Kafka to confirm each definition.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long reading the topic (to find this agent's earlier definitions) may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The definitions of `config`'s sites, published by its agent at `now`.
pub fn definitions(config: &AgentConfig, now: DateTime<Utc>) -> Vec<SiteDefinition> {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    config
        .sites
        .iter()
        .map(|site| SiteDefinition {
            schema: CATALOG_SCHEMA_VERSION,
            site: site.spec.name.clone(),
            url: site.spec.url.to_string(),
            interval_ms: millis(site.spec.interval),
            timeout_ms: millis(site.spec.timeout),
            failure_threshold: site.listing.failure_threshold,
            success_threshold: site.listing.success_threshold,
            quorum: site.listing.quorum,
            tags: site.listing.tags.clone(),
            group: site.listing.group.clone(),
            public: site.listing.public,
            agent: config.agent.name.clone(),
            location: config.agent.location.clone(),
            published_at: now,
        })
        .collect()
}

/// What one publication did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Published {
    /// Definitions Kafka confirmed.
    pub defined: usize,
    /// Tombstones Kafka confirmed (sites this agent removed).
    pub removed: usize,
    /// Messages Kafka did not confirm (logged; the next start or reload sends them again).
    pub failed: usize,
}

/// Publishes this agent's site definitions to the catalog topic.
pub struct CatalogPublisher {
    producer: FutureProducer<KafkaContext>,
    /// For the consumer that reads the topic back.
    client: ClientConfig,
    topic: String,
    /// Sites this agent has published in this run and not removed: what is removed when
    /// the topic cannot be read. Held across a publication, so two never interleave.
    published: Mutex<BTreeSet<String>>,
}

impl CatalogPublisher {
    /// A publisher when `kafka` is configured and its `catalog_topic` is not `off`.
    /// Creates the topic (compacted) when `kafka.create_topic` asks for topics.
    pub fn new(kafka: Option<&KafkaConfig>) -> Result<Option<Arc<Self>>, PublisherError> {
        let Some(kafka) = kafka else {
            return Ok(None);
        };
        let Some(topic) = kafka.catalog_topic() else {
            return Ok(None);
        };
        let client = client_config(kafka);
        let producer = client
            .create_with_context(KafkaContext::new())
            .map_err(|e| PublisherError::Setup(format!("kafka catalog producer: {e}")))?;
        Ok(Some(Arc::new(CatalogPublisher {
            producer,
            client,
            topic: topic.to_string(),
            published: Mutex::new(BTreeSet::new()),
        })))
    }

    /// Creates the catalog topic if `kafka.create_topic` is set (compacted, with the
    /// results topic's partitions and replication).
    pub async fn create_topic(&self, kafka: &KafkaConfig) {
        if let Some(create) = &kafka.create_topic {
            create_topic(
                &self.client,
                &self.topic,
                create.partitions,
                create.replication_factor,
                &[("cleanup.policy", "compact")],
            )
            .await;
        }
    }

    /// Publishes every site of `config` and a tombstone for each site this agent defined
    /// before and `config` no longer has; waits for Kafka to confirm them.
    pub async fn publish(&self, config: &AgentConfig) -> Published {
        let mut published = self.published.lock().await;
        let definitions = definitions(config, Utc::now());
        let current: BTreeSet<String> = definitions.iter().map(|d| d.site.clone()).collect();
        let ours = match self.read_latest(&config.agent.name).await {
            Ok(ours) => ours,
            Err(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "cannot read the site catalog back; only sites removed since this agent started get tombstones");
                published.clone()
            }
        };
        let removed: Vec<String> = ours.difference(&current).cloned().collect();
        let mut outcome = Published::default();
        // (key, value): a definition, or a tombstone (no value).
        let mut messages: Vec<(&str, Option<Vec<u8>>)> = Vec::new();
        for d in &definitions {
            match serde_json::to_vec(d) {
                Ok(value) => messages.push((&d.site, Some(value))),
                Err(e) => {
                    tracing::error!(site = %d.site, error = %e, "cannot encode a site definition")
                }
            }
        }
        messages.extend(removed.iter().map(|site| (site.as_str(), None)));
        let deliveries = messages.iter().map(|(key, value)| {
            let mut record = FutureRecord::<str, [u8]>::to(&self.topic).key(key);
            if let Some(value) = value {
                record = record.payload(value);
            }
            (
                value.is_some(),
                self.producer.send(record, DELIVERY_TIMEOUT),
            )
        });
        let deliveries: Vec<_> = deliveries.collect();
        for (definition, delivery) in deliveries {
            match delivery.await {
                Ok(_) if definition => outcome.defined += 1,
                Ok(_) => outcome.removed += 1,
                Err((e, _)) => {
                    outcome.failed += 1;
                    tracing::warn!(topic = %self.topic, error = %e, "kafka did not accept a site definition");
                }
            }
        }
        *published = current;
        tracing::info!(
            topic = %self.topic,
            defined = outcome.defined,
            removed = outcome.removed,
            failed = outcome.failed,
            "site catalog published"
        );
        outcome
    }

    /// Publishes `config` in the background, so start-up and reloads never wait for
    /// Kafka; with `first`, creates the topic before (when `kafka.create_topic` asks).
    pub fn spawn_publish(
        self: &Arc<Self>,
        config: AgentConfig,
        first: bool,
    ) -> tokio::task::JoinHandle<Published> {
        let catalog = self.clone();
        tokio::spawn(async move {
            if let (true, Some(kafka)) = (first, &config.kafka) {
                catalog.create_topic(kafka).await;
            }
            catalog.publish(&config).await
        })
    }

    /// The sites whose latest catalog entry is a definition by `agent`.
    async fn read_latest(&self, agent: &str) -> Result<BTreeSet<String>, String> {
        let (client, topic, agent) = (self.client.clone(), self.topic.clone(), agent.to_string());
        tokio::task::spawn_blocking(move || read_latest(&client, &topic, &agent))
            .await
            .map_err(|e| e.to_string())?
    }
}

/// Reads `topic` from the beginning to its end (as it is now) and returns the sites whose
/// latest entry is a definition published by `agent`.
fn read_latest(
    client: &ClientConfig,
    topic: &str,
    agent: &str,
) -> Result<BTreeSet<String>, String> {
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    let mut config = client.clone();
    // librdkafka wants a group id, but the reader never joins it: it assigns itself
    // every partition and commits nothing.
    config
        .set("group.id", "sitewatch-agent-catalog-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer<KafkaContext> = config
        .create_with_context(KafkaContext::new())
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), READ_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    // Where each partition ends now; an empty one needs no reading.
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, READ_TIMEOUT)
            .map_err(|e| e.to_string())?;
        if high > low {
            ends.insert(p, high);
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
    }
    if ends.is_empty() {
        return Ok(BTreeSet::new());
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    // Latest entry per site: whether it is a definition by `agent`.
    let mut latest: BTreeMap<String, bool> = BTreeMap::new();
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(format!("not read to its end within {READ_TIMEOUT:?}"));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| e.to_string())?;
        if let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) {
            let mine = message
                .payload()
                .and_then(|v| serde_json::from_slice::<SiteDefinition>(v).ok())
                .is_some_and(|d| d.agent == agent);
            latest.insert(key.to_string(), mine);
        }
        let partition = message.partition();
        if ends
            .get(&partition)
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&partition);
        }
    }
    Ok(latest
        .into_iter()
        .filter_map(|(site, mine)| mine.then_some(site))
        .collect())
}
