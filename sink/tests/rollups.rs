//! Rollups against real PostgreSQL: on a random workload (several sites, locations with one
//! or two agents, gaps, late batches, redeliveries, two sinks writing at once) the rollups
//! the batches maintained equal an independent SQL recomputation from the raw results, and
//! `sitewatch-sink rollup --rebuild --since DATE` (library and binary) reproduces them
//! byte for byte, per-site daily rows included (as does the migration that adds those, from
//! the per-location daily rows); also across the upgrade that makes the rollup cursors from
//! the results stored before it. Percentiles from the sketches are within 2.1% of the exact
//! ones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use sitewatch_checks::schema::CheckError;
use sitewatch_checks::{CheckResult, ErrorKind, Outcome};
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{write_batch, write_batch_with, Batch, InsertMethod, Row};
use sitewatch_sink::rollups::{self, RebuildError, Sketch};
use sitewatch_tests::fixtures::result;
use support::{batch, column, migrated, value};
use tokio_postgres::Client;

/// splitmix64: a small, seedable generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SITES: [&str; 5] = ["a", "b", "c", "d", "e"];
/// (agent, location): two agents share `eu`; one has no location (its name is its location).
const AGENTS: [(&str, Option<&str>); 4] = [
    ("eu-1", Some("eu")),
    ("eu-2", Some("eu")),
    ("us-1", Some("us")),
    ("lonely", None),
];

/// Checks of every site from every agent over about a day and a half before `end`, at
/// uneven intervals with occasional gaps longer than an hour.
fn workload(rng: &mut Rng, end: DateTime<Utc>) -> Vec<CheckResult> {
    let start = end - Duration::hours(36);
    let mut all = Vec::new();
    for site in SITES {
        for (agent, location) in AGENTS {
            let mut at = start + Duration::milliseconds(rng.below(600_000) as i64);
            while at < end {
                let mut r = result(site);
                r.agent = agent.into();
                r.location = location.map(str::to_string);
                r.started_at = at;
                r.outcome = match rng.below(10) {
                    0 => Outcome::Down,
                    1 | 2 => Outcome::Degraded,
                    _ => Outcome::Up,
                };
                if r.outcome != Outcome::Up {
                    r.error = Some(CheckError {
                        kind: ErrorKind::Timeout,
                        message: "slow".into(),
                    });
                }
                // 0.5 ms .. ~20 s, with a fraction of a millisecond, heavy-tailed.
                let scale = [10, 1_000, 20_000][rng.below(3) as usize];
                r.timings_ms.total = rng.below(scale * 1000) as f64 / 1000.0 + 0.5;
                all.push(r);
                let step = if rng.below(60) == 0 {
                    Duration::minutes(61 + rng.below(120) as i64)
                } else {
                    Duration::seconds(20 + rng.below(400) as i64)
                };
                at += step;
            }
        }
    }
    all.sort_by_key(|r| r.started_at);
    all
}

/// Batches for two sinks: the results in time order cut into batches of random size, some
/// held back and written late (after newer ones), some written again later (redelivery),
/// alone or together with new results, and some given to both sinks at once.
fn plan(rng: &mut Rng, results: Vec<CheckResult>) -> (Vec<Batch>, Vec<Batch>) {
    let mut batches: Vec<Vec<Row>> = Vec::new();
    let mut rest = results.as_slice();
    let mut offset = 0;
    while !rest.is_empty() {
        let n = (1 + rng.below(300) as usize).min(rest.len());
        let rows = rest[..n]
            .iter()
            .map(|r| {
                offset += 1;
                Row::new(0, offset, r.clone())
            })
            .collect();
        batches.push(rows);
        rest = &rest[n..];
    }
    // Late: every tenth batch moves several places later.
    for i in (0..batches.len()).step_by(10) {
        let to = (i + 1 + rng.below(6) as usize).min(batches.len() - 1);
        let late = batches.remove(i);
        batches.insert(to, late);
    }
    let (mut one, mut two) = (Vec::new(), Vec::new());
    let mut sent: Vec<Vec<Row>> = Vec::new();
    for rows in batches {
        let mut rows = rows;
        match rng.below(8) {
            // Redelivered with the new ones.
            0 if !sent.is_empty() => {
                let old = &sent[rng.below(sent.len() as u64) as usize];
                rows.extend(old.iter().take(1 + rng.below(50) as usize).cloned());
            }
            // Redelivered alone, later.
            1 if !sent.is_empty() => {
                let old = sent[rng.below(sent.len() as u64) as usize].clone();
                two.push(batch(old));
            }
            _ => {}
        }
        sent.push(rows.clone());
        match rng.below(5) {
            0 => {
                one.push(batch(rows.clone()));
                two.push(batch(rows));
            }
            1 | 2 => two.push(batch(rows)),
            _ => one.push(batch(rows)),
        }
    }
    (one, two)
}

