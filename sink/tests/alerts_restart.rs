//! Alerts through the real pieces: results of a global outage go through Kafka (Tansu) to
//! a sink process with a config file routing to a local webhook receiver. The receiver
//! refuses everything at first, so the triggers wait in the outbox; the sink is SIGKILLed
//! there (between the verdict and the delivery), and a new sink process delivers them
//! after restart: one trigger and one resolve, each key once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{SubsecRound, Utc};
use sitewatch_checks::schema::CheckError;
use sitewatch_checks::{ErrorKind, Outcome};
use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use support::{create_topic, produce, TestDb};
use tokio_postgres::Client;

#[derive(Clone, Default)]
struct Receiver {
    accepting: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn receive(State(r): State<Receiver>, body: String) -> StatusCode {
    if !r.accepting.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    r.got.lock().unwrap().push(json);
    StatusCode::OK
}

async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

async fn until<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut done: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

fn start_sink(broker: &Broker, topic: &str, db: &TestDb, config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
        .env("SITEWATCH_BROKERS", broker.addr())
        .env("SITEWATCH_TOPIC", topic)
        .env("SITEWATCH_CATALOG_TOPIC", "off")
        .env("SITEWATCH_GROUP", "alerts-restart")
        .env("SITEWATCH_DATABASE_URL", db.url())
        .env("SITEWATCH_CONFIG", config)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_killed_between_the_verdict_and_the_delivery_delivers_after_restart() {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sink.yaml");
    std::fs::write(
        &config,
        format!(
            "channels:\n  hook: {{ type: webhook, url: 'http://{addr}/hook' }}\n\
             routes:\n  - channels: [hook]\nretry_base: 100ms\n"
        ),
    )
    .unwrap();

    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 1).await;
    // Three locations every 10 s: up, down for rounds 5..15, up again until now.
    let start = (Utc::now() - chrono::Duration::seconds(250)).trunc_subsecs(3);
    let mut messages = Vec::new();
    for round in 0..25i64 {
        for (i, location) in ["eu", "us", "ap"].into_iter().enumerate() {
            let mut r = result("shop");
            r.agent = format!("agent-{location}");
            r.location = Some(location.into());
            r.started_at =
                start + chrono::Duration::milliseconds(round * 10_000 + i as i64 * 2_000);
            if (5..15).contains(&round) {
                r.outcome = Outcome::Down;
                r.error = Some(CheckError {
                    kind: ErrorKind::Timeout,
                    message: format!("timed out from {location}"),
                });
            }
            messages.push(("shop".to_string(), serde_json::to_vec(&r).unwrap()));
        }
    }
    produce(&broker, &topic, messages).await;
    let client = db.client().await;

    let mut sink = start_sink(&broker, &topic, &db, &config);
    let written = until(Duration::from_secs(90), || async {
        count(&client, "SELECT count(*) FROM notifications").await >= 2
            && count(&client, "SELECT count(*) FROM results").await >= 75
            && count(
                &client,
                "SELECT count(*) FROM notifications WHERE kind = 'trigger' AND attempts >= 1",
            )
            .await
                == 1
    })
    .await;
    // The receiver refused: the sink is killed with trigger and resolve undelivered.
    sink.kill().unwrap();
    sink.wait().unwrap();
    assert!(written, "the sink wrote the incident's notifications");
    assert!(receiver.got.lock().unwrap().is_empty());
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM notifications WHERE delivered_at IS NULL"
        )
        .await,
        2,
        "both pending"
    );
    assert!(
        count(
            &client,
            "SELECT count(*) FROM notifications WHERE kind = 'trigger' AND attempts >= 1"
        )
        .await
            == 1,
        "the trigger was attempted and refused (the resolve waits for it)"
    );

    receiver.accepting.store(true, Ordering::SeqCst);
    let mut sink = start_sink(&broker, &topic, &db, &config);
    let delivered = until(Duration::from_secs(60), || async {
        count(
            &client,
            "SELECT count(*) FROM notifications WHERE delivered_at IS NOT NULL",
        )
        .await
            >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sink.kill().unwrap();
    sink.wait().unwrap();
    assert!(delivered);
    let got = receiver.got.lock().unwrap().clone();
    let kinds: Vec<&str> = got.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["trigger", "resolve"], "{got:?}");
    let keys: Vec<&str> = got
        .iter()
        .map(|n| n["idempotency_key"].as_str().unwrap())
        .collect();
    assert_ne!(keys[0], keys[1]);
    assert_eq!(
        count(&client, "SELECT count(*) FROM notifications").await,
        2
    );
    assert_eq!(count(&client, "SELECT count(*) FROM incidents").await, 1);
}
