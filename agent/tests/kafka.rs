//! Kafka publishing against a real Kafka-protocol broker (Tansu, started by scripts/kafka-dev):
//! every result arrives once, keyed by site, in per-site order, with the schema header;
//! results produced before the broker exists are delivered once it appears; the agent
//! binary publishes to Kafka when configured.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sitewatch_agent::config::kafka::{KafkaConfig, SecurityProtocol};
use sitewatch_agent::publisher::KafkaPublisher;
use sitewatch_checks::{CheckResult, SCHEMA_VERSION};
use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use sitewatch_tests::forward::forward;
use sitewatch_tests::free_port;
use sitewatch_tests::site::http_get;
use uuid::Uuid;

const PARTITIONS: i32 = 3;

fn unique_topic(name: &str) -> String {
    format!("sitewatch.test.{name}.{}", Uuid::now_v7().simple())
}

fn kafka_config(addr: &str, topic: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: vec![addr.to_string()],
        topic: topic.to_string(),
        catalog_topic: "off".into(),
        security_protocol: SecurityProtocol::Plaintext,
        ssl: None,
        sasl: None,
        create_topic: None,
        properties: Default::default(),
        spool_dir: None,
        spool_max_bytes: None,
        spool: None,
    }
}

async fn create_topic(addr: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap();
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
    let res = admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .unwrap();
    // A producer's metadata request may already have auto-created it.
    assert!(
        res.iter()
            .all(|r| matches!(r, Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)))),
        "{res:?}"
    );
}

/// Reads the whole topic from the beginning (no consumer group: no slow group join)
/// until `expected` messages arrived or 60 s passed. Returns (key, result, schema header).
fn consume(addr: &str, topic: &str, expected: usize) -> Vec<(String, CheckResult, Option<String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "sitewatch-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.unwrap();
        let key = String::from_utf8(msg.key().unwrap().to_vec()).unwrap();
        let value: CheckResult = serde_json::from_slice(msg.payload().unwrap()).unwrap();
        let schema = msg.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == "schema")
                .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
        });
        out.push((key, value, schema));
    }
    // Anything beyond `expected` would be a duplicate: give it a moment to show up.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            panic!("more messages than the {expected} published");
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_arrives_once_keyed_by_site_in_per_site_order() {
    let broker = Broker::start();
    let topic = unique_topic("order");
    create_topic(&broker.addr(), &topic).await;
    let publisher = KafkaPublisher::new(&kafka_config(&broker.addr(), &topic))
        .await
        .unwrap();
    let sites = ["alpha", "beta", "gamma", "delta"];
    let mut sent: HashMap<String, Vec<Uuid>> = HashMap::new();
    for i in 0..60 {
        let r = result(sites[i % sites.len()]);
        sent.entry(r.site.clone()).or_default().push(r.check_id);
        publisher.publish(&r).await.unwrap();
    }
    let stats = publisher.stats();
    assert_eq!(publisher.close(Duration::from_secs(30)).await, 0);
    assert_eq!(
        stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
        60
    );

    let got = consume(&broker.addr(), &topic, 60);
    assert_eq!(got.len(), 60);
    let mut received: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (key, value, schema) in got {
        assert_eq!(key, value.site, "key is the site name");
        assert_eq!(schema.as_deref(), Some(SCHEMA_VERSION.to_string().as_str()));
        received.entry(key).or_default().push(value.check_id);
    }
    assert_eq!(
        received, sent,
        "every result once, per-site order preserved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_published_while_the_broker_is_unreachable_are_delivered_when_it_appears() {
    // The topic exists (as in production), but the agent's bootstrap address answers nothing yet.
    let broker = Broker::start();
    let topic = unique_topic("late");
    create_topic(&broker.addr(), &topic).await;
    let bootstrap_port = free_port();
    let bootstrap = format!("127.0.0.1:{bootstrap_port}");
    let publisher = KafkaPublisher::new(&kafka_config(&bootstrap, &topic))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let r = result("early");
        ids.push(r.check_id);
        publisher.publish(&r).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        publisher
            .stats()
            .pending
            .load(std::sync::atomic::Ordering::Relaxed),
        10,
        "nothing can be delivered yet"
    );
    forward(bootstrap_port, broker.addr()).await;
    assert_eq!(
        publisher.close(Duration::from_secs(60)).await,
        0,
        "all confirmed"
    );
    let got: Vec<Uuid> = consume(&broker.addr(), &topic, 10)
        .into_iter()
        .map(|(_, r, _)| r.check_id)
        .collect();
    assert_eq!(got, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_reports_unsent_results_at_close() {
    let addr = format!("127.0.0.1:{}", free_port());
    let publisher = KafkaPublisher::new(&kafka_config(&addr, "nowhere"))
        .await
        .unwrap();
    for _ in 0..3 {
        publisher.publish(&result("lost")).await.unwrap();
    }
    assert_eq!(
        publisher.close(Duration::from_secs(1)).await,
        3,
        "nothing is lost silently"
    );
}

/// A one-page HTTP server for the agent binary to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_binary_publishes_to_the_configured_topic_creating_it() {
    let broker = Broker::start();
    let topic = unique_topic("agent");
    let port = sitewatch_tests::site::welcome();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    std::fs::write(
        &config,
        format!(
            "kafka:\n  brokers: [\"{}\"]\n  topic: {topic}\n  create_topic: {{ partitions: {PARTITIONS}, replication_factor: 1 }}\nsites:\n  - name: one\n    url: http://127.0.0.1:{port}/\n    regex: Welcome\n  - name: two\n    url: http://127.0.0.1:{port}/two\n",
            broker.addr()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sitewatch-agent"))
        .arg("--once")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "results go to kafka, not stdout");
    let mut sites: Vec<String> = consume(&broker.addr(), &topic, 2)
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    sites.sort();
    assert_eq!(sites, ["one", "two"]);
}

/// Polls `/healthz` until its status line starts with `want` (or 20 s pass).
fn healthz_becomes(addr: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = http_get(addr, "/healthz");
        if got.starts_with(want) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn healthz_reports_whether_a_kafka_broker_is_reachable() {
    let port = sitewatch_tests::site::welcome();
    let dir = tempfile::tempdir().unwrap();
    let run = |brokers: &str| {
        let ops = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("sites.yaml");
        std::fs::write(
            &config,
            format!(
                "agent:\n  listen: {ops}\nkafka:\n  brokers: [\"{brokers}\"]\n  topic: {}\nsites:\n  - name: one\n    url: http://127.0.0.1:{port}/\n",
                unique_topic("health")
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sitewatch-agent"))
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        (child, ops)
    };

    // Nothing listens on the broker port: up, checking, but not ready.
    let (mut agent, ops) = run(&format!("127.0.0.1:{}", free_port()));
    let health = healthz_becomes(&ops, "HTTP/1.1 503");
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(health.contains("no Kafka broker connection"), "{health}");

    let broker = Broker::start();
    let (mut agent, ops) = run(&broker.addr());
    let health = healthz_becomes(&ops, "HTTP/1.1 200");
    let metrics = http_get(&ops, "/metrics");
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(metrics.contains("sitewatch_kafka_pending"), "{metrics}");
}
