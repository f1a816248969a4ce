//! The schema's versions against real PostgreSQL: a version-1 database with data converts
//! in place and keeps it, a schema newer than the sink knows is refused, migrations run
//! concurrently apply once, and the writer's column list is the table's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use chrono::{DateTime, Days, SubsecRound, Utc};
use sitewatch_checks::Outcome;
use sitewatch_sink::codes;
use sitewatch_sink::migrations::{self, MigrationError};
use sitewatch_sink::pipeline::{write_batch, Row, RESULT_COLUMNS, RESULT_COLUMN_TYPES};
use sitewatch_tests::fixtures::result;
use support::{batch, column, count, migrated, TestDb};
use tokio_postgres::Client;

/// start, site, url, agent, location, outcome, error kind, error message
type V1Row<'a> = (
    DateTime<Utc>,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
);

/// Version-1 rows as the version-1 sink wrote them, over two daily partitions.
async fn fill_version_1(client: &Client, today: DateTime<Utc>) -> DateTime<Utc> {
    let earlier = today.checked_sub_days(Days::new(3)).unwrap();
    for day in [earlier.date_naive(), today.date_naive()] {
        let next = day.checked_add_days(Days::new(1)).unwrap();
        client
            .batch_execute(&format!(
                "CREATE TABLE check_results_{} PARTITION OF check_results
                 FOR VALUES FROM ('{day}T00:00:00Z') TO ('{next}T00:00:00Z')",
                day.format("%Y%m%d")
            ))
            .await
            .unwrap();
    }
    let insert = "INSERT INTO check_results (started_at, check_id, site, url, agent, location,
             outcome, error_kind, error_message, http_status, http_version, body_bytes,
             body_truncated, dns_ms, connect_ms, tls_ms, ttfb_ms, total_ms, tls_not_after,
             tls_days_left, regex_pattern, regex_matched, regex_absent_matched, plugins,
             schema_version, kafka_partition, kafka_offset)
         VALUES ($1, gen_random_uuid(), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                 $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, 1, 0, 0)";
    let plugins = serde_json::json!([{"name": "p", "outcome": "warn", "message": "m"}]);
    let cert = today.checked_add_days(Days::new(40)).unwrap();
    // shop: https from eu, degraded then down; api: plain http from an agent without a location.
    let rows: Vec<V1Row> = vec![
        (
            earlier,
            "shop",
            "https://shop/old",
            "agent-1",
            Some("eu"),
            "up",
            None,
            None,
        ),
        (
            today - chrono::Duration::minutes(3),
            "shop",
            "https://shop/",
            "agent-1",
            Some("eu"),
            "degraded",
            Some("slow"),
            Some("took 2.5 s"),
        ),
        (
            today - chrono::Duration::minutes(2),
            "shop",
            "https://shop/",
            "agent-1",
            Some("eu"),
            "down",
            Some("http_status"),
            Some("got 503"),
        ),
        (
            today - chrono::Duration::minutes(1),
            "api",
            "http://api/health",
            "agent-2",
            None,
            "up",
            None,
            None,
        ),
    ];
    for (i, (at, site, url, agent, location, outcome, kind, message)) in rows.iter().enumerate() {
        let https = site == &"shop";
        client
            .execute(
                insert,
                &[
                    at,
                    site,
                    url,
                    agent,
                    location,
                    outcome,
                    kind,
                    message,
                    &Some(if *outcome == "down" { 503i32 } else { 200 }),
                    &Some(if https { "HTTP/2.0" } else { "HTTP/1.1" }),
                    &Some(5120i64 + i as i64),
                    &Some(false),
                    &Some(0.5f64),
                    &Some(1.25f64),
                    &https.then_some(8.125f64),
                    &Some(20.5f64),
                    &(31.375f64 + i as f64),
                    &https.then_some(cert),
                    &https.then_some(40i32),
                    &https.then_some("In stock"),
                    &https.then_some(true),
                    &None::<bool>,
                    &(i == 1).then_some(&plugins),
                ],
            )
            .await
            .unwrap();
    }
    client
        .batch_execute(&format!(
            "INSERT INTO sites (name, url, first_seen, last_seen, current_outcome, last_change_at)
             VALUES ('shop', 'https://shop/', '{e}', '{t}', 'down', '{t}'),
                    ('api', 'http://api/health', '{t}', '{t}', 'up', '{t}');
             INSERT INTO site_events (site, previous_outcome, new_outcome, at, check_id, reason)
             VALUES ('shop', NULL, 'up', '{e}', gen_random_uuid(), NULL),
                    ('shop', 'up', 'degraded', '{t}', gen_random_uuid(), 'took 2.5 s'),
                    ('shop', 'degraded', 'down', '{t}', gen_random_uuid(), 'got 503'),
                    ('api', NULL, 'up', '{t}', gen_random_uuid(), NULL);
             INSERT INTO rejected_messages (topic, kafka_partition, kafka_offset, error, payload)
             VALUES ('t', 0, 7, 'not a check result', 'junk');",
            e = earlier.to_rfc3339(),
            t = today.to_rfc3339()
        ))
        .await
        .unwrap();
    cert
}

