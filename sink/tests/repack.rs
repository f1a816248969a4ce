//! Re-packing a finished day's results index against real PostgreSQL: a day written in time
//! order (index pages split half full) is rebuilt smaller once its day and the grace are
//! over, once, by one sink at a time, after dropping what an interrupted rebuild left; the
//! rebuilt key still refuses a redelivery and takes a late result; days not yet due are left
//! alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sitewatch_checks::CheckResult;
use sitewatch_sink::database::{Database, SslMode};
use sitewatch_sink::ops::SinkMetrics;
use sitewatch_sink::partitions;
use sitewatch_sink::pipeline::{write_batch, Row};
use sitewatch_sink::repack::{self, Due, MARKER};
use sitewatch_tests::fixtures::result;
use support::{batch, count, migrated, today_and_ago};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

const HOUR: Duration = Duration::from_secs(3600);
const SITES: i32 = 1000;
const AGENTS: i16 = 3;
const MINUTES: i32 = 60;

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

fn pkey(day: NaiveDate) -> String {
    format!("results_{}_pkey", day.format("%Y%m%d"))
}

/// (size in bytes, file node, comment) of an index.
async fn index_state(client: &Client, index: &str) -> (i64, i64, Option<String>) {
    let r = client
        .query_one(
            "SELECT pg_relation_size(c.oid), c.relfilenode::bigint,
                    obj_description(c.oid, 'pg_class')
             FROM pg_class c WHERE c.oid = $1::text::regclass",
            &[&index],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// An hour of `SITES` sites x `AGENTS` agents once a minute from the start of `day`,
/// inserted in time order as the sink receives them.
async fn fill_in_time_order(client: &Client, day: NaiveDate) {
    client
        .execute(
            "INSERT INTO results (started_at, site_id, total_us, agent_id, outcome)
             SELECT $1::timestamptz + m * interval '1 minute' + (s * 3 + a) * interval '10 ms',
                    s, 1000, a, 0
             FROM generate_series(0, $2 - 1) m, generate_series(1001, 1000 + $3) s,
                  generate_series(1, $4::int) a
             ORDER BY 1",
            &[&midnight(day), &MINUTES, &SITES, &i32::from(AGENTS)],
        )
        .await
        .unwrap();
}

async fn write(client: &mut Client, results: &[CheckResult]) -> u64 {
    let rows = results
        .iter()
        .enumerate()
        .map(|(i, r)| Row::new(0, i as i64, r.clone()))
        .collect();
    write_batch(client, &batch(rows)).await.unwrap().inserted
}

fn at(day: NaiveDate, hour: u32) -> CheckResult {
    let mut r = result("late-site");
    r.started_at = day.and_hms_opt(hour, 0, 0).unwrap().and_utc();
    r
}

async fn stored(client: &Client, day: NaiveDate) -> i64 {
    let table = format!("results_{}", day.format("%Y%m%d"));
    count(client, &format!("SELECT count(*) FROM {table}")).await
}

#[tokio::test]
async fn a_finished_day_is_repacked_once_and_still_refuses_redeliveries() {
    let (db, mut client) = migrated().await;
    let (today, ago) = today_and_ago();
    let (day, yesterday) = (ago(3), ago(1));
    partitions::ensure_days(&mut client, [day, yesterday, today])
        .await
        .unwrap();
    fill_in_time_order(&client, day).await;
    fill_in_time_order(&client, yesterday).await;
    fill_in_time_order(&client, today).await;
    let early = at(day, 12);
    assert_eq!(write(&mut client, std::slice::from_ref(&early)).await, 1);
    let rows = i64::from(SITES) * i64::from(AGENTS) * i64::from(MINUTES) + 1;
    assert_eq!(stored(&client, day).await, rows);

    // An interrupted rebuild: an INVALID copy of the key under the name REINDEX CONCURRENTLY
    // gives its copy (its build fails on a division by zero).
    let leftover = format!("{}_ccnew", pkey(day));
    let failed = client
        .batch_execute(&format!(
            "CREATE INDEX CONCURRENTLY {leftover} ON results_{} ((1 / (total_us - 1000)))",
            day.format("%Y%m%d")
        ))
        .await;
    assert!(failed.is_err(), "the leftover's build must fail");

    let (before, node_before, comment) = index_state(&client, &pkey(day)).await;
    assert_eq!(comment, None);
    let untouched_yesterday = index_state(&client, &pkey(yesterday)).await;
    let untouched_today = index_state(&client, &pkey(today)).await;

    // Half an hour after midnight: the day three days ago is due, yesterday (ended half an
    // hour ago, grace one hour) and today are not.
    let now = midnight(today) + chrono::Duration::minutes(30);
    let due = Due::at(now, HOUR, 14);
    let stop = CancellationToken::new();

    // Another sink holds the re-pack lock: this one does nothing.
    let other = db.client().await;
    other
        .execute("SELECT pg_advisory_lock($1)", &[&repack::LOCK])
        .await
        .unwrap();
    let pass = repack::run(&client, due, &stop).await.unwrap();
    assert!(pass.busy, "{pass:?}");
    assert!(pass.repacked.is_empty());
    assert_eq!(index_state(&client, &pkey(day)).await.1, node_before);
    drop(other);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let pass = repack::run(&client, due, &stop).await.unwrap();
    assert!(!pass.busy && !pass.cancelled, "{pass:?}");
    assert!(pass.failed.is_empty(), "{pass:?}");
    assert_eq!(pass.dropped_invalid, vec![leftover.clone()]);
    let names: Vec<&str> = pass.repacked.iter().map(|r| r.partition.as_str()).collect();
    assert_eq!(names, [format!("results_{}", day.format("%Y%m%d"))]);
    let (after, node_after, comment) = index_state(&client, &pkey(day)).await;
    assert_ne!(node_after, node_before, "the index was rebuilt");
    assert!(
        (after as f64) < 0.8 * before as f64,
        "written in time order the key is ~65% full, rebuilt ~90%: {before} -> {after} bytes"
    );
    assert_eq!(
        (pass.repacked[0].before, pass.repacked[0].after),
        (before, after)
    );
    assert!(comment.unwrap_or_default().starts_with(MARKER));
    let leftovers = count(
        &client,
        "SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_cc%'",
    )
    .await;
    assert_eq!(leftovers, 0, "no transient index is left");
    // Still the partition of the parent's key (a redelivery is refused through it).
    let attached: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_inherits
             WHERE inhrelid = $1::text::regclass AND inhparent = 'results_pkey'::regclass",
            &[&pkey(day)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(attached, 1);

    assert_eq!(
        index_state(&client, &pkey(yesterday)).await,
        untouched_yesterday
    );
    assert_eq!(index_state(&client, &pkey(today)).await, untouched_today);

    // Recorded: the next pass leaves it alone.
    let again = repack::run(&client, due, &stop).await.unwrap();
    assert!(again.repacked.is_empty(), "{again:?}");
    assert_eq!(index_state(&client, &pkey(day)).await.1, node_after);

    // A redelivery is still refused, a late result still stored.
    assert_eq!(write(&mut client, &[early.clone(), at(day, 13)]).await, 1);
    assert_eq!(stored(&client, day).await, rows + 1);

    // An hour and a half after midnight yesterday is due too; today still is not.
    let later = Due::at(midnight(today) + chrono::Duration::minutes(90), HOUR, 14);
    let pass = repack::run(&client, later, &stop).await.unwrap();
    let names: Vec<&str> = pass.repacked.iter().map(|r| r.partition.as_str()).collect();
    assert_eq!(names, [format!("results_{}", yesterday.format("%Y%m%d"))]);
    assert_eq!(index_state(&client, &pkey(today)).await, untouched_today);
}

#[tokio::test]
async fn days_retention_is_about_to_drop_are_left_alone() {
    let (_db, mut client) = migrated().await;
    let (today, ago) = today_and_ago();
    // Kept 14 days: 14 days ago is dropped after the next midnight, 13 a day later, 12
    // a day after that.
    partitions::ensure_days(&mut client, [ago(14), ago(13), ago(12)])
        .await
        .unwrap();
    let due = Due::at(midnight(today) + chrono::Duration::hours(2), HOUR, 14);
    let pass = repack::run(&client, due, &CancellationToken::new())
        .await
        .unwrap();
    let names: Vec<&str> = pass.repacked.iter().map(|r| r.partition.as_str()).collect();
    assert_eq!(names, [format!("results_{}", ago(12).format("%Y%m%d"))]);
}

#[tokio::test]
async fn a_dead_database_is_counted_and_shutdown_stops_the_task() {
    // Nothing listens on port 1.
    let dead = Database::new(
        "host=127.0.0.1 port=1 user=postgres dbname=none connect_timeout=2",
        Some(SslMode::Disable),
        None,
    )
    .unwrap();
    let metrics = std::sync::Arc::new(SinkMetrics::default());
    let stop = CancellationToken::new();
    repack::one_pass(&dead, HOUR, 14, &metrics, &stop).await;
    assert_eq!(metrics.repack_failures.get(), 1);
    assert_eq!(metrics.repacked.get(), 0);

    let task = tokio::spawn(repack::run_periodically(
        dead,
        HOUR,
        14,
        metrics.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metrics.repack_failures.get(), 2, "a pass at start");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the task stops once cancelled")
        .unwrap();
}
