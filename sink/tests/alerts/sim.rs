//! The harness: a local webhook receiver, the policy, and a migrated database with a
//! pipeline that writes notifications and a dispatcher that delivers them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, SubsecRound, Utc};
use sitewatch_checks::catalog::{Quorum, SiteDefinition, CATALOG_SCHEMA_VERSION};
use sitewatch_checks::schema::CheckError;
use sitewatch_checks::{ErrorKind, Outcome};
use sitewatch_sink::alerts::{dispatch, AlertMetrics, Alerts};
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{Batch, CatalogEntry, Pipeline, Row};
use sitewatch_tests::fixtures::result;
use tokio_postgres::Client;

use crate::support::TestDb;

const INTERVAL: i64 = 10;
const LOCATIONS: [&str; 3] = ["eu", "us", "ap"];

/// What a receiver got: (path, body as JSON), in order.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    /// Requests answered 503 before the first 200.
    pub fail_first: Arc<AtomicUsize>,
    pub attempts: Arc<AtomicUsize>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port; returns it and its base URL.
    pub async fn start(fail_first: usize) -> (Receiver, String) {
        let receiver = Receiver::default();
        receiver.fail_first.store(fail_first, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/{name}", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, format!("http://{addr}"))
    }

    /// (path, kind, idempotency key) of everything received.
    pub fn received(&self) -> Vec<(String, String, String)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(path, body)| {
                (
                    path.clone(),
                    body["kind"].as_str().unwrap_or_default().to_string(),
                    body["idempotency_key"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    }
}

async fn receive(
    State(r): State<Receiver>,
    UrlPath(name): UrlPath<String>,
    body: String,
) -> StatusCode {
    let attempt = r.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if attempt <= r.fail_first.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    r.got.lock().unwrap().push((name, json));
    StatusCode::OK
}

/// The policy: channels `a` and `b` (webhooks to `base`), every site routed to both.
pub fn policy(base: &str, extra: &str) -> Alerts {
    let yaml = format!(
        "channels:
  a: {{ type: webhook, url: '{base}/a' }}
  b: {{ type: webhook, url: '{base}/b' }}
routes:
  - channels: [a, b]
retry_base: 50ms
{extra}"
    );
    sitewatch_sink::alerts::file::parse(Path::new("test.yaml"), &yaml).unwrap()
}

/// A migrated database, a pipeline with alerts and a clock an hour in the past.
pub struct Sim {
    pub db: TestDb,
    pub client: Client,
    pub pipeline: Pipeline,
    pub alerts: Arc<Alerts>,
    pub metrics: AlertMetrics,
    pub start: DateTime<Utc>,
    pub offset: i64,
}

impl Sim {
    pub async fn new(alerts: Alerts) -> Sim {
        let db = TestDb::create().await;
        let mut client = db.client().await;
        migrations::migrate(&mut client).await.unwrap();
        let alerts = Arc::new(alerts);
        Sim {
            db,
            client,
            pipeline: Pipeline::with_alerts(alerts.clone()),
            alerts,
            metrics: AlertMetrics::default(),
            start: (Utc::now() - chrono::Duration::hours(1)).trunc_subsecs(3),
            offset: 0,
        }
    }

    /// Defines `site` in the catalog with `tags`.
    pub async fn define(&mut self, site: &str, tags: &[&str]) {
        let entry = CatalogEntry {
            site: site.into(),
            definition: Some(SiteDefinition {
                schema: CATALOG_SCHEMA_VERSION,
                site: site.into(),
                url: format!("http://127.0.0.1/{site}"),
                interval_ms: (INTERVAL * 1000) as u64,
                timeout_ms: 5000,
                failure_threshold: 2,
                success_threshold: 1,
                quorum: Quorum::Majority,
                tags: tags.iter().map(|t| t.to_string()).collect(),
                group: Some("shop".into()),
                public: true,
                agent: "agent-eu".into(),
                location: Some("eu".into()),
                published_at: self.start,
            }),
            timestamp: self.start,
        };
        self.write(Batch {
            catalog: vec![entry],
            ..Batch::default()
        })
        .await;
    }

    /// One round of checks of `site`: `outcomes[i]` from `LOCATIONS[i]`.
    pub fn round(&mut self, site: &str, round: i64, outcomes: [Outcome; 3]) -> Vec<Row> {
        LOCATIONS
            .iter()
            .zip(outcomes)
            .enumerate()
            .map(|(i, (location, outcome))| {
                let mut r = result(site);
                r.agent = format!("agent-{location}");
                r.location = Some(location.to_string());
                r.started_at =
                    self.start + chrono::Duration::seconds(round * INTERVAL + 3 * i as i64);
                r.outcome = outcome;
                if outcome == Outcome::Down {
                    r.error = Some(CheckError {
                        kind: ErrorKind::Connect,
                        message: format!("refused from {location}"),
                    });
                }
                self.offset += 1;
                Row::new(0, self.offset, r)
            })
            .collect()
    }

    /// Rounds `0..10` of `site`: up, then `down` for rounds 2..7, then up.
    pub fn outage(&mut self, site: &str, down: [Outcome; 3]) -> Vec<Row> {
        (0..10)
            .flat_map(|round| {
                let o = if (2..7).contains(&round) {
                    down
                } else {
                    [Outcome::Up; 3]
                };
                self.round(site, round, o)
            })
            .collect()
    }

    pub async fn write(&mut self, batch: Batch) {
        self.pipeline.write(&mut self.client, &batch).await.unwrap();
    }

    pub async fn write_rows(&mut self, rows: &[Row]) {
        for chunk in rows.chunks(4) {
            self.write(Batch {
                rows: chunk.to_vec(),
                ..Batch::default()
            })
            .await;
        }
    }

    /// Runs dispatcher rounds until nothing is due (or 20 s pass).
    pub async fn deliver(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            dispatch::round(&mut self.client, &self.alerts, &self.metrics)
                .await
                .unwrap();
            if self.undelivered().await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    pub async fn undelivered(&self) -> i64 {
        count(
            &self.client,
            "SELECT count(*) FROM notifications WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .await
    }

    /// (kind, channel) of every outbox row, in order.
    pub async fn outbox(&self) -> Vec<(String, String)> {
        self.client
            .query("SELECT kind, channel FROM notifications ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }
}

pub async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

pub fn kinds(got: &[(String, String, String)]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (path, kind, _) in got {
        *out.entry((path.clone(), kind.clone())).or_default() += 1;
    }
    out
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