/// Every rollup row as text (latency as hex), in key order; per-site rows (`s`) with
/// location 0.
async fn rollup_rows(client: &Client) -> Vec<String> {
    column(
        client,
        "SELECT concat_ws('|', t, site_id, location_id, bucket, up, degraded, down, up_ms,
                    degraded_ms, down_ms, total_us_sum, total_us_min, total_us_max,
                    encode(latency, 'hex'))
             FROM (SELECT 'h' AS t, * FROM rollup_hourly
                   UNION ALL SELECT 'd', * FROM rollup_daily
                   UNION ALL SELECT 's', bucket, up_ms, degraded_ms, down_ms, total_us_sum,
                                    site_id, up, degraded, down, total_us_min, total_us_max,
                                    0::int2, latency
                             FROM rollup_site_daily) r
             ORDER BY t, site_id, location_id, bucket",
    )
    .await
}

/// The rollups recomputed from `results` in SQL alone (everything but the sketches), as
/// `rollup_rows` prints them without the latency column: a per-site row adds up the site's
/// checks from every location, each covering the time since its own location's previous.
async fn recomputed_in_sql(client: &Client) -> Vec<String> {
    column(
        client,
        "WITH c AS (
                 SELECT r.site_id, a.location_id, r.started_at, r.outcome, r.total_us,
                        lag(r.started_at) OVER (PARTITION BY r.site_id, a.location_id
                                                ORDER BY r.started_at, r.agent_id) AS prev
                 FROM results r JOIN agents a ON a.id = r.agent_id),
             s AS (
                 SELECT *, CASE WHEN started_at - prev <= interval '1 hour'
                                THEN (extract(epoch FROM started_at) * 1000)::bigint
                                     - (extract(epoch FROM prev) * 1000)::bigint
                                ELSE 0 END AS span
                 FROM c),
             b AS (
                 SELECT 'h' AS t, date_trunc('hour', started_at, 'UTC') AS bucket, site_id,
                        location_id, outcome, total_us, span FROM s
                 UNION ALL
                 SELECT 'd', date_trunc('day', started_at, 'UTC'), site_id, location_id,
                        outcome, total_us, span FROM s
                 UNION ALL
                 SELECT 's', date_trunc('day', started_at, 'UTC'), site_id, 0, outcome,
                        total_us, span FROM s)
             SELECT concat_ws('|', t, site_id, location_id, bucket,
                    count(*) FILTER (WHERE outcome = 0), count(*) FILTER (WHERE outcome = 1),
                    count(*) FILTER (WHERE outcome = 2),
                    coalesce(sum(span) FILTER (WHERE outcome = 0), 0),
                    coalesce(sum(span) FILTER (WHERE outcome = 1), 0),
                    coalesce(sum(span) FILTER (WHERE outcome = 2), 0),
                    sum(total_us), min(total_us), max(total_us))
             FROM b GROUP BY t, site_id, location_id, bucket
             ORDER BY t, site_id, location_id, bucket",
    )
    .await
}