/// Every stored result, decoded through the `check_results` view, in a stable order: every
/// column version 2 keeps per result (not the URL, which is the site's latest).
async fn results_as_text(client: &Client) -> Vec<String> {
    column(
        client,
        "SELECT concat_ws('|', started_at, site, agent, location, outcome, error_kind,
                    error_message, http_status, http_version, body_bytes, body_truncated, dns_ms,
                    connect_ms, tls_ms, ttfb_ms, total_ms, tls_days_left, regex_pattern,
                    regex_matched, regex_absent_matched, plugins)
             FROM check_results ORDER BY started_at, site",
    )
    .await
}

#[tokio::test]
async fn a_version_1_database_with_data_is_converted_in_place_and_keeps_it() {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    assert_eq!(migrations::migrate_to(&mut client, 1).await.unwrap(), 1);
    let today = Utc::now().trunc_subsecs(3);
    let cert = fill_version_1(&client, today).await;
    let before = results_as_text(&client).await;
    assert_eq!(before.len(), 4);

    let applied = migrations::migrate(&mut client).await.unwrap();
    assert_eq!(applied, migrations::LATEST as usize - 1);
    // The same results, read with the same query, through the view over the compact table.
    assert_eq!(results_as_text(&client).await, before);
    assert_eq!(count(&client, "SELECT count(*) FROM results").await, 4);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM site_events WHERE kind = 'outcome'"
        )
        .await,
        4,
        "version-1 events are kept as outcome changes"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM rejected_messages").await,
        1
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'check_results_%'"
        )
        .await,
        0,
        "version-1 partitions are gone"
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'results'::regclass"
        )
        .await,
        2,
        "a results partition per version-1 day"
    );
    let shop = client
        .query_one(
            "SELECT url, regex_pattern, tls_not_after, last_error_kind, last_error_message,
                    current_outcome
             FROM sites WHERE name = 'shop'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(shop.get::<_, &str>(0), "https://shop/");
    assert_eq!(shop.get::<_, Option<&str>>(1), Some("In stock"));
    assert_eq!(shop.get::<_, Option<DateTime<Utc>>>(2), Some(cert));
    assert_eq!(shop.get::<_, Option<&str>>(3), Some("http_status"));
    assert_eq!(shop.get::<_, Option<&str>>(4), Some("got 503"));
    assert_eq!(shop.get::<_, Option<&str>>(5), Some("down"));

    // Results stored before rollups existed are rolled up when the sink next starts.
    assert_eq!(count(&client, "SELECT count(*) FROM rollup_daily").await, 0);
    sitewatch_sink::rollups::rebuild::run_pending(&mut client)
        .await
        .unwrap();
    assert_eq!(
        count(
            &client,
            "SELECT sum(up + degraded + down) FROM rollup_daily"
        )
        .await,
        4
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM rollup_rebuilds_pending").await,
        0
    );

    // The sink carries on: a redelivered version-1 result is a no-op, a new one is stored
    // under the existing ids and continues the site's events.
    let mut again = result("api");
    again.agent = "agent-2".into();
    again.location = None;
    again.started_at = today - chrono::Duration::minutes(1);
    let mut next = result("shop");
    next.agent = "agent-1".into();
    next.location = Some("eu".into());
    next.started_at = today;
    let stats = write_batch(
        &mut client,
        &batch(vec![Row::new(0, 1, again), Row::new(0, 2, next)]),
    )
    .await
    .unwrap();
    assert_eq!(
        stats.inserted, 1,
        "the redelivered version-1 result is not stored twice"
    );
    // Verdicts start with version 4: the site's first verdict, up, is no event.
    assert_eq!(stats.step("verdicts"), 0);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM site_verdicts WHERE verdict = 'up'"
        )
        .await,
        1
    );
    assert_eq!(count(&client, "SELECT count(*) FROM sites").await, 2);
    assert_eq!(count(&client, "SELECT count(*) FROM agents").await, 2);
}

