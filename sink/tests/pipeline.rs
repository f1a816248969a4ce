//! Kafka → sink → PostgreSQL with a real broker (Tansu) and database: every result stored
//! once, poison messages kept aside, committed offsets respected on restart, and a full
//! redelivery (another group reading from the start) adding nothing; a backlog written in
//! batches larger than `batch_max_rows`, never larger than `batch_backlog_rows`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::time::{Duration, Instant};

use sitewatch_sink::{migrations, SinkConfig};
use sitewatch_tests::broker::Broker;
use support::{create_topic, produce, results, sink_config, TestDb};
use tokio_util::sync::CancellationToken;

/// Runs a sink until the database holds `rows` results and `rejected` rejections (or 60 s), then stops it.
async fn run_sink_until(config: SinkConfig, db: &TestDb, rows: i64, rejected: i64) -> (i64, i64) {
    let token = CancellationToken::new();
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    let client = db.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Tables exist once the sink has migrated.
        let Ok(r) = client
            .query_one("SELECT (SELECT count(*) FROM check_results), (SELECT count(*) FROM rejected_messages)", &[])
            .await
        else {
            continue;
        };
        let (stored, kept): (i64, i64) = (r.get(0), r.get(1));
        if stored >= rows && kept >= rejected {
            break;
        }
    }
    // Give a duplicate, if any, time to show up before stopping.
    tokio::time::sleep(Duration::from_secs(1)).await;
    token.cancel();
    sink.await.unwrap().unwrap();
    let r = client
        .query_one(
            "SELECT (SELECT count(*) FROM check_results), (SELECT count(*) FROM rejected_messages)",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_is_stored_exactly_once_across_restarts_and_redelivery() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 3).await;

    let mut first = results(50);
    first.insert(10, ("poison".into(), b"this is not json".to_vec()));
    produce(&broker, &topic, first).await;
    let (rows, rejected) =
        run_sink_until(sink_config(&broker, &topic, "g1", &db), &db, 50, 1).await;
    assert_eq!((rows, rejected), (50, 1));

    // Restart with the same group: only the new messages are read (offsets were committed).
    produce(&broker, &topic, results(10)).await;
    let (rows, rejected) =
        run_sink_until(sink_config(&broker, &topic, "g1", &db), &db, 60, 1).await;
    assert_eq!((rows, rejected), (60, 1));

    // Another group re-reads everything from the start: the idempotent insert stores nothing twice.
    let (rows, _) = run_sink_until(sink_config(&broker, &topic, "g2", &db), &db, i64::MAX, 0).await;
    assert_eq!(rows, 60, "redelivered results are not stored twice");
    let client = db.client().await;
    // Healthy sites' first verdicts are no events; whatever the sweep may have found since
    // (the sites stop reporting when the test does), nothing is recorded twice.
    let (events, distinct): (i64, i64) = {
        let r = client
            .query_one(
                "SELECT count(*), count(DISTINCT (site, kind, new_outcome, at)) FROM site_events",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(events, distinct, "no event recorded twice");
    let verdicts: i64 = client
        .query_one(
            "SELECT count(*) FROM site_verdicts WHERE verdict = 'up'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        verdicts, 3,
        "one verdict per site, whatever was redelivered"
    );
}

/// A gauge or counter of the sink serving `/metrics` at `ops` (`None` before it serves).
fn metric(ops: &str, name: &str) -> Option<i64> {
    let metrics = sitewatch_tests::site::http_get(ops, "/metrics");
    sitewatch_tests::metrics::value(&metrics, name).map(|v| v as i64)
}

/// Polls `metric` until `done` holds (or panics after 60 s).
async fn until(ops: &str, name: &str, done: impl Fn(i64) -> bool) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = metric(ops, name).filter(|v| done(*v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reached the value waited for"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_written_in_batches_that_grow_up_to_the_backlog_limit() {
    // The first batch (20), a grown one (2,500) and one message more: the consumer stops at
    // the limit with a message left, so it is not caught up (which would hand the batch over).
    const MESSAGES: i64 = 2521;
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 1).await;
    produce(&broker, &topic, results(MESSAGES as usize)).await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();
    // The writer's first batch waits for a lock this test holds: the sink is behind, as
    // with a backlog, until the test lets go.
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE rollup_cursors IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut config = sink_config(&broker, &topic, "grow", &db);
    config.batch_max_rows = 20;
    config.batch_backlog_rows = 2500;
    // One transaction per batch, so that batches can be counted.
    config.write_connections = 1;
    let ops = format!("127.0.0.1:{}", sitewatch_tests::free_port());
    config.listen = Some(ops.parse().unwrap());
    let token = CancellationToken::new();
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));

    // One batch being written: the one being filled, due at 20, is not queued behind it but
    // grows while the writer is busy, up to 2,500, and stops there (taking more than a
    // thousand messages the client has fetched at a time).
    until(&ops, "sitewatch_sink_pending_messages", |n| n == 2500).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        metric(&ops, "sitewatch_sink_pending_messages"),
        Some(2500),
        "the batch being filled never exceeds batch_backlog_rows"
    );
    holder.batch_execute("COMMIT").await.unwrap();

    until(&ops, "sitewatch_sink_rows_written_total", |n| n >= MESSAGES).await;
    let batches = metric(&ops, "sitewatch_sink_batches_total").unwrap();
    token.cancel();
    sink.await.unwrap().unwrap();
    // The held one, the grown one and the last message. A due batch queued behind the held
    // one (at 20) would have made a fourth, and more for a longer backlog.
    assert_eq!(batches, 3, "batches of 20, 2,500 and 1");
    assert_eq!(support::stored(&client).await, MESSAGES);
}
