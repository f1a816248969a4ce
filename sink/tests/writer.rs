//! Batch writing against real PostgreSQL: idempotent inserts, status-change events,
//! rejected messages, error kinds from newer agents.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use sitewatch_checks::schema::{CheckError, HttpInfo, RegexInfo};
use sitewatch_checks::{ErrorKind, Outcome};
use sitewatch_sink::decode::decode;
use sitewatch_sink::pipeline::{write_batch, Batch, Rejected, Row};
use sitewatch_tests::fixtures::result;
use support::{batch, column, count, migrated};

fn row(offset: i64, site: &str, outcome: Outcome, minutes_ago: i64) -> Row {
    let mut r = result(site);
    r.outcome = outcome;
    // Milliseconds, as results arrive.
    r.started_at = (Utc::now() - Duration::minutes(minutes_ago)).trunc_subsecs(3);
    if outcome == Outcome::Down {
        r.error = Some(CheckError {
            kind: ErrorKind::HttpStatus,
            message: "expected 200-399, got 500".into(),
        });
    }
    Row::new(0, offset, r)
}

#[tokio::test]
async fn a_batch_is_stored_once_with_typed_columns_and_a_rewrite_is_a_no_op() {
    let (_db, mut client) = migrated().await;
    let mut rows: Vec<Row> = (0..100)
        .map(|i| row(i, ["a", "b", "c"][i as usize % 3], Outcome::Up, 100 - i))
        .collect();
    rows[0].result.http = Some(HttpInfo {
        status: 204,
        version: "HTTP/1.1".into(),
        body_bytes: 42,
        body_truncated: true,
        redirects: 0,
    });
    // The pattern is a fact of the site (its latest), the match one of each result.
    for row in &mut rows {
        row.result.regex = Some(RegexInfo {
            pattern: "Welcome".into(),
            matched: row.offset == 0,
        });
    }
    rows[0].result.timings_ms.ttfb = Some(12.5);
    let batch = batch(rows);

    let first = write_batch(&mut client, &batch).await.unwrap();
    assert_eq!(first.inserted, 100);
    assert!(!first.rewritten, "a batch of new results is written once");
    assert_eq!(first.step("sites"), 3, "each site's facts updated");
    assert_eq!(
        first.step("verdicts"),
        0,
        "a first verdict of up is no event"
    );
    let again = write_batch(&mut client, &batch).await.unwrap();
    assert_eq!(
        (again.inserted, again.step("sites"), again.step("verdicts")),
        (0, 0, 0),
        "redelivery is a no-op"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM check_results").await,
        100
    );
    assert_eq!(count(&client, "SELECT count(*) FROM site_events").await, 0);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM site_verdicts WHERE verdict = 'up'"
        )
        .await,
        3
    );
    assert_eq!(count(&client, "SELECT count(*) FROM sites").await, 3);

    let r = client
        .query_one(
            "SELECT http_status, http_version, body_bytes, body_truncated, regex_pattern, regex_matched, ttfb_ms, total_ms, outcome, agent
             FROM check_results WHERE site = $1 AND started_at = $2",
            &[&batch.rows[0].result.site, &batch.rows[0].result.started_at],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, Option<i32>>(0), Some(204));
    assert_eq!(r.get::<_, Option<&str>>(1), Some("HTTP/1.1"));
    assert_eq!(r.get::<_, Option<i64>>(2), Some(42));
    assert_eq!(r.get::<_, Option<bool>>(3), Some(true));
    assert_eq!(r.get::<_, Option<&str>>(4), Some("Welcome"));
    assert_eq!(r.get::<_, Option<bool>>(5), Some(true));
    assert_eq!(r.get::<_, Option<f64>>(6), Some(12.5));
    assert_eq!(r.get::<_, f64>(7), 1.0);
    assert_eq!(r.get::<_, &str>(8), "up");
    assert_eq!(r.get::<_, &str>(9), "test-agent");
}