#[tokio::test]
async fn version_1_rows_convert_as_the_writer_encodes_the_same_values() {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate_to(&mut client, 1).await.unwrap();
    let at = Utc::now().trunc_subsecs(3);
    let day = at.date_naive();
    client
        .batch_execute(&format!(
            "CREATE TABLE check_results_{} PARTITION OF check_results
             FOR VALUES FROM ('{day}T00:00:00Z') TO ('{}T00:00:00Z');
             INSERT INTO sites (name, url, first_seen, last_seen, current_outcome, last_change_at)
             VALUES ('edge', 'http://edge/', now(), now(), 'down', now());",
            day.format("%Y%m%d"),
            day.checked_add_days(Days::new(1)).unwrap()
        ))
        .await
        .unwrap();
    // Values at the edges of every conversion: rounding, saturation, odd versions.
    client
        .execute(
            "INSERT INTO check_results (started_at, check_id, site, url, agent, location, outcome,
                 error_kind, error_message, http_status, http_version, body_bytes, body_truncated,
                 dns_ms, connect_ms, tls_ms, ttfb_ms, total_ms, tls_days_left, regex_matched,
                 schema_version, kafka_partition, kafka_offset)
             VALUES ($1, gen_random_uuid(), 'edge', 'http://edge/', 'a', '', 'down', 'body',
                     'reset', 599, 'HTTP/0.9', 5000000000, true, 0.0005, 0.0015, 12.3456,
                     3000000.0, 7.25, -40000, false, 1, 0, 0)",
            &[&at],
        )
        .await
        .unwrap();
    migrations::migrate(&mut client).await.unwrap();

    let mut r = result("edge-rust");
    r.agent = "a".into();
    r.location = Some(String::new());
    r.started_at = at;
    r.outcome = Outcome::Down;
    r.error = Some(sitewatch_checks::schema::CheckError {
        kind: sitewatch_checks::ErrorKind::Body,
        message: "reset".into(),
    });
    r.http = Some(sitewatch_checks::schema::HttpInfo {
        status: 599,
        version: "HTTP/0.9".into(),
        body_bytes: 5_000_000_000,
        body_truncated: true,
        redirects: 0,
    });
    r.timings_ms = sitewatch_checks::schema::Timings {
        dns: Some(0.0005),
        connect: Some(0.0015),
        tls: Some(12.3456),
        ttfb: Some(3_000_000.0),
        total: 7.25,
    };
    r.tls = Some(sitewatch_checks::schema::TlsInfo {
        cert_not_after: at,
        days_left: -40_000,
    });
    r.regex = Some(sitewatch_checks::schema::RegexInfo {
        pattern: "x".into(),
        matched: false,
    });
    write_batch(&mut client, &batch(vec![Row::new(0, 0, r)]))
        .await
        .unwrap();
    let rows: Vec<String> = column(
        &client,
        "SELECT concat_ws('|', started_at, agent_id, total_us, dns_us, connect_us, tls_us,
                    ttfb_us, body_bytes, outcome, error_kind, http_status, http_version,
                    tls_days_left, regex_matched, regex_absent_matched, body_truncated,
                    error_message, plugins)
             FROM results ORDER BY site_id",
    )
    .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0], rows[1],
        "migration 0002 and the writer encode alike"
    );
    assert!(rows[0].contains("|2147483647|"), "{}", rows[0]);
}

