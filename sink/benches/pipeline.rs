//! The sink through Kafka (Tansu), not just its writer: (1) how fast a backlog of results
//! in a topic lands in PostgreSQL with default settings, next to a plain `COPY` of the same
//! results into a compact 16-column table in the same run; (2) end-to-end latency at ~1,000 checks/s: agent (library) →
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
use support::{create_topic, sink_config, stored, TestDb};
use tokio_util::sync::CancellationToken;

const BACKLOG: usize = 200_000;
/// Drains with the default settings (two connections, and one), and COPY references.
const REPEATS: usize = 5;
const SITES: usize = 1_000;
/// Each site is checked from these, once a minute.
const LOCATIONS: [&str; 3] = ["eu", "us", "ap"];
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
    let results = backlog_results();
    let mut pending = Vec::with_capacity(BACKLOG);
    for r in &results {
        let value = serde_json::to_vec(r).unwrap();
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
        let bare_config = sink_config(broker, &topic, "bare", &db);
        tokio::task::spawn_blocking(move || {
            (
                bare_consume(&bare_config, false),
                bare_consume(&bare_config, true),
            )
        })
        .await
        .unwrap()
    };

    let client = db.client().await;
    let growing = sitewatch_sink::config::DEFAULT_BATCH_BACKLOG_ROWS;
    // The defaults with two connections and with one, alternately, REPEATS times each, and
    // the reference as often: one drain takes about a second and a half, so single figures
    // swing with whatever else the shared cores do.
    let (mut defaults, mut singles, mut copies) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..REPEATS {
        let default_db = if round == 0 {
            None
        } else {
            Some(TestDb::create().await)
        };
        defaults.push(
            drain(
                broker,
                &topic,
                default_db.as_ref().unwrap_or(&db),
                5000,
                growing,
                2,
            )
            .await,
        );
        if round == 0 {
            assert_eq!(stored(&client).await, BACKLOG as i64);
        }
        let single_db = TestDb::create().await;
        singles.push(drain(broker, &topic, &single_db, 5000, growing, 1).await);
        copies.push(common::compact_copy_reference(&client, &results, &topic).await);
    }
    let fixed_db = TestDb::create().await;
    let fixed = drain(broker, &topic, &fixed_db, 5000, 5000, 1).await;
    let bigger_db = TestDb::create().await;
    let bigger = drain(broker, &topic, &bigger_db, 20_000, 20_000, 1).await;

    // Reference: the same results COPYed from a file into a compact table (median).
    copies.sort();
    let copy_rate = BACKLOG as f64 / copies[copies.len() / 2].as_secs_f64();
    let copy_rates: Vec<String> = copies
        .iter()
        .rev()
        .map(|t| format!("{:.0}", BACKLOG as f64 / t.as_secs_f64()))
        .collect();
    println!(
        "sink from Kafka: {BACKLOG} results backlog ({SITES} sites x {} locations, each once a minute), 6 partitions",
        LOCATIONS.len()
    );
    println!("  (sink and bare consumer rates are from the first row or message on: joining the group is a one-off)");
    println!(
        "  reference: plain COPY into a compact table {copy_rate:>10.0} rows/s   1.00x   (median of {})",
        copy_rates.join(", ")
    );
    for (what, runs) in [
        (
            format!("sitewatch-sink, default (5,000 rows, up to {growing}, 2 connections)"),
            &defaults,
        ),
        (
            "sitewatch-sink, default but 1 connection".to_string(),
            &singles,
        ),
    ] {
        let mut rates: Vec<f64> = runs.iter().map(|d| d.rate).collect();
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        let each: Vec<String> = runs
            .iter()
            .map(|d| format!("{:.2}x ({} batches)", d.rate / copy_rate, d.batches))
            .collect();
        println!(
            "  {what:<56} {median:>10.0} rows/s   {:.2}x   median; each run: {}",
            median / copy_rate,
            each.join(", ")
        );
    }
    for (what, d) in [
        (
            "sitewatch-sink, 5,000 rows, no growth, 1 connection",
            &fixed,
        ),
        (
            "sitewatch-sink, 20,000 rows, no growth, 1 connection",
            &bigger,
        ),
    ] {
        println!(
            "  {what:<56} {:>10.0} rows/s   {:.2}x   (first batch stored {:.1} s after start; {:.0} rows/s counting that; {} batches)",
            d.rate,
            d.rate / copy_rate,
            d.joined.as_secs_f64(),
            BACKLOG as f64 / d.total.as_secs_f64(),
            d.batches
        );
    }
    for (what, r) in [
        ("bare consumer, no database", bare),
        ("bare consumer + decode", decoded),
    ] {
        println!("  {what:<56} {r:>10.0} msgs/s   {:.2}x", r / copy_rate);
    }
}

