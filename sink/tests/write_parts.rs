//! A backlog written in parts over two connections (`--write-connections 2`: each large
//! batch split by site, the parts stored in their own transactions at the same time) ends
//! in exactly the database one connection writes: the same results, rollups, location
//! states, verdicts, incidents and events, also when the sink's database connections are
//! killed mid-write (a part committed while another is retried). A global outage still opens
//! one incident per site (no missed alarm) and a one-location fault none (no false alarm).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sitewatch_checks::schema::CheckError;
use sitewatch_checks::{ErrorKind, Outcome};
use sitewatch_sink::SinkConfig;
use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use support::{column, count, create_topic, sink_config, TestDb};
use tokio_util::sync::CancellationToken;

const SITES: usize = 60;
const LOCATIONS: [&str; 3] = ["eu", "us", "ap"];
const CHECKS: usize = 40;
const RESULTS: i64 = (SITES * LOCATIONS.len() * CHECKS) as i64;

fn site(i: usize) -> String {
    format!("site-{i:02}")
}

/// Every site from every location once a minute, ending a minute ago, in time order
/// across sites (so every batch holds many sites). Sites `4k` are down everywhere for
/// checks 10-19 (a global outage); sites `4k+1` only from `eu` for checks 5-19.
fn workload() -> Vec<(String, Vec<u8>)> {
    let start = Utc::now() - chrono::Duration::minutes(CHECKS as i64 + 1);
    let mut all = Vec::new();
    for k in 0..CHECKS {
        for i in 0..SITES {
            for (l, location) in LOCATIONS.iter().enumerate() {
                let mut r = result(&site(i));
                r.agent = format!("{location}-1");
                r.location = Some(location.to_string());
                r.started_at = start
                    + chrono::Duration::minutes(k as i64)
                    + chrono::Duration::milliseconds((i * 10 + l) as i64);
                let down = match i % 4 {
                    0 => (10..20).contains(&k),
                    1 => *location == "eu" && (5..20).contains(&k),
                    _ => false,
                };
                if down {
                    r.outcome = Outcome::Down;
                    r.error = Some(CheckError {
                        kind: ErrorKind::Timeout,
                        message: "timed out".into(),
                    });
                }
                r.timings_ms.total = 10.0 + ((i * 7 + k * 3 + l) % 50) as f64;
                all.push((r.site.clone(), serde_json::to_vec(&r).unwrap()));
            }
        }
    }
    all
}

/// Sends every message before awaiting any delivery (one by one takes most of a minute).
async fn produce_all(broker: &Broker, topic: &str, payloads: Vec<(String, Vec<u8>)>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .unwrap();
    let pending: Vec<_> = payloads
        .iter()
        .map(|(key, value)| {
            let record = FutureRecord::to(topic).key(key).payload(value);
            producer.send_result(record).map_err(|(e, _)| e).unwrap()
        })
        .collect();
    for delivery in pending {
        delivery.await.unwrap().unwrap();
    }
}

/// The sink's settings here: batches of 3,000 (split at two connections), `/metrics` served
/// at the returned address.
fn config(broker: &Broker, topic: &str, group: &str, db: &TestDb) -> (SinkConfig, String) {
    let mut config = sink_config(broker, topic, group, db);
    config.batch_max_rows = 3000;
    config.batch_backlog_rows = 3000;
    config.batch_max_wait = Duration::from_secs(1);
    let ops = format!("127.0.0.1:{}", sitewatch_tests::free_port());
    config.listen = Some(ops.parse().unwrap());
    (config, ops)
}

/// A counter of the sink's `/metrics` at `ops` (`None` before it serves them).
fn metric(ops: &str, name: &str) -> Option<i64> {
    let metrics = sitewatch_tests::site::http_get(ops, "/metrics");
    sitewatch_tests::metrics::value(&metrics, name).map(|v| v as i64)
}

/// Drains the topic into a new database with `connections` write connections; returns the
/// database and how many batches were split. With `kills`, once the first results are
/// stored, the sink's database connections are terminated up to that many times, 400 ms apart
/// (mid-batch, mid-part: a part may be committed while another is rolled back).
async fn drain(broker: &Broker, topic: &str, connections: u16, kills: usize) -> (TestDb, i64) {
    let db = TestDb::create().await;
    let (mut config, ops) = config(broker, topic, &format!("parts-{connections}-{kills}"), &db);
    config.write_connections = connections;
    let token = CancellationToken::new();
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    let admin = db.client().await;
    let (mut rounds, mut killed) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let written = metric(&ops, "sitewatch_sink_rows_written_total");
        if written == Some(RESULTS) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sink did not store the backlog"
        );
        if rounds < kills && written.is_some_and(|n| n > 0) {
            rounds += 1;
            killed += count(
                &admin,
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()
                    AND backend_type = 'client backend'",
            )
            .await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The backlog may be stored before every round is due: at least one must have hit.
    assert!(kills == 0 || killed > 0, "no connection terminated");
    if kills > 0 {
        // The kills cost writes (retried), not just idle connections.
        let failed = metric(&ops, "sitewatch_sink_db_errors_total").unwrap_or(0);
        assert!(failed > 0, "no write failed");
    }
    let split = metric(&ops, "sitewatch_sink_batches_split_total").unwrap();
    token.cancel();
    sink.await.unwrap().unwrap();
    (db, split)
}

