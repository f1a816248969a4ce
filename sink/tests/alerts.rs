//! Alerts through the sink's batch pipeline and its dispatcher, against a real PostgreSQL
//! and real local webhook receivers (HTTP on 127.0.0.1): a global outage gives exactly one
//! trigger and one resolve per channel (also when batches are redelivered), a regional
//! fault none, a receiver failing its first three attempts gets the notification after
//! retries, a silence or a maintenance window sends nothing (and the pages show the
//! maintenance), two dispatchers on one database send each notification once, reminders
//! and one flapping notice, Alertmanager firing then resolved, and the sweep's resolve.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

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
use sitewatch_sink::alerts::{dispatch, silences, AlertMetrics, Alerts};
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{Batch, CatalogEntry, Pipeline, Row};
use sitewatch_tests::fixtures::result;
use support::TestDb;
use tokio_postgres::Client;

const INTERVAL: i64 = 10;
const LOCATIONS: [&str; 3] = ["eu", "us", "ap"];

/// What a receiver got: (path, body as JSON), in order.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    /// Requests answered 503 before the first 200.
    fail_first: Arc<AtomicUsize>,
    attempts: Arc<AtomicUsize>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port; returns it and its base URL.
    async fn start(fail_first: usize) -> (Receiver, String) {
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
    fn received(&self) -> Vec<(String, String, String)> {
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
fn policy(base: &str, extra: &str) -> Alerts {
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
struct Sim {
    db: TestDb,
    client: Client,
    pipeline: Pipeline,
    alerts: Arc<Alerts>,
    metrics: AlertMetrics,
    start: DateTime<Utc>,
    offset: i64,
}

impl Sim {
    async fn new(alerts: Alerts) -> Sim {
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
    async fn define(&mut self, site: &str, tags: &[&str]) {
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
    fn round(&mut self, site: &str, round: i64, outcomes: [Outcome; 3]) -> Vec<Row> {
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
    fn outage(&mut self, site: &str, down: [Outcome; 3]) -> Vec<Row> {
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

    async fn write(&mut self, batch: Batch) {
        self.pipeline.write(&mut self.client, &batch).await.unwrap();
    }

    async fn write_rows(&mut self, rows: &[Row]) {
        for chunk in rows.chunks(4) {
            self.write(Batch {
                rows: chunk.to_vec(),
                ..Batch::default()
            })
            .await;
        }
    }

    /// Runs dispatcher rounds until nothing is due (or 20 s pass).
    async fn deliver(&mut self) {
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

    async fn undelivered(&self) -> i64 {
        count(
            &self.client,
            "SELECT count(*) FROM notifications WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .await
    }

    /// (kind, channel) of every outbox row, in order.
    async fn outbox(&self) -> Vec<(String, String)> {
        self.client
            .query("SELECT kind, channel FROM notifications ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }
}

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

fn kinds(got: &[(String, String, String)]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (path, kind, _) in got {
        *out.entry((path.clone(), kind.clone())).or_default() += 1;
    }
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

use Outcome::{Down, Up};

#[tokio::test]
async fn a_global_outage_sends_one_trigger_and_one_resolve_per_channel() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    // The incident opened in the batch that made the verdict down: its triggers with it.
    assert_eq!(
        sim.outbox().await,
        pairs(&[("trigger", "a"), ("trigger", "b")])
    );
    sim.deliver().await;
    sim.write_rows(&rows[18..]).await;
    // Redelivered batches (Kafka at-least-once) write nothing more.
    sim.write_rows(&rows).await;
    sim.deliver().await;
    assert_eq!(
        sim.outbox().await,
        pairs(&[
            ("trigger", "a"),
            ("trigger", "b"),
            ("resolve", "a"),
            ("resolve", "b")
        ])
    );
    let got = receiver.received();
    let expected: BTreeMap<(String, String), usize> = [
        (("a".to_string(), "trigger".to_string()), 1),
        (("a".to_string(), "resolve".to_string()), 1),
        (("b".to_string(), "trigger".to_string()), 1),
        (("b".to_string(), "resolve".to_string()), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds(&got), expected, "{got:?}");
    // One key per (incident, kind, channel), each sent once.
    let mut keys: Vec<&String> = got.iter().map(|(_, _, k)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "{got:?}");
    let incident: i64 = sim
        .client
        .query_one("SELECT id FROM incidents", &[])
        .await
        .unwrap()
        .get(0);
    assert!(got
        .iter()
        .all(|(_, _, k)| k.contains(&format!("incident-{incident}:"))));
    let first = &receiver.got.lock().unwrap()[0].1;
    assert_eq!(first["site"], "shop");
    assert_eq!(first["incident_id"], incident);
    assert_eq!(first["first_error"], "refused from us");
    // The dispatcher counted them for /metrics.
    let mut text = sitewatch_checks::ops::MetricsText::new();
    sim.metrics.write(&mut text);
    let text = text.finish();
    assert!(
        text.contains("sitewatch_notifications_sent_total{channel=\"a\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_regional_fault_sends_nothing() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    sim.define("shop", &[]).await;
    // Only ap sees the site failing: degraded, never down.
    let rows = sim.outage("shop", [Up, Up, Down]);
    sim.write_rows(&rows).await;
    sim.deliver().await;
    assert_eq!(
        count(&sim.client, "SELECT count(*) FROM incidents").await,
        0
    );
    assert!(sim.outbox().await.is_empty());
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_receiver_failing_its_first_three_attempts_gets_the_notification_after_retries() {
    let (receiver, base) = Receiver::start(3).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    // Only channel a: three 503s go to a's first attempts... or b's: both share the
    // receiver, so 3 failures spread over the two rows; each is retried until delivered.
    sim.deliver().await;
    let got = receiver.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 5);
    let attempts: i64 = count(
        &sim.client,
        "SELECT sum(attempts)::bigint FROM notifications WHERE delivered_at IS NOT NULL",
    )
    .await;
    assert_eq!(attempts, 5, "3 failed attempts and 2 that delivered");
    assert_eq!(
        count(
            &sim.client,
            "SELECT count(*) FROM notifications WHERE last_error IS NOT NULL OR failed_at IS NOT NULL"
        )
        .await,
        0,
        "delivered rows keep no error"
    );
}

#[tokio::test]
async fn a_notification_retried_past_retry_for_is_recorded_failed() {
    let (receiver, base) = Receiver::start(usize::MAX).await;
    let mut sim = Sim::new(policy(&base, "retry_for: 300ms")).await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    sim.deliver().await;
    assert!(receiver.received().is_empty());
    assert_eq!(
        count(
            &sim.client,
            "SELECT count(*) FROM notifications WHERE failed_at IS NOT NULL AND attempts > 1
               AND last_error LIKE 'gave up after%'"
        )
        .await,
        2
    );
    let mut text = sitewatch_checks::ops::MetricsText::new();
    sim.metrics.write(&mut text);
    assert!(text
        .finish()
        .contains("sitewatch_notifications_failed_total{channel=\"b\"} 1"));
}

#[tokio::test]
async fn a_silence_sends_nothing_and_its_end_sends_the_trigger() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    sim.define("shop", &["payments"]).await;
    let silence = silences::add(
        &sim.client,
        "tag:payments",
        Duration::from_secs(3600),
        Some("deploy"),
    )
    .await
    .unwrap();
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    sim.deliver().await;
    assert!(sim.outbox().await.is_empty(), "silenced: nothing written");
    // Expired while the incident is open: the next pass writes the triggers.
    assert!(silences::expire(&sim.client, silence.id).await.unwrap());
    sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    sim.deliver().await;
    assert_eq!(kinds(&receiver.received()).len(), 2);
    sim.write_rows(&rows[18..]).await;
    sim.deliver().await;
    assert_eq!(
        sim.outbox().await,
        pairs(&[
            ("trigger", "a"),
            ("trigger", "b"),
            ("resolve", "a"),
            ("resolve", "b")
        ])
    );
}

#[tokio::test]
async fn an_incident_inside_a_maintenance_window_sends_nothing_and_the_pages_show_it() {
    let (receiver, base) = Receiver::start(0).await;
    let start = (Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let window = format!(
        "maintenance:\n  - {{ name: move, sites: ['shop'], start: '{start}', duration: 4h }}\n  \
         - {{ name: upgrade, tags: [db], start: '{tomorrow}', duration: 1h }}\n"
    );
    let mut sim = Sim::new(policy(&base, &window)).await;
    sim.define("shop", &["db"]).await;
    sim.define("blog", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows).await;
    let blog = sim.round("blog", 0, [Up; 3]);
    sim.write_rows(&blog).await;
    let pass = sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    sim.deliver().await;
    assert_eq!(
        count(&sim.client, "SELECT count(*) FROM incidents").await,
        1
    );
    assert!(sim.outbox().await.is_empty());
    assert!(receiver.received().is_empty());
    // The windows' time is recorded for the site they cover (shop), not for blog: the one
    // in progress and the one scheduled for tomorrow, once however often the pass runs.
    assert_eq!(pass.maintenance, 2);
    sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    let recorded: Vec<(String, String)> = sim
        .client
        .query(
            "SELECT s.name, m.window_name FROM maintenance_periods m JOIN sites s ON s.id = m.site_id
             ORDER BY m.starts_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(recorded, pairs(&[("shop", "move"), ("shop", "upgrade")]));

    // The site page and the public status page list them.
    let url = sim.db.url();
    let addr = tokio::task::spawn_blocking(move || web(&url))
        .await
        .unwrap();
    let get = |path: &'static str| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || sitewatch_tests::http::get(&addr, path, &[]))
    };
    // The site page lists both; the status page shows shop under maintenance and
    // tomorrow's window as scheduled.
    let site = get("/sites/shop").await.unwrap();
    assert_eq!(site.status, 200, "{}", site.body);
    assert!(
        site.body
            .contains("data-site=\"shop\" data-window=\"move\" data-state=\"active\"")
            && site
                .body
                .contains("data-site=\"shop\" data-window=\"upgrade\" data-state=\"scheduled\""),
        "{}",
        site.body
    );
    let status = get("/status").await.unwrap();
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body.contains("data-maintenance=\"move\"")
            && status
                .body
                .contains("<li class=\"scheduled\" data-window=\"upgrade\"")
            && status.body.contains("data-site=\"shop\">shop</span>"),
        "{}",
        status.body
    );
}

/// `sitewatch-sink web` on a free port of its own runtime thread; returns its address.
fn web(url: &str) -> String {
    let db = sitewatch_sink::database::Database::new(url, None, None).unwrap();
    let args = sitewatch_sink::web::WebArgs::from_flags(&[]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            let token = tokio_util::sync::CancellationToken::new();
            sitewatch_sink::web::serve_on(listener, &db, args, token)
                .await
                .unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap()
}

#[tokio::test]
async fn two_dispatchers_on_one_database_send_each_notification_once() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    // Ten sites' outages: 20 triggers.
    for i in 0..10 {
        let site = format!("site-{i}");
        sim.define(&site, &[]).await;
        let rows = sim.outage(&site, [Down, Down, Down]);
        sim.write_rows(&rows[..18]).await;
    }
    assert_eq!(sim.outbox().await.len(), 20);
    let url = sim.db.url();
    let alerts = sim.alerts.clone();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (url, alerts) = (url.clone(), alerts.clone());
        workers.push(tokio::spawn(async move {
            let mut client = support::connect(&url).await;
            let metrics = AlertMetrics::default();
            let mut claimed = 0;
            for _ in 0..20 {
                claimed += dispatch::round(&mut client, &alerts, &metrics)
                    .await
                    .unwrap()
                    .claimed;
            }
            claimed
        }));
    }
    let mut claimed = 0;
    for w in workers {
        claimed += w.await.unwrap();
    }
    assert_eq!(claimed, 20);
    let got = receiver.received();
    assert_eq!(got.len(), 20, "{got:?}");
    let mut keys: Vec<&String> = got.iter().map(|(_, _, k)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 20, "each key once");
}

#[tokio::test]
async fn reminders_follow_an_open_incident_and_flapping_sends_one_notice() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(
        &base,
        "reminder_every: 20m\nflapping: { changes: 4, window: 1h }\n",
    ))
    .await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    // Down from about an hour ago: reminder number 2 (of every 20 minutes) is due, only it.
    sim.write_rows(&rows[..18]).await;
    sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    sim.deliver().await;
    let got = receiver.received();
    let reminders: Vec<&String> = got
        .iter()
        .filter(|(_, kind, _)| kind == "reminder")
        .map(|(_, _, k)| k)
        .collect();
    assert_eq!(reminders.len(), 2, "{got:?}");
    assert!(reminders.iter().all(|k| k.contains(":reminder-2:")));
    // Recovery, then a second outage: verdict changes 5..8 within the hour make it
    // flapping: one notice per channel, and the second incident's triggers stay quiet.
    sim.write_rows(&rows[18..]).await;
    let mut again = Vec::new();
    for round in 10..20 {
        let o = if (12..17).contains(&round) {
            [Down; 3]
        } else {
            [Up; 3]
        };
        again.extend(sim.round("shop", round, o));
    }
    sim.write_rows(&again).await;
    sim.deliver().await;
    let outbox = sim.outbox().await;
    let flapping = outbox.iter().filter(|(k, _)| k == "flapping").count();
    assert_eq!(flapping, 2, "{outbox:?}");
    let triggers = outbox.iter().filter(|(k, _)| k == "trigger").count();
    assert_eq!(triggers, 2, "only the first incident's: {outbox:?}");
}

/// Alerts Alertmanager lists for `site` (`query` e.g. `?active=true`).
fn listed(am: &sitewatch_tests::alertmanager::Alertmanager, site: &str, query: &str) -> usize {
    am.alerts(query)
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["site"] == site)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_shows_the_incident_firing_then_resolved() {
    let am = tokio::task::spawn_blocking(sitewatch_tests::alertmanager::Alertmanager::start)
        .await
        .unwrap();
    let yaml = format!(
        "channels:\n  am: {{ type: alertmanager, url: '{}' }}\nroutes:\n  - channels: [am]\n",
        am.url()
    );
    let alerts = sitewatch_sink::alerts::file::parse(Path::new("test.yaml"), &yaml).unwrap();
    let mut sim = Sim::new(alerts).await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    sim.deliver().await;
    let am = Arc::new(am);
    let query = {
        let am = am.clone();
        move |q: &'static str| {
            let am = am.clone();
            tokio::task::spawn_blocking(move || listed(&am, "shop", q))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while query("?active=true").await.unwrap() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(query("?active=true").await.unwrap(), 1, "firing");
    sim.write_rows(&rows[18..]).await;
    sim.deliver().await;
    assert_eq!(
        sim.outbox().await,
        pairs(&[("trigger", "am"), ("resolve", "am")])
    );
    assert_eq!(query("?active=true").await.unwrap(), 0, "resolved");
}

#[tokio::test]
async fn an_incident_the_sweep_resolves_sends_its_resolve_from_the_sweep() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    // Checks up to now: eu and us fail (a majority: down) until about 35 s ago, then stop
    // reporting; ap passes until about 10 s ago. No batch sees eu and us silent (3 intervals,
    // 30 s, behind ap's latest check), the sweep at the database's clock does.
    sim.start = (Utc::now() - chrono::Duration::seconds(95)).trunc_subsecs(3);
    sim.define("shop", &[]).await;
    let mut rows = Vec::new();
    for round in 0..7 {
        rows.extend(sim.round("shop", round, [Down, Down, Up]));
    }
    for round in 7..9 {
        let ap = sim.round("shop", round, [Up; 3]);
        rows.extend(
            ap.into_iter()
                .filter(|r| r.result.location.as_deref() == Some("ap")),
        );
    }
    sim.write_rows(&rows).await;
    assert_eq!(
        sim.outbox().await,
        pairs(&[("trigger", "a"), ("trigger", "b")])
    );
    let sites = sitewatch_sink::verdicts::sweep_candidates(&sim.client, &[0])
        .await
        .unwrap();
    assert_eq!(sites.len(), 1);
    let saved = sitewatch_sink::verdicts::sweep_with(&mut sim.client, &sites, Some(&sim.alerts))
        .await
        .unwrap();
    assert_eq!(saved.resolved, 1, "eu and us left the vote: ap passing, up");
    sim.deliver().await;
    assert_eq!(
        sim.outbox().await,
        pairs(&[
            ("trigger", "a"),
            ("trigger", "b"),
            ("resolve", "a"),
            ("resolve", "b")
        ])
    );
    assert_eq!(receiver.received().len(), 4);
}