#[tokio::test]
async fn a_sink_refuses_a_schema_newer_than_it_knows() {
    let (db, mut client) = migrated().await;
    client
        .execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(migrations::LATEST + 1)],
        )
        .await
        .unwrap();
    let err = migrations::migrate(&mut client).await.unwrap_err();
    assert!(
        matches!(err, MigrationError::TooNew { found } if found == migrations::LATEST + 1),
        "{err}"
    );
    assert!(matches!(
        migrations::check_current(&client).await,
        Err(MigrationError::TooNew { .. })
    ));
    // The binary says so and exits non-zero, for `migrate` and for `report`.
    for args in [&["migrate"][..], &["report"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
            .args(args)
            .env("SITEWATCH_DATABASE_URL", db.url())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("newer than this sitewatch-sink knows"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn migrations_are_safe_to_run_concurrently_and_twice() {
    let db = TestDb::create().await;
    let (mut a, mut b) = (db.client().await, db.client().await);
    let (ra, rb) = tokio::join!(migrations::migrate(&mut a), migrations::migrate(&mut b));
    assert_eq!(
        ra.unwrap() + rb.unwrap(),
        migrations::LATEST as usize,
        "each applied exactly once"
    );
    assert_eq!(migrations::migrate(&mut a).await.unwrap(), 0);
}

#[tokio::test]
async fn the_writers_columns_are_the_tables_and_its_outcome_codes_too() {
    let (_db, client) = migrated().await;
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT a.attname::text, t.typname::text FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = 'results'::regclass AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let written: Vec<(String, String)> = RESULT_COLUMNS
        .iter()
        .zip(RESULT_COLUMN_TYPES)
        .map(|(name, ty)| (name.to_string(), ty.name().to_string()))
        .collect();
    assert_eq!(written, columns, "the writer fills every column, in order");
    let outcomes: Vec<(i16, String)> = client
        .query("SELECT id, name FROM outcomes ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let coded: Vec<(i16, String)> = [Outcome::Up, Outcome::Degraded, Outcome::Down]
        .into_iter()
        .map(|o| (codes::outcome(o), o.as_str().to_string()))
        .collect();
    assert_eq!(coded, outcomes);
}

/// `reloptions` of `table` (empty: the defaults).
async fn options(client: &Client, table: &str) -> Vec<String> {
    client
        .query_one(
            "SELECT coalesce(reloptions, '{}')::text[] FROM pg_class WHERE oid = $1::text::regclass",
            &[&table],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_tables_every_batch_rewrites_get_room_for_in_place_updates_data_and_all() {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate_to(&mut client, 7).await.unwrap();
    // A version-7 database with data, and an hourly rollup partition made as sinks of that
    // version made them (without storage parameters).
    client
        .batch_execute(
            "CREATE TABLE rollup_hourly_200001 PARTITION OF rollup_hourly
             FOR VALUES FROM ('2000-01-01T00:00:00Z') TO ('2000-02-01T00:00:00Z')",
        )
        .await
        .unwrap();
    let rows: Vec<Row> = (0..20)
        .map(|i| {
            let mut r = result(["a", "b"][i % 2]);
            r.started_at = Utc::now() - chrono::Duration::minutes(i as i64);
            Row::new(0, i as i64, r)
        })
        .collect();
    write_batch(&mut client, &batch(rows)).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO rollup_hourly_200001
             SELECT timestamptz '2000-01-01T00:00:00Z' + (bucket - date_trunc('month', bucket, 'UTC')), up_ms,
                 degraded_ms, down_ms, total_us_sum, site_id, up, degraded, down, total_us_min,
                 total_us_max, location_id, latency FROM rollup_hourly",
        )
        .await
        .unwrap();
    let every = "SELECT (SELECT count(*) FROM rollup_hourly), (SELECT count(*) FROM rollup_daily),
                        (SELECT count(*) FROM rollup_site_daily), (SELECT count(*) FROM rollup_cursors),
                        (SELECT count(*) FROM location_states), (SELECT count(*) FROM site_verdicts),
                        (SELECT count(*) FROM sites), (SELECT count(*) FROM results)";
    let counts = |r: tokio_postgres::Row| (0..8).map(|i| r.get(i)).collect::<Vec<i64>>();
    let before = counts(client.query_one(every, &[]).await.unwrap());
    assert!(before.iter().all(|n| *n > 0), "{before:?}");
    assert_eq!(
        options(&client, "rollup_hourly_200001").await,
        Vec::<String>::new()
    );

    assert_eq!(migrations::migrate(&mut client).await.unwrap(), 1);
    let after = counts(client.query_one(every, &[]).await.unwrap());
    assert_eq!(after, before, "no row lost or added");
    let month = Utc::now().format("%Y%m");
    for (table, fill) in [
        ("rollup_hourly_200001", 80),
        (&format!("rollup_hourly_{month}"), 80),
        ("rollup_daily", 80),
        ("rollup_site_daily", 80),
        ("rollup_cursors", 70),
        ("location_states", 70),
        ("site_verdicts", 70),
        ("sites", 70),
    ] {
        assert_eq!(
            options(&client, table).await,
            vec![format!("fillfactor={fill}")],
            "{table}"
        );
    }
    // Partitions made from now on get it as they are created.
    sitewatch_sink::partitions::ensure(
        &client,
        &sitewatch_sink::partitions::ROLLUP_HOURLY,
        [chrono::NaiveDate::from_ymd_opt(2099, 3, 1).unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(
        options(&client, "rollup_hourly_209903").await,
        vec!["fillfactor=80".to_string()]
    );
}

/// Migration 0007 repeats `rollup_daily`'s column list for `rollup_site_daily` (an applied
/// migration is never edited, and `CREATE TABLE ... (LIKE ...)` then dropping the location
/// would leave a dropped column in every row): the two stay alike but for the location.
#[tokio::test]
async fn the_per_site_daily_rollups_have_the_daily_columns_but_the_location() {
    let (_db, client) = migrated().await;
    let columns = |table: &str| {
        format!(
            "SELECT concat_ws(' ', column_name, data_type, is_nullable)
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = '{table}'
             ORDER BY ordinal_position"
        )
    };
    let daily: Vec<String> = column(&client, &columns("rollup_daily")).await;
    let per_site: Vec<String> = column(&client, &columns("rollup_site_daily")).await;
    assert_eq!(daily.len(), 13, "{daily:?}");
    let without_location: Vec<String> = daily
        .into_iter()
        .filter(|c| !c.starts_with("location_id "))
        .collect();
    assert_eq!(per_site, without_location);
}
