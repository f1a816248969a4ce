//! The sink under trouble, with a real broker (Tansu) and database: two sinks sharing
//! a multi-partition topic, database connections killed mid-stream, and the sink
//! process SIGKILLed repeatedly, a private PostgreSQL restarted with `pg_ctl restart`
//! mid-stream. Each ends with every produced check stored once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use sitewatch_tests::pg_cluster::Cluster;
use sitewatch_tests::site::http_get as get;
use support::{create_topic, produce, sink_config, stored, TestDb};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// A stored check: its site and start in milliseconds (one agent in these tests).
type Key = (String, i64);

/// `n` results over 20 sites (so every partition gets some), a millisecond apart, and their keys.
fn spread(n: usize) -> (Vec<(String, Vec<u8>)>, BTreeSet<Key>) {
    let start = chrono::Utc::now() - chrono::Duration::milliseconds(n as i64);
    let results: Vec<_> = (0..n)
        .map(|i| {
            let mut r = result(&format!("site-{}", i % 20));
            r.started_at = start + chrono::Duration::milliseconds(i as i64);
            r
        })
        .collect();
    let ids = results
        .iter()
        .map(|r| (r.site.clone(), r.started_at.timestamp_millis()))
        .collect();
    let messages = results
        .iter()
        .map(|r| (r.site.clone(), serde_json::to_vec(r).unwrap()))
        .collect();
    (messages, ids)
}

