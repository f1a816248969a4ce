//! A uniquely named PostgreSQL database per test, dropped afterwards; a sink's settings for
//! a test; producing results to Kafka; and the set-up and read-back the database tests share.

// Compiled into each test binary; not every binary uses every helper.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sitewatch_sink::pipeline::{Batch, Row};
use sitewatch_sink::{migrations, SinkConfig};
use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::Client;

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use sitewatch_tests::db::{connect, TestDb, SERVER};

pub fn sink_config(broker: &Broker, topic: &str, group: &str, db: &TestDb) -> SinkConfig {
    SinkConfig {
        brokers: broker.addr(),
        topic: topic.into(),
        // Tests that need the site catalog name it.
        catalog_topic: "off".into(),
        group: group.into(),
        security_protocol: Default::default(),
        ssl_ca: None,
        ssl_cert: None,
        ssl_key: None,
        sasl_mechanism: None,
        sasl_username: None,
        sasl_password: None,
        kafka_properties: Vec::new(),
        database_url: db.url(),
        database_sslmode: None,
        database_ca: None,
        listen: None,
        batch_max_rows: 20,
        batch_backlog_rows: 20,
        write_connections: sitewatch_sink::config::DEFAULT_WRITE_CONNECTIONS,
        batch_max_wait: Duration::from_millis(100),
        retention_days: 30,
        hourly_retention_days: 180,
        daily_retention_days: None,
        partitions_ahead: 1,
        repack_after: sitewatch_sink::config::RepackAfter(Some(Duration::from_secs(3600))),
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

/// `n` results over sites a, b and c, a millisecond apart (a check is identified by its
/// site, agent and start, so two results of one site never share a start).
pub fn results(n: usize) -> Vec<(String, Vec<u8>)> {
    let start = chrono::Utc::now() - chrono::Duration::milliseconds(n as i64);
    (0..n)
        .map(|i| {
            let mut r = result(["a", "b", "c"][i % 3]);
            r.started_at = start + chrono::Duration::milliseconds(i as i64);
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

/// A new database migrated to the latest schema, and a client of it.
pub async fn migrated() -> (TestDb, Client) {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();
    (db, client)
}

/// Today (UTC), and the day `n` days before it.
pub fn today_and_ago() -> (NaiveDate, impl Fn(u64) -> NaiveDate) {
    let today = Utc::now().date_naive();
    (today, move |n| {
        today.checked_sub_days(Days::new(n)).unwrap()
    })
}

/// `rows` as one batch, with nothing rejected and no catalog entries.
pub fn batch(rows: Vec<Row>) -> Batch {
    Batch {
        rows,
        rejected: Vec::new(),
        catalog: Vec::new(),
    }
}

/// The first column of every row `sql` (without parameters) returns, in its order.
pub async fn column<T: FromSqlOwned>(client: &Client, sql: &str) -> Vec<T> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The one value `sql` (without parameters) returns.
pub async fn value<T: FromSqlOwned>(client: &Client, sql: &str) -> T {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// The count `sql` (without parameters) returns.
pub async fn count(client: &Client, sql: &str) -> i64 {
    value(client, sql).await
}
