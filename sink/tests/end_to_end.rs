//! Agent → Kafka → sink → PostgreSQL with the real pieces: the agent library checks
//! local sites three times over into a Tansu topic, the sink stores them; every check
//! the agent made is in `check_results` exactly once, with its outcome.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::time::{Duration, Instant};

use sitewatch_tests::broker::Broker;
use sitewatch_tests::site::welcome;
use support::{create_topic, sink_config, stored, TestDb};
use tokio_util::sync::CancellationToken;

const SITES: usize = 20;
const ROUNDS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_the_agent_makes_is_stored_once() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 3).await;
    let port = welcome();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sites.yaml");
    let mut yaml = format!(
        "kafka:\n  brokers: [\"{}\"]\n  topic: {topic}\ndefaults:\n  regex: Welcome\n  timeout: 3s\nsites:\n",
        broker.addr()
    );
    for i in 0..SITES {
        // Every fourth site answers 500: down.
        let page = if i % 4 == 0 { "error" } else { "" };
        yaml.push_str(&format!(
            "  - name: site-{i}\n    url: http://127.0.0.1:{port}/{page}\n"
        ));
    }
    std::fs::write(&path, yaml).unwrap();
    for _ in 0..ROUNDS {
        let config = sitewatch_agent::config::load(std::slice::from_ref(&path)).unwrap();
        let code = sitewatch_agent::app::run(config, true, CancellationToken::new())
            .await
            .unwrap();
        // 1 = some site is down; 75 would mean results left unsent.
        assert_eq!(code, std::process::ExitCode::from(1));
    }

    let token = CancellationToken::new();
    let sink = tokio::spawn(sitewatch_sink::run(
        sink_config(&broker, &topic, "e2e", &db),
        token.clone(),
    ));
    let client = db.client().await;
    let expected = (SITES * ROUNDS) as i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(&client).await < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    token.cancel();
    sink.await.unwrap().unwrap();

    let r = client
        .query_one(
            "SELECT count(*), count(DISTINCT (site, started_at)), count(DISTINCT site),
                    count(*) FILTER (WHERE outcome = 'down' AND error_kind = 'http_status'),
                    count(*) FILTER (WHERE outcome = 'up' AND regex_matched)
             FROM check_results",
            &[],
        )
        .await
        .unwrap();
    let (rows, ids, sites, down, up): (i64, i64, i64, i64, i64) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    assert_eq!((rows, ids, sites), (expected, expected, SITES as i64));
    assert_eq!(down, (SITES / 4 * ROUNDS) as i64);
    assert_eq!(up, expected - down);
    // The down sites' verdicts, once each (two down checks confirm it), each with its open
    // incident; up sites' first verdicts are no events.
    let r = client
        .query_one(
            "SELECT (SELECT count(*) FROM site_events WHERE kind = 'verdict' AND new_outcome = 'down'),
                    (SELECT count(*) FROM site_events WHERE kind = 'verdict' AND new_outcome <> 'unknown'),
                    (SELECT count(*) FROM incidents WHERE resolved_at IS NULL)",
            &[],
        )
        .await
        .unwrap();
    let downs = (SITES / 4) as i64;
    assert_eq!(
        (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)),
        (downs, downs, downs)
    );
}
