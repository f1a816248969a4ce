//! Verdicts through the real pieces. Three agents (locations eu, us, ap) check local sites
//! into Tansu, publishing their site catalog too, and a sink judges them: a regional fault
//! seen from ap only is `degraded` with no down event, an outage seen everywhere is one
//! down event and one incident, and when the agents stop the sink's sweep finds every
//! location silent. Then a sink process SIGKILLed again and again through a global outage
//! and its recovery leaves exactly one down event and one incident, resolved.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use sitewatch_checks::catalog::{Quorum, SiteDefinition, CATALOG_SCHEMA_VERSION};
use sitewatch_checks::schema::CheckError;
use sitewatch_checks::{ErrorKind, Outcome};
use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use sitewatch_tests::site::{serve, Page};
use support::{create_topic, produce, sink_config, TestDb};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// A count; 0 while the sink has not created the tables yet.
async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

async fn verdict(client: &Client, site: &str) -> Option<String> {
    client
        .query_opt(
            "SELECT v.verdict FROM site_verdicts v JOIN sites s ON s.id = v.site_id
             WHERE s.name = $1",
            &[&site],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

/// Waits up to `limit` for `done`.
async fn until<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + limit;
    while !done().await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn agent_config(
    dir: &std::path::Path,
    broker: &Broker,
    topic: &str,
    location: &str,
    port: u16,
) -> sitewatch_agent::config::AgentConfig {
    // ap is the one region where `regional` fails.
    let regional = if location == "ap" { "error" } else { "ok" };
    let yaml = format!(
        "agent: {{ name: agent-{location}, location: {location} }}
kafka:
  brokers: [\"{broker}\"]
  topic: {topic}
  catalog_topic: {topic}.sites
  create_topic: {{ partitions: 2, replication_factor: 1 }}
defaults:
  interval: 1s
  timeout: 2s
  regex: Welcome
sites:
  - name: regional
    url: http://127.0.0.1:{port}/{regional}
  - name: everywhere
    url: http://127.0.0.1:{port}/error
  - name: healthy
    url: http://127.0.0.1:{port}/ok
",
        broker = broker.addr()
    );
    let path = dir.join(format!("{location}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    sitewatch_agent::config::load(&[path]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_a_regional_fault_and_an_outage_through_kafka() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 2).await;
    let port = serve(vec![
        Page::ok("/ok", "Welcome"),
        Page::ok("/error", "Welcome, but broken").status("500 Internal Server Error"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let agents = CancellationToken::new();
    let mut running = Vec::new();
    for location in ["eu", "us", "ap"] {
        let config = agent_config(dir.path(), &broker, &topic, location, port);
        running.push(tokio::spawn(sitewatch_agent::app::run(
            config,
            false,
            agents.clone(),
        )));
    }
    let sink = CancellationToken::new();
    let mut config = sink_config(&broker, &topic, "quorum", &db);
    config.catalog_topic = format!("{topic}.sites");
    let sink_task = tokio::spawn(sitewatch_sink::run(config, sink.clone()));
    let client = db.client().await;

    // Until every location has judged both faulty sites a few times over.
    until(Duration::from_secs(90), || async {
        count(
            &client,
            "SELECT count(*) FROM location_states WHERE state = 'failing'",
        )
        .await
            >= 4
            && count(&client, "SELECT count(*) FROM site_catalog").await == 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    agents.cancel();
    for agent in running {
        agent.await.unwrap().unwrap();
    }

    // The catalog came through Kafka: the agents' interval and default thresholds.
    let (interval, failure): (i64, i32) = {
        let r = client
            .query_one(
                "SELECT interval_ms, failure_threshold FROM site_catalog WHERE site = 'healthy'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((interval, failure), (1000, 2));
    let down_events = |site: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT count(*) FROM site_events
                     WHERE site = $1 AND kind = 'verdict' AND new_outcome = 'down'",
                    &[&site],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(
        down_events("regional").await,
        0,
        "a regional fault is not down"
    );
    assert_eq!(down_events("everywhere").await, 1);
    assert_eq!(down_events("healthy").await, 0);
    let degraded: i64 = client
        .query_one(
            "SELECT count(*) FROM site_events WHERE site = 'regional' AND new_outcome = 'degraded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(degraded, 1);
    let ap: String = client
        .query_one(
            "SELECT ls.state FROM location_states ls JOIN sites s ON s.id = ls.site_id
             JOIN locations l ON l.id = ls.location_id
             WHERE s.name = 'regional' AND l.name = 'ap'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ap, "failing");
    let incident = client
        .query_one(
            "SELECT i.locations, i.resolved_at IS NULL FROM incidents i
             JOIN sites s ON s.id = i.site_id WHERE s.name = 'everywhere'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(incident.get::<_, Vec<String>>(0), ["ap", "eu", "us"]);
    assert!(
        incident.get::<_, bool>(1),
        "still down when the agents stop"
    );
    assert_eq!(count(&client, "SELECT count(*) FROM incidents").await, 1);

    // The agents are gone: within a few intervals the sweep finds every location silent.
    until(Duration::from_secs(45), || async {
        count(
            &client,
            "SELECT count(*) FROM site_verdicts WHERE verdict = 'unknown'",
        )
        .await
            == 3
    })
    .await;
    for site in ["regional", "everywhere", "healthy"] {
        assert_eq!(
            verdict(&client, site).await.as_deref(),
            Some("unknown"),
            "{site}"
        );
    }
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM site_events WHERE kind = 'location_silent'"
        )
        .await,
        9
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM incidents WHERE resolved_at IS NULL"
        )
        .await,
        1,
        "no data is not a recovery"
    );
    sink.cancel();
    sink_task.await.unwrap().unwrap();
}

/// Results of `sites` from eu, us and ap (2 s apart) every 10 s for `rounds` rounds from
/// `start`, down (timing out) in the rounds `down`, as Kafka messages keyed by site.
fn outage(
    sites: &[&str],
    start: chrono::DateTime<Utc>,
    rounds: i64,
    down: std::ops::Range<i64>,
) -> Vec<(String, Vec<u8>)> {
    let mut messages = Vec::new();
    for round in 0..rounds {
        for site in sites {
            for (i, location) in ["eu", "us", "ap"].into_iter().enumerate() {
                let mut r = result(site);
                r.agent = format!("agent-{location}");
                r.location = Some(location.into());
                r.started_at =
                    start + chrono::Duration::milliseconds(round * 10_000 + i as i64 * 2_000);
                if down.contains(&round) {
                    r.outcome = Outcome::Down;
                    r.error = Some(CheckError {
                        kind: ErrorKind::Timeout,
                        message: format!("timed out from {location}"),
                    });
                }
                messages.push((site.to_string(), serde_json::to_vec(&r).unwrap()));
            }
        }
    }
    messages
}

/// The verdict changes of `site`, in order.
async fn verdict_changes(client: &Client, site: &str) -> Vec<(Option<String>, String)> {
    client
        .query(
            "SELECT previous_outcome, new_outcome FROM site_events
             WHERE site = $1 AND kind = 'verdict' ORDER BY at, id",
            &[&site],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// What an outage seen everywhere and its recovery give.
fn outage_changes() -> Vec<(Option<String>, String)> {
    [
        ("up", "degraded"),
        ("degraded", "down"),
        ("down", "degraded"),
        ("degraded", "up"),
    ]
    .iter()
    .map(|(a, b)| (Some(a.to_string()), b.to_string()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sinks_sharing_the_partitions_keep_one_truth() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 4).await;
    let sites: Vec<String> = (0..12).map(|i| format!("site-{i}")).collect();
    let names: Vec<&str> = sites.iter().map(String::as_str).collect();
    let start = (Utc::now() - chrono::Duration::seconds(400)).trunc_subsecs(3);
    let messages = outage(&names, start, 40, 10..25);
    let total = messages.len() as i64;
    produce(&broker, &topic, messages).await;
    let client = db.client().await;

    // One sink starts; a second joins mid-stream (a rebalance), both small batches.
    let token = CancellationToken::new();
    let config = || {
        let mut c = sink_config(&broker, &topic, "pair", &db);
        c.batch_max_rows = 20;
        c
    };
    let a = tokio::spawn(sitewatch_sink::run(config(), token.clone()));
    until(Duration::from_secs(60), || async {
        count(&client, "SELECT count(*) FROM results").await >= total / 4
    })
    .await;
    let b = tokio::spawn(sitewatch_sink::run(config(), token.clone()));
    until(Duration::from_secs(120), || async {
        count(&client, "SELECT count(*) FROM results").await >= total
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    token.cancel();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM results").await, total);
    for site in &names {
        assert_eq!(
            verdict_changes(&client, site).await,
            outage_changes(),
            "{site}"
        );
    }
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM incidents WHERE resolved_at IS NOT NULL"
        )
        .await,
        12,
        "one incident per site, resolved"
    );
    assert_eq!(count(&client, "SELECT count(*) FROM incidents").await, 12);
}

fn start_sink(broker: &Broker, topic: &str, db: &TestDb) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
        .env("SITEWATCH_BROKERS", broker.addr())
        .env("SITEWATCH_TOPIC", topic)
        .env("SITEWATCH_CATALOG_TOPIC", format!("{topic}.sites"))
        .env("SITEWATCH_GROUP", "killed")
        .env("SITEWATCH_DATABASE_URL", db.url())
        .env("SITEWATCH_BATCH_MAX_ROWS", "7")
        // Small batches throughout, also behind (no growth), so the kills land mid-way.
        .env("SITEWATCH_BATCH_BACKLOG_ROWS", "7")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_killed_again_and_again_mid_incident_keeps_one_incident_and_one_down_event() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 2).await;
    // A catalog entry with a 10 s interval, and 60 rounds of three locations 10 s apart
    // ending now: up, down from round 20 to 39, up again.
    let start = (Utc::now() - chrono::Duration::seconds(600)).trunc_subsecs(3);
    let definition = SiteDefinition {
        schema: CATALOG_SCHEMA_VERSION,
        site: "shop".into(),
        url: "http://127.0.0.1/shop".into(),
        interval_ms: 10_000,
        timeout_ms: 5_000,
        failure_threshold: 2,
        success_threshold: 1,
        quorum: Quorum::Majority,
        tags: Vec::new(),
        group: None,
        public: false,
        agent: "agent-eu".into(),
        location: Some("eu".into()),
        published_at: start,
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .unwrap();
    let catalog_topic = format!("{topic}.sites");
    let catalog = NewTopic::new(&catalog_topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact");
    admin
        .create_topics([&catalog], &AdminOptions::new())
        .await
        .unwrap();
    produce(
        &broker,
        &format!("{topic}.sites"),
        vec![("shop".into(), serde_json::to_vec(&definition).unwrap())],
    )
    .await;
    let messages = outage(&["shop"], start, 60, 20..40);
    produce(&broker, &topic, messages).await;
    let client = db.client().await;
    let stored = || async {
        client
            .query_one("SELECT count(*) FROM results", &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0)
    };

    // Killed as soon as each run has stored a few more batches: mid-incident for some.
    let mut progress = Vec::new();
    let mut seen = 0;
    for _ in 0..5 {
        let mut sink = start_sink(&broker, &topic, &db);
        let deadline = Instant::now() + Duration::from_secs(60);
        while stored().await < seen + 25 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sink.kill().unwrap(); // SIGKILL: no flush, no commit
        sink.wait().unwrap();
        seen = stored().await;
        progress.push(seen);
    }
    let mut sink = start_sink(&broker, &topic, &db);
    until(Duration::from_secs(90), || async { stored().await >= 180 }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sink.kill().unwrap();
    sink.wait().unwrap();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]) && progress[4] < 180,
        "runs were killed before the end: {progress:?}"
    );
    assert_eq!(stored().await, 180);

    assert_eq!(verdict_changes(&client, "shop").await, outage_changes());
    let r = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE resolved_at IS NOT NULL),
                    min(started_at), min(resolved_at)
             FROM incidents",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (1, 1));
    let started: chrono::DateTime<Utc> = r.get(2);
    assert_eq!(
        started,
        start + chrono::Duration::milliseconds(200_000 + 2_000)
    );
    let resolved: chrono::DateTime<Utc> = r.get(3);
    assert_eq!(
        resolved,
        start + chrono::Duration::milliseconds(400_000 + 2_000)
    );
}