/// Every (site, location) with stored results has a cursor naming its latest check.
async fn assert_cursors_are_latest(client: &Client) {
    let wrong: Vec<String> = column(
        client,
        "SELECT concat_ws('|', site_id, location_id, m.started_at, m.agent_id, c.last_at,
                              c.last_agent)
             FROM (SELECT DISTINCT ON (r.site_id, a.location_id)
                          r.site_id, a.location_id, r.started_at, r.agent_id
                   FROM results r JOIN agents a ON a.id = r.agent_id
                   ORDER BY r.site_id, a.location_id, r.started_at DESC, r.agent_id DESC) m
             FULL JOIN rollup_cursors c USING (site_id, location_id)
             WHERE (m.started_at, m.agent_id) IS DISTINCT FROM (c.last_at, c.last_agent)",
    )
    .await;
    assert!(
        wrong.is_empty(),
        "cursors not at the latest check: {wrong:?}"
    );
    let cursors: i64 = value(client, "SELECT count(*) FROM rollup_cursors").await;
    assert_eq!(cursors, (SITES.len() * 3) as i64, "sites x locations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_a_recomputation_on_a_random_workload_with_redeliveries() {
    let (db, mut client) = migrated().await;
    client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let mut rng = Rng(0x5173_7761_7463_6815);
    let end = Utc::now()
        .duration_trunc(Duration::milliseconds(1))
        .unwrap();
    let results = workload(&mut rng, end);
    let distinct = results.len();
    let (one, two) = plan(&mut rng, results);
    let sent: usize = one.iter().chain(&two).map(|b| b.rows.len()).sum();
    assert!(
        sent > distinct + 500,
        "the plan redelivers: {sent} sent for {distinct}"
    );

    // Stored before version 6: the migration makes the cursors from these results.
    let (first, one) = one.split_at(one.len() / 4);
    let mut stored_first = 0;
    for batch in first {
        stored_first += write_batch(&mut client, batch).await.unwrap().inserted;
    }
    client
        .batch_execute("DROP TABLE rollup_cursors; DELETE FROM schema_migrations WHERE version = 6")
        .await
        .unwrap();
    assert_eq!(migrations::migrate(&mut client).await.unwrap(), 1);
    assert_cursors_are_latest(&client).await;

    // Two sinks at once, one of them writing every other batch through the staging table.
    let (mut a, mut b) = (db.client().await, db.client().await);
    let sink_one = async {
        let mut stored = stored_first;
        for batch in one {
            stored += write_batch(&mut a, batch).await.unwrap().inserted;
        }
        stored
    };
    let sink_two = async {
        let mut stored = 0;
        for (i, batch) in two.iter().enumerate() {
            let method = [InsertMethod::Copy, InsertMethod::Staged][i % 2];
            stored += write_batch_with(&mut b, batch, method)
                .await
                .unwrap()
                .inserted;
        }
        stored
    };
    let (stored_one, stored_two) = tokio::join!(sink_one, sink_two);
    assert_eq!(
        stored_one + stored_two,
        distinct as u64,
        "each result stored once"
    );

    let incremental = rollup_rows(&client).await;
    let without_sketch: Vec<String> = incremental
        .iter()
        .map(|row| row.rsplit_once('|').unwrap().0.to_string())
        .collect();
    assert_eq!(without_sketch, recomputed_in_sql(&client).await);
    assert!(incremental.len() > 300, "{} rows", incremental.len());
    assert_cursors_are_latest(&client).await;

    // The rebuild recomputes the same rows, sketches included; so does the binary.
    let since: NaiveDate = (end - Duration::hours(36)).date_naive();
    let done = rollups::rebuild(&mut client, since).await.unwrap();
    assert_eq!(done.results as usize, distinct);
    assert_eq!(rollup_rows(&client).await, incremental);
    client
        .batch_execute(
            "UPDATE rollup_daily SET up = up + 1;
             UPDATE rollup_site_daily SET latency = '\\x01'",
        )
        .await
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
        .args(["rollup", "--rebuild", "--since", &since.to_string()])
        .env("SITEWATCH_DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rollups rebuilt"));
    assert_eq!(
        rollup_rows(&client).await,
        incremental,
        "a damaged row is repaired"
    );
    assert!(
        incremental.iter().any(|r| r.starts_with("s|")),
        "per-site rows are compared"
    );

    // The migration that adds the per-site table fills it from the per-location daily rows
    // with the same result.
    client
        .batch_execute(&format!(
            "DROP TABLE rollup_site_daily;
             DELETE FROM schema_migrations WHERE version = {}",
            migrations::SITE_ROLLUPS
        ))
        .await
        .unwrap();
    assert_eq!(migrations::migrate(&mut client).await.unwrap(), 1);
    assert_eq!(
        rollup_rows(&client).await,
        incremental,
        "the migration's fill equals the incremental rows"
    );

    // Percentiles from each daily sketch against the exact nearest-rank ones.
    let rows = client
        .query(
            "SELECT d.latency,
                    percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY r.total_us)
             FROM rollup_daily d
             JOIN agents a ON a.location_id = d.location_id
             JOIN results r ON r.site_id = d.site_id AND r.agent_id = a.id
                           AND date_trunc('day', r.started_at, 'UTC') = d.bucket
             GROUP BY d.site_id, d.location_id, d.bucket, d.latency",
            &[],
        )
        .await
        .unwrap();
    for r in rows {
        let sketch = Sketch::decode(r.get(0)).unwrap();
        let exact: Vec<i32> = r.get(1);
        for (q, exact) in [0.5, 0.95, 0.99].into_iter().zip(exact) {
            let got = sketch.quantile(q).unwrap();
            let err = (got - f64::from(exact)).abs() / f64::from(exact);
            assert!(err <= 0.021, "p{q}: {got} µs vs {exact} µs");
        }
    }
}

#[tokio::test]
async fn a_rebuild_refuses_days_whose_raw_results_are_gone() {
    let (db, mut client) = migrated().await;
    let err = rollups::rebuild(&mut client, Utc::now().date_naive())
        .await
        .unwrap_err();
    assert!(matches!(err, RebuildError::NoResults), "{err}");
    let mut r = result("s");
    r.started_at = Utc::now() - Duration::days(2);
    write_batch(&mut client, &batch(vec![Row::new(0, 0, r)]))
        .await
        .unwrap();
    let day = (Utc::now() - Duration::days(2)).date_naive();
    let err = rollups::rebuild(&mut client, day.pred_opt().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RebuildError::TooEarly { earliest, .. } if earliest == day),
        "{err}"
    );
    // Once retention has dropped raw days, the first kept day is not rebuildable either:
    // its first checks' covered time depends on the hour before.
    client
        .execute(
            "UPDATE retention_state SET raw_dropped_before = $1",
            &[&day],
        )
        .await
        .unwrap();
    let err = rollups::rebuild(&mut client, day).await.unwrap_err();
    assert!(
        matches!(err, RebuildError::TooEarly { earliest, .. } if earliest == day.succ_opt().unwrap()),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
        .args(["rollup", "--rebuild", "--since", &day.to_string()])
        .env("SITEWATCH_DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("raw results are kept from"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
