//! Tiered retention against real PostgreSQL: raw results, hourly rollups and daily rollups
//! (per location and per site) each kept for their own time; dropping raw days keeps what
//! the rollups say about them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use chrono::{DateTime, NaiveDate, Utc};
use sitewatch_sink::pipeline::{write_batch, Row};
use sitewatch_sink::retention::{self, Retention};
use sitewatch_tests::fixtures::result;
use support::{batch, column, count, migrated, today_and_ago, value};
use tokio_postgres::Client;

fn noon(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(12, 0, 0).unwrap().and_utc()
}

/// The days of `table`'s buckets, in order.
async fn bucket_days(client: &Client, table: &str) -> Vec<NaiveDate> {
    let buckets: Vec<DateTime<Utc>> = column(
        client,
        &format!("SELECT bucket FROM {table} ORDER BY bucket"),
    )
    .await;
    buckets.iter().map(|b| b.date_naive()).collect()
}

async fn partitions(client: &Client, parent: &str) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = $1::text::regclass ORDER BY 1",
            &[&parent],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn each_tier_is_kept_for_its_own_time_and_rollups_outlive_raw_results() {
    let (_db, mut client) = migrated().await;
    let (today, ago) = today_and_ago();
    // One check on each of these days (the oldest in a month wholly past 180 days).
    let days = [ago(220), ago(20), ago(13), ago(1)];
    let rows = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let mut r = result("site");
            r.started_at = noon(*day);
            Row::new(0, i as i64, r)
        })
        .collect();
    write_batch(&mut client, &batch(rows)).await.unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM rollup_daily").await, 4);
    assert_eq!(
        count(&client, "SELECT count(*) FROM rollup_site_daily").await,
        4
    );
    // Alert history: a notification delivered and a maintenance period ended 200 days ago
    // go with the hourly rollups; one still pending after as long, and recent ones, stay.
    let old = noon(ago(200));
    let recent = noon(ago(2));
    client
        .execute(
            "INSERT INTO notifications (kind, channel, idempotency_key, payload, created_at,
                                        delivered_at, failed_at)
             VALUES ('test', 'hook', 'delivered-old', '{}', $1, $1, NULL),
                    ('test', 'hook', 'pending-old', '{}', $1, NULL, NULL),
                    ('test', 'hook', 'failed-recent', '{}', $2, NULL, $2)",
            &[&old, &recent],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO maintenance_periods (site_id, window_name, starts_at, ends_at)
             SELECT id, 'move', $1::timestamptz, $1::timestamptz + interval '1 hour' FROM sites
             UNION ALL SELECT id, 'move', $2::timestamptz, $2::timestamptz + interval '1 hour' FROM sites",
            &[&old, &recent],
        )
        .await
        .unwrap();

    let tiers = Retention {
        raw_days: 14,
        hourly_days: 180,
        daily_days: None,
    };
    let dropped = retention::apply(&mut client, &tiers, today).await.unwrap();
    let day_name = |d: NaiveDate| format!("results_{}", d.format("%Y%m%d"));
    assert_eq!(dropped.raw, vec![day_name(days[0]), day_name(days[1])]);
    assert_eq!(
        dropped.hourly,
        vec![format!("rollup_hourly_{}", days[0].format("%Y%m"))]
    );
    assert_eq!((dropped.daily_rows, dropped.site_daily_rows), (0, 0));
    assert_eq!(
        (dropped.notifications, dropped.maintenance_periods),
        (1, 1),
        "only the finished notification and the period ended before the hourly cut go"
    );
    let kept: Vec<String> = column(
        &client,
        "SELECT idempotency_key FROM notifications ORDER BY id",
    )
    .await;
    assert_eq!(kept, ["pending-old", "failed-recent"]);
    assert_eq!(
        count(&client, "SELECT count(*) FROM maintenance_periods").await,
        1
    );
    assert_eq!(
        partitions(&client, "results").await,
        vec![day_name(days[2]), day_name(days[3])]
    );
    assert_eq!(count(&client, "SELECT count(*) FROM results").await, 2);
    // Hourly rollups of the raw days just dropped are still there, daily ones of all.
    assert_eq!(bucket_days(&client, "rollup_hourly").await, days[1..]);
    for table in ["rollup_daily", "rollup_site_daily"] {
        assert_eq!(
            count(&client, &format!("SELECT sum(up) FROM {table}")).await,
            4,
            "every check is still counted in {table}"
        );
    }
    let cut: Option<NaiveDate> =
        value(&client, "SELECT raw_dropped_before FROM retention_state").await;
    assert_eq!(cut, Some(ago(14)));
    // A second pass has nothing left to drop.
    let again = retention::apply(&mut client, &tiers, today).await.unwrap();
    assert!(again.raw.is_empty() && again.hourly.is_empty());

    // Daily rollups go too when given a retention.
    let dropped = retention::apply(
        &mut client,
        &Retention {
            daily_days: Some(100),
            ..tiers
        },
        today,
    )
    .await
    .unwrap();
    assert_eq!((dropped.daily_rows, dropped.site_daily_rows), (1, 1));
    for table in ["rollup_daily", "rollup_site_daily"] {
        assert_eq!(bucket_days(&client, table).await, days[1..], "{table}");
    }
}
