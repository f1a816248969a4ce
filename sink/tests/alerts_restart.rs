//! Alerts through the real pieces: results of a global outage go through Kafka (Tansu) to
//! a sink process with a config file routing to a local webhook receiver. The receiver
//! refuses everything at first, so the triggers wait in the outbox; the sink is SIGKILLed
//! there (between the verdict and the delivery). A second sink is SIGKILLed while the
//! receiver holds its delivery (received, not yet answered), and a third delivers: the
//! receiver gets the trigger twice with the same idempotency key, then the resolve.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::process::{Child, Command};
use std::sync::atomic::{AtomicU8, Ordering};
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

/// Refuses with 503.
const REFUSE: u8 = 0;
/// Records the request, then holds the answer for a minute.
const HOLD: u8 = 1;
/// Records the request and answers 200.
const ACCEPT: u8 = 2;

#[derive(Clone, Default)]
struct Receiver {
    mode: Arc<AtomicU8>,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn receive(State(r): State<Receiver>, body: String) -> StatusCode {
    let mode = r.mode.load(Ordering::SeqCst);
    if mode == REFUSE {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    r.got.lock().unwrap().push(json);
    if mode == HOLD {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
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
    start_sink_listening(broker, topic, db, config, "")
}

fn start_sink_listening(
    broker: &Broker,
    topic: &str,
    db: &TestDb,
    config: &std::path::Path,
    listen: &str,
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"));
    if !listen.is_empty() {
        command.env("SITEWATCH_LISTEN", listen);
    }
    command
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

    // Killed while the receiver holds the trigger: received, never marked delivered.
    receiver.mode.store(HOLD, Ordering::SeqCst);
    let mut sink = start_sink(&broker, &topic, &db, &config);
    let held = until(Duration::from_secs(30), || async {
        !receiver.got.lock().unwrap().is_empty()
    })
    .await;
    sink.kill().unwrap();
    sink.wait().unwrap();
    assert!(held, "the second sink delivered the trigger");
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM notifications WHERE delivered_at IS NULL"
        )
        .await,
        2
    );

    receiver.mode.store(ACCEPT, Ordering::SeqCst);
    let port = sitewatch_tests::free_port();
    let mut sink =
        start_sink_listening(&broker, &topic, &db, &config, &format!("127.0.0.1:{port}"));
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
    let metrics = tokio::task::spawn_blocking(move || {
        sitewatch_tests::http::get(&format!("127.0.0.1:{port}"), "/metrics", &[]).body
    })
    .await
    .unwrap();
    sink.kill().unwrap();
    sink.wait().unwrap();
    assert!(delivered);
    assert!(
        metrics.contains("sitewatch_notifications_sent_total{channel=\"hook\"} 2"),
        "{metrics}"
    );
    let got = receiver.got.lock().unwrap().clone();
    let kinds: Vec<&str> = got.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["trigger", "trigger", "resolve"], "{got:?}");
    let keys: Vec<&str> = got
        .iter()
        .map(|n| n["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys[0], keys[1], "the trigger sent twice has one key");
    assert_ne!(keys[0], keys[2]);
    assert_eq!(
        count(&client, "SELECT count(*) FROM notifications").await,
        2
    );
    assert_eq!(count(&client, "SELECT count(*) FROM incidents").await, 1);
}
