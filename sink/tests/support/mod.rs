//! A uniquely named PostgreSQL database per test, dropped afterwards.

// Compiled into each test binary; not every binary uses every helper.
#![allow(dead_code)]

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sitewatch_sink::SinkConfig;
use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use tokio_postgres::{Client, NoTls};

pub const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres";

pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("sitewatch_test_{}", uuid::Uuid::now_v7().simple());
        let admin = connect(&format!("{SERVER} dbname=postgres")).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    pub async fn client(&self) -> Client {
        connect(&format!("{SERVER} dbname={}", self.name)).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop from a plain thread: the test's runtime may be shutting down.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = connect(&format!("{SERVER} dbname=postgres")).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

pub async fn connect(params: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(params, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

pub fn sink_config(broker: &Broker, topic: &str, group: &str, db: &TestDb) -> SinkConfig {
    SinkConfig {
        brokers: broker.addr(),
        topic: topic.into(),
        group: group.into(),
        security_protocol: "plaintext".into(),
        ssl_ca: None,
        ssl_cert: None,
        ssl_key: None,
        sasl_mechanism: None,
        sasl_username: None,
        sasl_password: None,
        database_url: db.url(),
        database_sslmode: None,
        database_ca: None,
        listen: None,
        batch_max_rows: 20,
        batch_max_wait: Duration::from_millis(100),
        retention_days: 30,
        partitions_ahead: 1,
    }
}

pub async fn produce(broker: &Broker, topic: &str, payloads: Vec<(String, Vec<u8>)>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .unwrap();
    for (key, value) in payloads {
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

pub fn results(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let r = result(["a", "b", "c"][i % 3]);
            (r.site.clone(), serde_json::to_vec(&r).unwrap())
        })
        .collect()
}

/// A new uniquely named topic with `partitions` partitions.
pub async fn create_topic(broker: &Broker, partitions: i32) -> String {
    let topic = format!("sitewatch.sink.{}", uuid::Uuid::now_v7().simple());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .unwrap();
    admin
        .create_topics(
            [&NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    topic
}

/// Rows in `check_results` (0 before the sink has migrated).
pub async fn stored(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM check_results", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}