#[tokio::test]
async fn up_down_up_across_batches_gives_exactly_those_verdict_changes() {
    let (_db, mut client) = migrated().await;
    let b1 = batch(vec![
        row(0, "s", Outcome::Up, 30),
        row(1, "s", Outcome::Up, 29),
        row(2, "s", Outcome::Down, 28),
    ]);
    let b2 = batch(vec![
        row(3, "s", Outcome::Down, 27),
        row(4, "s", Outcome::Up, 26),
        row(5, "s", Outcome::Up, 25),
    ]);
    write_batch(&mut client, &b1).await.unwrap();
    write_batch(&mut client, &b2).await.unwrap();
    write_batch(&mut client, &b1).await.unwrap(); // a redelivered older batch changes nothing
    let events: Vec<(Option<String>, String)> = client
        .query(
            "SELECT previous_outcome, new_outcome FROM site_events WHERE site = 's' ORDER BY at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Two down checks in a row (the default failure threshold) across the batches make the
    // verdict down; one up check (the success threshold) makes it up again.
    assert_eq!(
        events,
        vec![
            (Some("up".into()), "down".into()),
            (Some("down".into()), "up".into())
        ]
    );
    let reason: Option<String> = client
        .query_one(
            "SELECT reason FROM site_events WHERE new_outcome = 'down'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        reason.as_deref(),
        Some("1 of 1 locations failing (quorum 1): test (http_status: expected 200-399, got 500)")
    );
    let incident = client
        .query_one(
            "SELECT started_at, resolved_at IS NOT NULL, locations FROM incidents",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        incident.get::<_, DateTime<Utc>>(0),
        b1.rows[2].result.started_at,
        "the incident starts at the first down check"
    );
    assert!(incident.get::<_, bool>(1), "and is resolved");
    assert_eq!(incident.get::<_, Vec<String>>(2), ["test"]);
    let current: String = client
        .query_one("SELECT current_outcome FROM sites WHERE name = 's'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, "up");
}

#[tokio::test]
async fn poison_messages_are_kept_in_rejected_messages_beside_good_ones() {
    let (_db, mut client) = migrated().await;
    let good = serde_json::to_vec(&result("good")).unwrap();
    let payloads: Vec<&[u8]> = vec![
        b"not json",
        &good,
        b"{}",
        br#"{"schema": 999, "site": "x"}"#,
    ];
    let mut batch = Batch::default();
    for (offset, p) in payloads.iter().enumerate() {
        match decode(Some(p)) {
            Ok(result) => batch.rows.push(Row::new(1, offset as i64, result)),
            Err(e) => batch.rejected.push(Rejected {
                topic: "t".into(),
                partition: 1,
                offset: offset as i64,
                error: e.to_string(),
                payload: p.to_vec(),
            }),
        }
    }
    let stats = write_batch(&mut client, &batch).await.unwrap();
    assert_eq!((stats.inserted, stats.rejected), (1, 3));
    let rejected: Vec<(i64, String, Vec<u8>)> = client
        .query(
            "SELECT kafka_offset, error, payload FROM rejected_messages ORDER BY kafka_offset",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0, 2, 3]
    );
    assert!(
        rejected[2].1.contains("future schema version 999"),
        "{}",
        rejected[2].1
    );
    assert_eq!(rejected[0].2, b"not json");
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM check_results WHERE site = 'good'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn every_insert_method_stores_identical_rows_and_skips_redeliveries() {
    use sitewatch_sink::pipeline::{write_batch_with, InsertMethod};
    let mut rows: Vec<Row> = (0..50)
        .map(|i| row(i, ["a", "b"][i as usize % 2], Outcome::Up, 60 - i))
        .collect();
    rows[3] = row(3, "b", Outcome::Down, 57);
    rows[4].result.plugins = vec![sitewatch_checks::schema::PluginResult {
        name: "p".into(),
        outcome: sitewatch_checks::schema::PluginOutcome::Warn,
        message: "m".into(),
        metrics: Vec::new(),
        labels: Vec::new(),
        duration_ms: 0.5,
    }];
    // The first 20 are stored before; the batch repeats one of the others within itself.
    let earlier = batch(rows[..20].to_vec());
    let mut repeated = rows[30].clone();
    repeated.offset = 99;
    rows.push(repeated);
    let batch = batch(rows);
    // Every column, as text, in a stable order.
    let dump = "SELECT string_agg(row_to_json(t)::text, E'\\n' ORDER BY site, started_at)
                FROM (SELECT * FROM check_results) t";
    let mut dumps = Vec::new();
    for method in [InsertMethod::Staged, InsertMethod::Copy] {
        let (_db, mut client) = migrated().await;
        let before = write_batch_with(&mut client, &earlier, method)
            .await
            .unwrap();
        assert_eq!(before.inserted, 20, "{method:?}");
        assert!(
            !before.rewritten,
            "{method:?}: nothing stored yet, one write"
        );
        let first = write_batch_with(&mut client, &batch, method).await.unwrap();
        assert_eq!(
            first.inserted, 30,
            "{method:?}: only the 30 not stored before, once"
        );
        let again = write_batch_with(&mut client, &batch, method).await.unwrap();
        assert_eq!(
            (again.inserted, again.step("verdicts")),
            (0, 0),
            "{method:?}"
        );
        // Only the direct COPY is refused by stored rows and written again.
        let copy = method == InsertMethod::Copy;
        assert_eq!(
            (first.rewritten, again.rewritten),
            (copy, copy),
            "{method:?}"
        );
        assert_eq!(
            count(&client, "SELECT count(*) FROM check_results").await,
            50,
            "{method:?}"
        );
        let dump: String = client.query_one(dump, &[]).await.unwrap().get(0);
        let events = count(&client, "SELECT count(*) FROM site_events").await;
        dumps.push((method, dump, events));
    }
    for (method, dump, events) in &dumps[1..] {
        assert_eq!(dump, &dumps[0].1, "{method:?} stores what Staged stores");
        assert_eq!(*events, dumps[0].2, "{method:?} records the same events");
    }
}

#[tokio::test]
async fn a_row_another_sink_stores_meanwhile_is_skipped_not_an_error() {
    let (db, mut client) = migrated().await;
    let rows: Vec<Row> = (0..10).map(|i| row(i, "a", Outcome::Up, 10 - i)).collect();
    // The site and agent exist (an earlier batch).
    write_batch(&mut client, &batch(vec![row(100, "a", Outcome::Up, 60)]))
        .await
        .unwrap();
    // One of the batch's rows is being stored, not yet committed, by another connection
    // (a sink still finishing its batch during a rebalance); 999 ms marks its copy.
    let mut other = db.client().await;
    let tx = other.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO results (started_at, site_id, agent_id, outcome, total_us)
         VALUES ($1, (SELECT id FROM sites WHERE name = 'a'),
                 (SELECT id FROM agents WHERE name = 'test-agent'), 0, 999000)",
        &[&rows[5].result.started_at],
    )
    .await
    .unwrap();
    let batch = batch(rows);
    let write = tokio::spawn(async move {
        let stats = write_batch(&mut client, &batch).await;
        (client, stats)
    });
    // The write waits on the other transaction's row; let it get there.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !write.is_finished(),
        "the write waits for the other transaction"
    );
    tx.commit().await.unwrap();
    let (client, stats) = write.await.unwrap();
    let stats = stats.unwrap();
    assert_eq!(
        stats.inserted, 9,
        "the other sink's row is not counted again"
    );
    assert!(
        stats.rewritten,
        "the COPY was refused and the batch written again"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM check_results").await,
        11
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM check_results WHERE total_ms = 999"
        )
        .await,
        1,
        "the other sink's row is kept as it stored it"
    );
}

