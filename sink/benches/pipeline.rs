//! The sink through Kafka (Tansu), not just its writer: (1) how fast a backlog of results
//! in a topic lands in PostgreSQL with default settings, next to a plain `COPY` of the same
//! rows in the same run; (2) end-to-end latency at ~1,000 checks/s: agent (library) →
//! Kafka → sink → row, measured per row as `received_at - (started_at + total_ms)`.
//! Run with `cargo bench -p sitewatch-sink --bench pipeline`; see BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use support::{create_topic, sink_config, stored, TestDb};
use tokio_util::sync::CancellationToken;

const BACKLOG: usize = 100_000;
const SITES: usize = 1_000;
const LATENCY_RUN: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let broker = Broker::start();
    backlog(&broker).await;
    latency(&broker).await;
}

async fn backlog(broker: &Broker) {
    let db = TestDb::create().await;
    let topic = create_topic(broker, 6).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let now = chrono::Utc::now();
    let mut pending = Vec::with_capacity(BACKLOG);
    for i in 0..BACKLOG {
        let mut r = result(&format!("site-{}", i % SITES));
        r.started_at = now - chrono::Duration::milliseconds((BACKLOG - i) as i64 * 30);
        let value = serde_json::to_vec(&r).unwrap();
        let record = FutureRecord::to(&topic).key(&r.site).payload(&value);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in pending {
        delivery.await.unwrap().unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    // What the broker and client alone allow: the same backlog read (and decoded) with no
    // database, so the sink's figure can be split into consuming and storing.
    let (bare, decoded) = {
        let (addr, topic) = (broker.addr(), topic.clone());
        tokio::task::spawn_blocking(move || {
            (
                bare_consume(&addr, &topic, false),
                bare_consume(&addr, &topic, true),
            )
        })
        .await
        .unwrap()
    };

    let client = db.client().await;
    let mut config = sink_config(broker, &topic, "bench", &db);
    config.batch_max_rows = 5000;
    config.batch_max_wait = Duration::from_millis(200);
    // Progress from the sink's own /metrics: polling count(*) would load the database.
    let ops = format!("127.0.0.1:{}", sitewatch_tests::free_port());
    config.listen = Some(ops.parse().unwrap());
    let token = CancellationToken::new();
    let started = Instant::now();
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    while written(&ops) < BACKLOG as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    assert_eq!(stored(&client).await, BACKLOG as i64);
    token.cancel();
    sink.await.unwrap().unwrap();

    // Reference: the same rows COPYed back in from a file.
    let copy_took = common::copy_reference(&client, &topic).await;

    let rate = BACKLOG as f64 / took.as_secs_f64();
    let copy_rate = BACKLOG as f64 / copy_took.as_secs_f64();
    println!("sink from Kafka: {BACKLOG} results backlog, 6 partitions, default batch settings");
    println!("  reference: plain COPY from a file   {copy_rate:>10.0} rows/s   1.00x");
    println!(
        "  sitewatch-sink (Kafka -> PostgreSQL) {rate:>10.0} rows/s   {:.2}x",
        rate / copy_rate
    );
    for (what, took) in [
        ("bare consumer, no database", bare),
        ("bare consumer + decode", decoded),
    ] {
        let r = BACKLOG as f64 / took.as_secs_f64();
        println!("  {what:<36} {r:>10.0} msgs/s   {:.2}x", r / copy_rate);
    }
}

/// Reads the whole backlog with a plain rdkafka consumer (its own group), optionally
/// decoding each message as the sink does; returns the time taken.
fn bare_consume(brokers: &str, topic: &str, decode: bool) -> Duration {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("bare-{}", uuid::Uuid::now_v7().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    let mut seen = 0usize;
    while seen < BACKLOG {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if decode {
                    let _ = sitewatch_sink::decode::decode(m.payload()).unwrap();
                }
                seen += 1;
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => assert!(
                started.elapsed() < Duration::from_secs(300),
                "backlog not read"
            ),
        }
    }
    started.elapsed()
}

/// `sitewatch_sink_rows_written_total` from the sink at `ops`.
fn written(ops: &str) -> u64 {
    sitewatch_tests::site::http_get(ops, "/metrics")
        .lines()
        .find_map(|l| {
            l.strip_prefix("sitewatch_sink_rows_written_total ")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

async fn latency(broker: &Broker) {
    let db = TestDb::create().await;
    let topic = create_topic(broker, 6).await;
    let port = sitewatch_tests::site::welcome();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sites.yaml");
    let mut yaml = format!(
        "agent:\n  max_concurrency: 256\nkafka:\n  brokers: [\"{}\"]\n  topic: {topic}\ndefaults:\n  interval: 1s\n  regex: Welcome\nsites:\n",
        broker.addr()
    );
    for i in 0..SITES {
        yaml.push_str(&format!(
            "  - name: s{i}\n    url: http://127.0.0.1:{port}/\n"
        ));
    }
    std::fs::write(&path, yaml).unwrap();

    let token = CancellationToken::new();
    let sink = tokio::spawn(sitewatch_sink::run(
        {
            let mut c = sink_config(broker, &topic, "latency", &db);
            c.batch_max_rows = 5000;
            c.batch_max_wait = Duration::from_millis(200);
            c
        },
        token.clone(),
    ));
    let agent_token = CancellationToken::new();
    let config = sitewatch_agent::config::load(&[path]).unwrap();
    let agent = tokio::spawn(sitewatch_agent::app::run(
        config,
        false,
        agent_token.clone(),
    ));
    tokio::time::sleep(LATENCY_RUN).await;
    agent_token.cancel();
    agent.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    token.cancel();
    sink.await.unwrap().unwrap();

    let client = db.client().await;
    let r = client
        .query_one(
            "WITH l AS (
                 SELECT (extract(epoch FROM received_at - (started_at + total_ms * interval '1 ms')) * 1000)::float8 AS ms
                 FROM check_results
                 WHERE started_at > (SELECT min(started_at) + interval '5 s' FROM check_results))
             SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
             FROM l",
            &[],
        )
        .await
        .unwrap();
    let (n, p50, p99, max): (i64, f64, f64, f64) = (r.get(0), r.get(1), r.get(2), r.get(3));
    let rate = n as f64 / (LATENCY_RUN.as_secs_f64() - 5.0);
    println!(
        "end-to-end latency, check finished -> row stored ({n} checks after a 5 s warm-up, ~{rate:.0} checks/s)"
    );
    println!("  p50 {p50:.0} ms   p99 {p99:.0} ms   max {max:.0} ms");
}
