//! How fast the web role renders its pages over a realistic database: 1,000 sites checked
//! every minute from 3 locations for 90 days, as the sink leaves it: daily rollups for 90
//! days, hourly rollups for the last 31 days (a full monthly partition; pages read hourly
//! rows for 7 days at most, each site and location's as an index range, so older hourly rows
//! cost nothing but disk), raw results for the last hour (read only for each location's
//! latest check and failed checks, by index), the site catalog (tags, groups, a quarter of
//! sites public), each location's state and each site's verdict, a verdict event per site,
//! 2% of sites down with an open incident and five resolved incidents per site. Each page is
//! fetched over HTTP from the web role running in this process, 5 times to warm up, then 30
//! times timed one after another.
//!
//! Run: `cargo bench -p sitewatch-sink --bench web_dashboard` (PostgreSQL on 127.0.0.1:5432,
//! or `DATABASE_ADMIN_URL`). Filling takes minutes; `WEB_BENCH_DB=name` keeps the database
//! under that name and reuses it on the next run. Figures in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta, Utc};
use sitewatch_sink::database::Database;
use sitewatch_sink::migrations;
use sitewatch_sink::partitions;
use sitewatch_sink::rollups::Sketch;
use sitewatch_sink::web::WebArgs;
use sitewatch_tests::http::get;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