async fn wait_for(client: &Client, rows: i64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while stored(client).await < rows && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stored_ids(client: &Client) -> BTreeSet<Key> {
    client
        .query(
            "SELECT site, (extract(epoch FROM started_at) * 1000)::bigint FROM check_results",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn assert_each_stored_once(client: &Client, ids: &BTreeSet<Key>) {
    let (rows, distinct): (i64, i64) = {
        let r = client
            .query_one(
                "SELECT count(*), count(DISTINCT (site, started_at)) FROM check_results",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(rows, distinct, "a check is stored twice");
    let got = stored_ids(client).await;
    let missing = ids.difference(&got).count();
    assert_eq!(missing, 0, "{missing} of {} checks missing", ids.len());
    assert_eq!(got.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sinks_in_one_group_share_the_partitions_and_store_each_check_once() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 4).await;
    let (messages, ids) = spread(400);
    produce(&broker, &topic, messages).await;

    let token = CancellationToken::new();
    let ops: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", sitewatch_tests::free_port()))
        .collect();
    let start = |ops: &str| {
        let mut config = sink_config(&broker, &topic, "shared", &db);
        config.listen = Some(ops.parse().unwrap());
        tokio::spawn(sitewatch_sink::run(config, token.clone()))
    };
    let (a, b) = (start(&ops[0]), start(&ops[1]));
    let client = db.client().await;
    wait_for(&client, ids.len() as i64, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Counted once between them too: what one stored, the other saw as a duplicate.
    let written: f64 = ops
        .iter()
        .map(|ops| metric(&get(ops, "/metrics"), "sitewatch_sink_rows_written_total"))
        .sum();
    token.cancel();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();

    assert_each_stored_once(&client, &ids).await;
    assert_eq!(written, ids.len() as f64);
}

/// An unlabelled value from a /metrics text.
fn metric(metrics: &str, name: &str) -> f64 {
    sitewatch_tests::metrics::value(metrics, name)
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_connections_killed_mid_stream_lose_and_duplicate_nothing() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 2).await;
    let (messages, ids) = spread(1000);

    let token = CancellationToken::new();
    let mut config = sink_config(&broker, &topic, "g", &db);
    config.batch_max_rows = 50;
    let ops = format!("127.0.0.1:{}", sitewatch_tests::free_port());
    config.listen = Some(ops.parse().unwrap());
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    let client = db.client().await;
    // Produce in waves while the sink's backends are terminated between them. Each wave
    // waits (a while) for the sink to be connected again, so that a slow machine, where the
    // sink is still backing off from the last kill, does not turn a wave into a no-op.
    let mut killed = 0u64;
    for wave in messages.chunks(100) {
        produce(&broker, &topic, wave.to_vec()).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink_backends(&client).await == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        killed += client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0) as u64;
    }
    assert!(
        killed >= 5,
        "the sink's connection was killed only {killed} times"
    );
    wait_for(&client, ids.len() as i64, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The operator sees it: failed writes counted, every row written once, ready again.
    let metrics = get(&ops, "/metrics");
    assert_eq!(
        metric(&metrics, "sitewatch_sink_rows_written_total"),
        1000.0,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "sitewatch_sink_db_errors_total") >= 1.0,
        "{metrics}"
    );
    // Readiness follows librdkafka's statistics (every 5 s): allow for one interval.
    let deadline = Instant::now() + Duration::from_secs(12);
    while !get(&ops, "/healthz").starts_with("HTTP/1.1 200") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let health = get(&ops, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    token.cancel();
    sink.await.unwrap().unwrap();
    assert_each_stored_once(&client, &ids).await;
}

/// The sink's connections to the test database (every one but `client`'s own).
async fn sink_backends(client: &Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_stores_the_pending_batch_before_giving_partitions_away() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 2).await;
    let (messages, ids) = spread(100);
    produce(&broker, &topic, messages).await;
    let client = db.client().await;

    // Batches that would wait two minutes: only the hand-over before partitions are revoked
    // stores them sooner. Without librdkafka's statistics the sinks never learn where
    // partitions end, so the sweep, which hands the batch over once its partitions are
    // consumed to their end, does not store it either (with them it could, depending on
    // when its tick first sees the assignment, and this test would pass without the
    // hand-over).
    let config = || {
        let mut c = sink_config(&broker, &topic, "rebalance", &db);
        c.batch_max_wait = Duration::from_secs(120);
        c.batch_max_rows = 10_000;
        c.kafka_properties = vec![("statistics.interval.ms".into(), "0".into())];
        c
    };
    let token = CancellationToken::new();
    let mut first = config();
    let ops = format!("127.0.0.1:{}", sitewatch_tests::free_port());
    first.listen = Some(ops.parse().unwrap());
    let a = tokio::spawn(sitewatch_sink::run(first, token.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !get(&ops, "/metrics").contains("sitewatch_sink_pending_messages 100")
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stored(&client).await, 0, "the first sink holds its batch");

    // A second member joins: the first is asked to give partitions up and stores first.
    let b = tokio::spawn(sitewatch_sink::run(config(), token.clone()));
    wait_for(&client, ids.len() as i64, Duration::from_secs(60)).await;
    assert_each_stored_once(&client, &ids).await;
    token.cancel();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_started_before_kafka_is_reachable_waits_and_then_stores_everything() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 2).await;
    let (messages, ids) = spread(50);
    produce(&broker, &topic, messages).await;

    // The sink's bootstrap address answers nothing yet.
    let bootstrap_port = sitewatch_tests::free_port();
    let mut config = sink_config(&broker, &topic, "late", &db);
    config.brokers = format!("127.0.0.1:{bootstrap_port}");
    let ops = format!("127.0.0.1:{}", sitewatch_tests::free_port());
    config.listen = Some(ops.parse().unwrap());
    let token = CancellationToken::new();
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    let client = db.client().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(stored(&client).await, 0);
    let health = get(&ops, "/healthz");
    assert!(health.contains("no Kafka broker connection"), "{health}");

    sitewatch_tests::forward::forward(bootstrap_port, broker.addr()).await;
    wait_for(&client, ids.len() as i64, Duration::from_secs(90)).await;
    token.cancel();
    sink.await.unwrap().unwrap();
    assert_each_stored_once(&client, &ids).await;
}

fn start_sink(broker: &Broker, topic: &str, db: &TestDb) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
        .env("SITEWATCH_BROKERS", broker.addr())
        .env("SITEWATCH_TOPIC", topic)
        .env("SITEWATCH_GROUP", "killed")
        .env("SITEWATCH_DATABASE_URL", db.url())
        .env("SITEWATCH_BATCH_MAX_ROWS", "100")
        // Small batches throughout, also behind (no growth), so the kills land mid-way.
        .env("SITEWATCH_BATCH_BACKLOG_ROWS", "100")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_process_killed_repeatedly_mid_batch_loses_and_duplicates_nothing() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 3).await;
    let (messages, ids) = spread(3000);
    produce(&broker, &topic, messages).await;
    let client = db.client().await;

    let mut progress = Vec::new();
    let mut seen = 0;
    for _ in 0..3 {
        let mut sink = start_sink(&broker, &topic, &db);
        // Kill as soon as this run has stored something: mid-stream, at whatever
        // point of its consume → write → commit cycle it happens to be.
        let deadline = Instant::now() + Duration::from_secs(60);
        while stored(&client).await < seen + 150 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sink.kill().unwrap(); // SIGKILL: no flush, no commit
        sink.wait().unwrap();
        seen = stored(&client).await;
        progress.push(seen);
    }
    let mut sink = start_sink(&broker, &topic, &db);
    wait_for(&client, ids.len() as i64, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = Command::new("kill")
        .args(["-TERM", &sink.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = sink.wait().unwrap();
    assert!(exit.success(), "sink exit after SIGTERM: {exit:?}");
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]) && progress[2] < ids.len() as i64,
        "every run should have stored some and been killed before the end: {progress:?}"
    );
    assert_each_stored_once(&client, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_and_duplicates_nothing() {
    let cluster = Cluster::start();
    let admin = support::connect(&cluster.params("postgres")).await;
    admin
        .batch_execute("CREATE DATABASE sitewatch")
        .await
        .unwrap();
    let broker = Broker::start();
    let topic = create_topic(&broker, 2).await;
    let (messages, ids) = spread(1200);

    let token = CancellationToken::new();
    let unused = TestDb::create().await;
    let mut config = sink_config(&broker, &topic, "restart", &unused);
    config.database_url = cluster.url("sitewatch");
    config.batch_max_rows = 50;
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    let mut restarts = 0;
    for (wave, chunk) in messages.chunks(100).enumerate() {
        produce(&broker, &topic, chunk.to_vec()).await;
        if wave % 4 == 2 {
            // pg_ctl blocks until the server is back; the sink's connection is cut meanwhile.
            tokio::task::block_in_place(|| cluster.restart());
            restarts += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(restarts, 3);
    let client = support::connect(&cluster.params("sitewatch")).await;
    wait_for(&client, ids.len() as i64, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    token.cancel();
    sink.await.unwrap().unwrap();
    assert_each_stored_once(&client, &ids).await;
}