/// Every row of the tables the batch transaction writes, sites and locations by name (ids
/// are handed out in the order sites first appear, which differs between the two).
async fn dump(db: &TestDb) -> Vec<String> {
    let client = db.client().await;
    let mut rows = column(
        &client,
        "SELECT (to_jsonb(c) - 'site_id' - 'agent_id')::text FROM check_results c
          ORDER BY site, agent, started_at",
    )
    .await;
    for table in [
        "rollup_hourly",
        "rollup_daily",
        "rollup_site_daily",
        "rollup_cursors",
        "location_states",
        "site_verdicts",
        "incidents",
    ] {
        rows.extend(
            column::<String>(
                &client,
                &format!(
                    "SELECT concat_ws(' ', '{table}', s.name, l.name,
                            (to_jsonb(t) - 'site_id' - 'location_id' - 'id' - 'incident_id'
                             - 'kafka_partition')::text)
                       FROM {table} t JOIN sites s ON s.id = t.site_id
                       LEFT JOIN locations l ON l.id = (to_jsonb(t)->>'location_id')::int2
                      ORDER BY 1"
                ),
            )
            .await,
        );
    }
    rows.extend(
        column::<String>(
            &client,
            "SELECT (to_jsonb(e) - 'id' - 'incident_id' - 'recorded_at')::text FROM site_events e ORDER BY 1",
        )
        .await,
    );
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_written_in_parts_ends_as_written_whole() {
    let broker = Broker::start();
    let topic = create_topic(&broker, 6).await;
    produce_all(&broker, &topic, workload()).await;

    let (parts, split) = drain(&broker, &topic, 2, 0).await;
    assert!(split > 0, "no batch was written in parts");
    let (whole, not_split) = drain(&broker, &topic, 1, 0).await;
    assert_eq!(not_split, 0, "one connection never splits a batch");
    // Connections killed while batches are written in parts: parts are retried on their
    // own, offsets wait for all of them, and nothing is lost or counted twice.
    let (killed, _) = drain(&broker, &topic, 2, 4).await;

    let whole_rows = dump(&whole).await;
    for (db, what) in [
        (&parts, "in parts"),
        (&killed, "in parts, connections killed"),
    ] {
        let rows = dump(db).await;
        assert_eq!(rows.len(), whole_rows.len(), "{what} vs whole");
        for (a, b) in rows.iter().zip(&whole_rows) {
            assert_eq!(a, b, "{what} vs whole");
        }
    }

    // The comparison covers alarms: one incident per globally down site, each resolved,
    // and none for a site down from one location of three.
    let client = parts.client().await;
    let incidents: Vec<String> = column(
        &client,
        "SELECT s.name FROM incidents i JOIN sites s ON s.id = i.site_id
          WHERE i.resolved_at IS NOT NULL ORDER BY 1",
    )
    .await;
    let expected: Vec<String> = (0..SITES).filter(|i| i % 4 == 0).map(site).collect();
    assert_eq!(incidents, expected);
    assert_eq!(count(&client, "SELECT count(*) FROM incidents").await, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_its_connection_limit_still_takes_batches_in_parts() {
    let broker = Broker::start();
    let topic = create_topic(&broker, 6).await;
    produce_all(&broker, &topic, workload()).await;
    let db = TestDb::create().await;
    // A role allowed one connection: the sink's first; every other one is refused.
    let role = format!("sitewatch_one_{}", uuid::Uuid::now_v7().simple());
    let name = db.url().rsplit('/').next().unwrap().to_string();
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 1;
             ALTER DATABASE {name} OWNER TO {role};
             ALTER SCHEMA public OWNER TO {role};"
        ))
        .await
        .unwrap();
    let (mut config, ops) = config(&broker, &topic, "parts-limited", &db);
    config.database_url = db
        .url()
        .replace("postgres://postgres@", &format!("postgres://{role}@"));
    // No re-packer: it would take the one connection the role has.
    config.repack_after = sitewatch_sink::config::RepackAfter(None);
    let token = CancellationToken::new();
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    let deadline = Instant::now() + Duration::from_secs(90);
    while metric(&ops, "sitewatch_sink_rows_written_total") != Some(RESULTS) {
        assert!(
            Instant::now() < deadline,
            "a refused second connection stalled the sink"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(metric(&ops, "sitewatch_sink_batches_split_total").unwrap() > 0);
    token.cancel();
    sink.await.unwrap().unwrap();
    let client = db.client().await;
    assert_eq!(
        count(&client, "SELECT count(*) FROM check_results").await,
        RESULTS
    );
    assert_eq!(count(&client, "SELECT count(*) FROM incidents").await, 15);
    drop(client);
    drop(db);
    support::connect(&format!("{} dbname=postgres", support::SERVER))
        .await
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
}