const SITES: i32 = 1_000;
const LOCATIONS: [&str; 3] = ["eu", "us", "ap"];
const DAYS: i64 = 90;
const HOURLY_DAYS: i64 = 31;
const WARM_UP: usize = 5;
const TIMED: usize = 30;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let admin_url = std::env::var("DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());
    let kept = std::env::var("WEB_BENCH_DB").ok();
    let name = kept
        .clone()
        .unwrap_or_else(|| format!("sitewatch_bench_{}", uuid::Uuid::now_v7().simple()));
    let admin = connect(&admin_url).await;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some();
    let db_params = format!("{admin_url} dbname={name}");
    if !exists {
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut client = connect(&db_params).await;
        migrations::migrate(&mut client).await.unwrap();
        let started = Instant::now();
        fill(&mut client).await;
        eprintln!("filled {name} in {:.0?}", started.elapsed());
    } else {
        eprintln!("reusing {name}");
    }
    let client = connect(&db_params).await;
    for (what, sql) in [
        ("sites", "SELECT count(*) FROM sites"),
        ("daily rollup rows", "SELECT count(*) FROM rollup_daily"),
        (
            "site daily rollup rows",
            "SELECT count(*) FROM rollup_site_daily",
        ),
        ("hourly rollup rows", "SELECT count(*) FROM rollup_hourly"),
        ("raw results", "SELECT count(*) FROM results"),
    ] {
        let n: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
        eprintln!("{what}: {n}");
    }

    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let db = Database::new(&url, None, None).unwrap();
    let token = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn({
        let token = token.clone();
        async move {
            let args = WebArgs::from_flags(&[]).unwrap();
            sitewatch_sink::web::serve_on(listener, &db, args, token)
                .await
                .unwrap();
        }
    });

    println!("| page | p50 | p95 | max | bytes |");
    println!("| --- | --- | --- | --- | --- |");
    for path in [
        "/",
        "/api/v1/sites",
        "/metrics",
        "/sites/site-0500?range=90d",
        "/sites/site-0500?range=7d",
        "/status",
    ] {
        let addr = addr.clone();
        let line = tokio::task::spawn_blocking(move || time_page(&addr, path))
            .await
            .unwrap();
        println!("{line}");
    }
    token.cancel();
    let _ = server.await;
    if kept.is_none() {
        drop(client);
        admin
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}

fn time_page(addr: &str, path: &str) -> String {
    let mut bytes = 0;
    for _ in 0..WARM_UP {
        let r = get(addr, path, &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        bytes = r.body.len();
    }
    let mut took: Vec<Duration> = (0..TIMED)
        .map(|_| {
            let started = Instant::now();
            let r = get(addr, path, &[]);
            let t = started.elapsed();
            assert_eq!(r.status, 200);
            t
        })
        .collect();
    took.sort();
    let at = |q: f64| took[((q * TIMED as f64).ceil() as usize).clamp(1, TIMED) - 1];
    format!(
        "| `{path}` | {:.1} ms | {:.1} ms | {:.1} ms | {bytes} |",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(took[TIMED - 1])
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn connect(params: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(params, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// A few latency histograms the rollup rows take in turn (each of 60 or 1,440 checks).
fn sketches(checks: i64) -> Vec<Vec<u8>> {
    (0..8)
        .map(|k| {
            let mut s = Sketch::default();
            for i in 0..checks {
                s.add(20_000 + (i * 7_919 + k * 104_729) % (80_000 + k * 20_000));
            }
            s.encode()
        })
        .collect()
}

async fn fill(client: &mut Client) {
    let now = Utc::now();
    let today = now.duration_trunc(TimeDelta::days(1)).unwrap();
    let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap();
    let locations: Vec<String> = LOCATIONS.iter().map(|l| l.to_string()).collect();
    client
        .execute(
            "INSERT INTO locations (name) SELECT unnest($1::text[])",
            &[&locations],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO agents (name, location, location_id)
             SELECT 'agent-' || name, name, id FROM locations",
            &[],
        )
        .await
        .unwrap();
    // 2% of sites down since 40 minutes ago, 3% degraded, the rest up.
    client
        .execute(
            "INSERT INTO sites (name, url, first_seen, last_seen, current_outcome, last_change_at,
                                last_error_at, last_error_kind, last_error_message)
             SELECT format('site-%s', lpad(i::text, 4, '0')),
                    format('https://site-%s.example.net/health', i),
                    $1::timestamptz, $2::timestamptz,
                    CASE WHEN i % 50 = 0 THEN 'down' WHEN i % 33 = 0 THEN 'degraded' ELSE 'up' END,
                    CASE WHEN i % 50 = 0 THEN $2::timestamptz - interval '40 minutes' ELSE $1::timestamptz END,
                    CASE WHEN i % 50 = 0 THEN $2::timestamptz END,
                    CASE WHEN i % 50 = 0 THEN 'http_status' END,
                    CASE WHEN i % 50 = 0 THEN 'expected 200-399, got 503' END
             FROM generate_series(0, $3 - 1) i",
            &[&(today - TimeDelta::days(DAYS)), &now, &SITES],
        )
        .await
        .unwrap();
    // Verdict events, the site catalog (tags, groups, a quarter public), each location's
    // state, each site's verdict, an open incident for each down site and five resolved
    // ones per site over the 90 days, as the sink's verdict step leaves them.
    client
        .batch_execute(
            "INSERT INTO site_events (site, kind, previous_outcome, new_outcome, at, check_id, reason)
             SELECT name, 'verdict', NULL, 'up', first_seen, gen_random_uuid(), NULL FROM sites;
             INSERT INTO site_events (site, kind, previous_outcome, new_outcome, at, check_id, reason)
             SELECT name, 'verdict', 'up', 'down', last_change_at, gen_random_uuid(), last_error_message
             FROM sites WHERE current_outcome = 'down';
             INSERT INTO site_catalog (site, url, interval_ms, timeout_ms, failure_threshold,
                 success_threshold, quorum, tags, site_group, public, agent, location, published_at)
             SELECT name, url, 60000, 10000, 2, 1, 'majority', ARRAY['tier-' || (id % 3)],
                    'group-' || (id % 10), id % 4 = 0, 'agent-eu', 'eu', first_seen
             FROM sites;
             INSERT INTO incidents (site_id, started_at, opened_at, resolved_at, locations,
                 first_error_kind, first_error)
             SELECT s.id, s.first_seen + (k * 17 + s.id % 13) * interval '1 day',
                    s.first_seen + (k * 17 + s.id % 13) * interval '1 day' + interval '2 minutes',
                    s.first_seen + (k * 17 + s.id % 13) * interval '1 day' + (5 + s.id % 40) * interval '1 minute',
                    ARRAY['eu', 'us'], 'timeout', 'timed out after 10s'
             FROM sites s, generate_series(0, 4) k;
             INSERT INTO incidents (site_id, started_at, opened_at, locations, first_error_kind, first_error)
             SELECT id, last_change_at, last_change_at + interval '2 minutes', ARRAY['eu', 'us', 'ap'],
                    'http_status', last_error_message
             FROM sites WHERE current_outcome = 'down';
             INSERT INTO site_verdicts (site_id, verdict, since, judged_at, reason, interval_ms, incident_id)
             SELECT s.id, s.current_outcome, s.last_change_at, s.last_seen,
                    CASE s.current_outcome WHEN 'up' THEN '3 of 3 locations up'
                         WHEN 'degraded' THEN '2 of 3 locations degraded' ELSE '3 of 3 locations down' END,
                    60000, i.id
             FROM sites s LEFT JOIN incidents i ON i.site_id = s.id AND i.resolved_at IS NULL;
             INSERT INTO location_states (site_id, location_id, state, state_since, problem_since,
                 problem_kind, problem_message, up_run, not_down_run, not_up_run, down_run,
                 last_applied_at, last_result_at, last_outcome, gap_ms)
             SELECT s.id, l.id,
                    CASE s.current_outcome WHEN 'up' THEN 'passing' WHEN 'down' THEN 'failing' ELSE 'degraded' END,
                    s.last_change_at,
                    CASE WHEN s.current_outcome <> 'up' THEN s.last_change_at END,
                    s.last_error_kind, s.last_error_message,
                    CASE WHEN s.current_outcome = 'up' THEN 1440 ELSE 0 END,
                    CASE WHEN s.current_outcome = 'down' THEN 0 ELSE 1440 END,
                    CASE WHEN s.current_outcome = 'up' THEN 0 ELSE 40 END,
                    CASE WHEN s.current_outcome = 'down' THEN 40 ELSE 0 END,
                    s.last_seen, s.last_seen, s.current_outcome, 60000
             FROM sites s, locations l;",
        )
        .await
        .unwrap();

    let daily = sketches(1440);
    client
        .execute(
            "INSERT INTO rollup_daily (bucket, up_ms, degraded_ms, down_ms, total_us_sum, site_id,
                 up, degraded, down, total_us_min, total_us_max, location_id, latency)
             SELECT $1::timestamptz - d * interval '1 day', 86340000 - (s.id % 7) * 60000, 0, (s.id % 7) * 60000,
                    1440 * 60000, s.id, 1440 - s.id % 7, 0, s.id % 7, 20000, 180000, l.id,
                    ($2::bytea[])[1 + (s.id + d) % 8]
             FROM generate_series(0, $3::bigint - 1) d, sites s, locations l",
            &[&today, &daily, &DAYS],
        )
        .await
        .unwrap();
    // The per-site daily rows, as the migration that adds them fills them.
    let tx = client.transaction().await.unwrap();
    sitewatch_sink::rollups::site::fill(&tx).await.unwrap();
    tx.commit().await.unwrap();
    eprintln!("daily rollups written");

    let first_hour = today - TimeDelta::days(HOURLY_DAYS - 1);
    let days: Vec<chrono::NaiveDate> = (0..HOURLY_DAYS)
        .map(|d| (today - TimeDelta::days(d)).date_naive())
        .collect();
    partitions::ensure_days(client, days).await.unwrap();
    let hourly = sketches(60);
    let mut from = first_hour;
    while from <= hour {
        let to = (from + TimeDelta::days(10)).min(hour + TimeDelta::hours(1));
        client
            .execute(
                "INSERT INTO rollup_hourly (bucket, up_ms, degraded_ms, down_ms, total_us_sum, site_id,
                     up, degraded, down, total_us_min, total_us_max, location_id, latency)
                 SELECT b, 3600000 - (s.id % 3) * 1000, 0, (s.id % 3) * 1000, 60 * 60000, s.id,
                        60 - (s.id % 3 + extract(hour from b)::int) % 2, 0,
                        (s.id % 3 + extract(hour from b)::int) % 2, 20000, 180000, l.id,
                        ($3::bytea[])[1 + (s.id + extract(hour from b)::int) % 8]
                 FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 hour', interval '1 hour') b, sites s, locations l",
                &[&from, &to, &hourly],
            )
            .await
            .unwrap();
        eprintln!("hourly rollups written up to {to}");
        from = to;
    }

    // The last hour of raw results: every site from every location each minute.
    client
        .execute(
            "INSERT INTO results (started_at, site_id, total_us, dns_us, connect_us, tls_us, ttfb_us,
                 body_bytes, agent_id, outcome, error_kind, http_status, http_version, error_message)
             SELECT $1::timestamptz - m * interval '1 minute' - a.id * interval '1 second', s.id,
                    30000 + (s.id * 37 + m) % 90000, 900, 1500, 4000, 25000, 5120, a.id,
                    CASE WHEN s.current_outcome = 'down' AND m < 40 THEN 2 ELSE 0 END,
                    CASE WHEN s.current_outcome = 'down' AND m < 40 THEN 5 END,
                    CASE WHEN s.current_outcome = 'down' AND m < 40 THEN 503 ELSE 200 END, 11,
                    CASE WHEN s.current_outcome = 'down' AND m < 40 THEN 'expected 200-399, got 503' END
             FROM generate_series(0, 59) m, sites s, agents a",
            &[&now],
        )
        .await
        .unwrap();
    client.batch_execute("VACUUM ANALYZE").await.unwrap();
}