#[tokio::test]
async fn an_error_kind_this_sink_does_not_know_is_stored_under_its_name() {
    let (_db, mut client) = migrated().await;
    let mut known = row(0, "s", Outcome::Down, 3);
    known.result.error.as_mut().unwrap().kind = ErrorKind::Timeout;
    let mut newer = row(1, "s", Outcome::Down, 2);
    newer.result.error.as_mut().unwrap().kind = ErrorKind::Other;
    newer.unknown_error_kind = Some("from_a_newer_agent".into());
    let mut nameless = row(2, "s", Outcome::Down, 1);
    nameless.result.error.as_mut().unwrap().kind = ErrorKind::Other;
    let stats = write_batch(&mut client, &batch(vec![known, newer, nameless]))
        .await
        .unwrap();
    assert_eq!((stats.inserted, stats.rejected), (3, 0));
    let kinds: Vec<String> = column(
        &client,
        "SELECT error_kind FROM check_results ORDER BY started_at",
    )
    .await;
    assert_eq!(kinds, ["timeout", "from_a_newer_agent", "other"]);
    // The kind issue 14 adds has its id reserved, so every sink agrees on it.
    let overloaded: i16 = client
        .query_one(
            "SELECT id FROM error_kinds WHERE name = 'agent_overloaded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(overloaded, 10);
    let last: String = client
        .query_one("SELECT last_error_kind FROM sites WHERE name = 's'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(last, "other");
}

#[tokio::test]
async fn a_sites_outcome_last_changed_where_its_latest_run_began_across_batches() {
    let (_db, mut client) = migrated().await;
    let now = Utc::now().trunc_subsecs(3);
    let ago = |minutes: i64| now - Duration::minutes(minutes);
    // (results of one batch as (outcome, minutes ago), when the outcome last changed after it)
    let batches: [(&[(Outcome, i64)], i64); 5] = [
        (&[(Outcome::Up, 60), (Outcome::Up, 59)], 60),
        // The same outcome continues: the change stays where it was.
        (&[(Outcome::Up, 58)], 60),
        // Changes within the batch: the last run's start counts.
        (
            &[(Outcome::Down, 57), (Outcome::Up, 56), (Outcome::Up, 55)],
            56,
        ),
        // A change at the batch's first result, one outcome throughout.
        (&[(Outcome::Down, 54), (Outcome::Down, 53)], 54),
        // In order across locations: the earlier result from the other agent changes first.
        (&[(Outcome::Degraded, 51), (Outcome::Down, 52)], 51),
    ];
    for (i, (results, changed)) in batches.iter().enumerate() {
        let rows = results
            .iter()
            .enumerate()
            .map(|(j, (outcome, minutes))| {
                let mut r = row((i * 10 + j) as i64, "s", *outcome, 0);
                r.result.started_at = ago(*minutes);
                r.result.agent = format!("agent-{j}");
                r
            })
            .collect();
        write_batch(
            &mut client,
            &Batch {
                rows,
                ..Batch::default()
            },
        )
        .await
        .unwrap();
        let r = client
            .query_one(
                "SELECT current_outcome, last_change_at FROM sites WHERE name = 's'",
                &[],
            )
            .await
            .unwrap();
        let at: DateTime<Utc> = r.get(1);
        let latest = results
            .iter()
            .min_by_key(|(_, minutes)| *minutes)
            .unwrap()
            .0;
        assert_eq!(r.get::<_, String>(0), latest.as_str(), "batch {i}");
        assert_eq!(at, ago(*changed), "batch {i}");
    }
}