/// The backlog: typical `up` results of every site from every location, a minute apart,
/// in time order.
fn backlog_results() -> Vec<sitewatch_checks::CheckResult> {
    let per_minute = SITES * LOCATIONS.len();
    let start = chrono::Utc::now() - chrono::Duration::minutes((BACKLOG / per_minute) as i64 + 1);
    (0..BACKLOG)
        .map(|i| {
            let (minute, slot) = (i / per_minute, i % per_minute);
            let (site, location) = (slot / LOCATIONS.len(), LOCATIONS[slot % LOCATIONS.len()]);
            let at = start
                + chrono::Duration::minutes(minute as i64)
                + chrono::Duration::milliseconds((slot * 60_000 / per_minute) as i64);
            common::typical(
                &format!("site-{site}"),
                &format!("agent-{location}"),
                location,
                at,
                i as u64,
            )
        })
        .collect()
}

/// One sink draining the backlog into `db`.
struct Drained {
    /// Rows per second from the first stored batch on.
    rate: f64,
    /// Start to first stored batch (group join, first fetch, first write).
    joined: Duration,
    /// Start to the last row.
    total: Duration,
    /// Transactions it took.
    batches: u64,
}

async fn drain(
    broker: &Broker,
    topic: &str,
    db: &TestDb,
    batch_rows: usize,
    backlog_rows: usize,
    connections: u16,
) -> Drained {
    let mut config = sink_config(
        broker,
        topic,
        // A group of its own: each drain reads the backlog from the start.
        &format!(
            "bench-{batch_rows}-{backlog_rows}-{connections}-{}",
            uuid::Uuid::now_v7().simple()
        ),
        db,
    );
    config.write_connections = connections;
    config.batch_max_rows = batch_rows;
    config.batch_backlog_rows = backlog_rows;
    config.batch_max_wait = Duration::from_millis(200);
    // Progress from the sink's own /metrics: polling count(*) would load the database.
    let ops = format!("127.0.0.1:{}", sitewatch_tests::free_port());
    config.listen = Some(ops.parse().unwrap());
    let token = CancellationToken::new();
    let started = Instant::now();
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let n = metric(&ops, "sitewatch_sink_rows_written_total");
        if n > 0 && first.is_none() {
            first = Some((Instant::now(), n));
        }
        if n >= BACKLOG as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    let batches = metric(&ops, "sitewatch_sink_batches_total");
    token.cancel();
    sink.await.unwrap().unwrap();
    let (first_at, first_rows) = first.unwrap();
    Drained {
        rate: (BACKLOG as u64 - first_rows) as f64 / (started + total - first_at).as_secs_f64(),
        joined: first_at - started,
        total,
        batches,
    }
}

/// Reads the whole backlog with a plain rdkafka consumer using the sink's client settings
/// (its own group), optionally decoding each message as the sink does; returns messages
/// per second from the first message on.
fn bare_consume(config: &sitewatch_sink::SinkConfig, decode: bool) -> f64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = config
        .consumer_config()
        .unwrap()
        .set(
            "group.id",
            format!("bare-{}", uuid::Uuid::now_v7().simple()),
        )
        .create()
        .unwrap();
    consumer.subscribe(&[config.topic.as_str()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first: Option<Instant> = None;
    let mut seen = 0usize;
    while seen < BACKLOG {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                if decode {
                    let _ = sitewatch_sink::decode::decode(m.payload()).unwrap();
                }
                seen += 1;
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => assert!(Instant::now() < deadline, "backlog not read"),
        }
    }
    let took = first.unwrap().elapsed();
    (BACKLOG - 1) as f64 / took.as_secs_f64()
}

/// A counter of the sink serving `/metrics` at `ops` (0 before it serves).
fn metric(ops: &str, name: &str) -> u64 {
    let metrics = sitewatch_tests::site::http_get(ops, "/metrics");
    sitewatch_tests::metrics::value(&metrics, name).map_or(0, |v| v as u64)
}

async fn latency(broker: &Broker) {
    let db = TestDb::create().await;
    // Results do not record when they were stored; this benchmark's database does.
    let mut client = db.client().await;
    sitewatch_sink::migrations::migrate(&mut client)
        .await
        .unwrap();
    client
        .batch_execute("ALTER TABLE results ADD COLUMN received_at timestamptz DEFAULT now()")
        .await
        .unwrap();
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
            c.batch_backlog_rows = sitewatch_sink::config::DEFAULT_BATCH_BACKLOG_ROWS;
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
                 SELECT (extract(epoch FROM received_at - (started_at + total_us * interval '1 us')) * 1000)::float8 AS ms
                 FROM results
                 WHERE started_at > (SELECT min(started_at) + interval '5 s' FROM results))
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
