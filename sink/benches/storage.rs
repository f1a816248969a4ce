//! Bytes per stored result: 1,000,000 typical `up` results (1,000 sites checked once a
//! minute from 3 locations) written by the sink's batch pipeline in time order into a day
//! that is over (two days ago), then the size of `results` (heap and its one index) per
//! row as written and after the sink's own re-pack of a finished day (`repack::run`), the
//! rollups they made, and, as references in the same run, the same results COPYed into the
//! compact 16-column table of issue #15. Run with
//! `cargo bench -p sitewatch-sink --bench storage`; see BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use chrono::{Days, Utc};
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{Batch, Pipeline, Row};
use sitewatch_sink::repack::{self, Due};
use sitewatch_tests::db::TestDb;
use tokio_postgres::Client;

const RESULTS: usize = 1_000_000;
const SITES: usize = 1_000;
const LOCATIONS: [&str; 3] = ["eu", "us", "ap"];
const BATCH: usize = 5_000;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();

    let per_minute = SITES * LOCATIONS.len();
    // 333 minutes from midnight two days ago: one daily partition, whose day is over.
    let day = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(2))
        .unwrap();
    let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let results: Vec<_> = (0..RESULTS)
        .map(|i| {
            let (minute, slot) = (i / per_minute, i % per_minute);
            let (site, location) = (slot / LOCATIONS.len(), LOCATIONS[slot % LOCATIONS.len()]);
            let at = start
                + chrono::Duration::minutes(minute as i64)
                + chrono::Duration::milliseconds((slot * 60_000 / per_minute) as i64);
            common::typical(
                &format!("site-{site}"),
                &format!("agent-{location}"),
                location,
                at,
                i as u64,
            )
        })
        .collect();

    let pipeline = Pipeline::default();
    let started = Instant::now();
    for (n, chunk) in results.chunks(BATCH).enumerate() {
        let batch = Batch {
            rows: chunk
                .iter()
                .enumerate()
                .map(|(i, r)| Row::new(0, (n * BATCH + i) as i64, r.clone()))
                .collect(),
            rejected: Vec::new(),
            catalog: Vec::new(),
        };
        pipeline.write(&mut client, &batch).await.unwrap();
    }
    let took = started.elapsed();
    client.batch_execute("VACUUM ANALYZE").await.unwrap();

    println!("storage: {RESULTS} typical up results ({SITES} sites x {} locations, once a minute), written in {BATCH}-row batches in {:.1} s", LOCATIONS.len(), took.as_secs_f64());
    let results_size = sizes(&client, "results").await;
    print_per_row("results, as written", results_size, RESULTS);
    for table in ["rollup_hourly", "rollup_daily"] {
        let (heap, index) = sizes(&client, table).await;
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        println!(
            "  {table:<32} {rows:>9} rows  heap {:>7.1} MB  index {:>6.1} MB  ({:.1} bytes per result)",
            heap as f64 / 1e6,
            index as f64 / 1e6,
            (heap + index) as f64 / RESULTS as f64
        );
    }
    // What the sink's maintenance does once the day is over (an hour's grace, 14 days kept).
    let due = Due::at(Utc::now(), std::time::Duration::from_secs(3600), 14);
    let pass = repack::run(&client, due, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(pass.repacked.len(), 1, "{pass:?}");
    print_per_row(
        "results, after the sink's re-pack",
        sizes(&client, "results").await,
        RESULTS,
    );

    common::compact_copy_reference(&client, &results, "storage").await;
    client
        .batch_execute("VACUUM ANALYZE reference_compact")
        .await
        .unwrap();
    print_per_row(
        "reference: compact 16-column table",
        sizes(&client, "reference_compact").await,
        RESULTS,
    );
}

/// (heap, indexes) in bytes of `table` and its partitions.
async fn sizes(client: &Client, table: &str) -> (i64, i64) {
    let r = client
        .query_one(
            "SELECT coalesce(sum(pg_relation_size(c)), 0)::bigint,
                    coalesce(sum(pg_indexes_size(c)), 0)::bigint
             FROM (SELECT $1::text::regclass AS c
                   UNION ALL
                   SELECT inhrelid::regclass FROM pg_inherits
                   WHERE inhparent = $1::text::regclass) t",
            &[&table],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

fn print_per_row(what: &str, (heap, index): (i64, i64), rows: usize) {
    let per = |b: i64| b as f64 / rows as f64;
    println!(
        "  {what:<40} heap {:>6.1} + index {:>5.1} = {:>6.1} bytes per result",
        per(heap),
        per(index),
        per(heap + index)
    );
}
