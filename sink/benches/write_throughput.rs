//! How fast the sink's batch writer stores results, against references measured in
//! the same run on the same table: a plain `COPY … FROM STDIN` of the same rows from a
//! file (the ceiling) and a naive one-INSERT-and-commit-per-row loop (what ad-hoc
//! consumers do). Run with `cargo bench -p sitewatch-sink --bench write_throughput`
//! (PostgreSQL on 127.0.0.1:5432, or `DATABASE_ADMIN_URL`); see BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{write_batch_with, Batch, InsertMethod, Row};
use tokio_postgres::{Client, NoTls};

const ROWS: usize = 100_000;
const BATCH: usize = 5_000;
const NAIVE_ROWS: usize = 2_000;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let admin_url = std::env::var("DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());
    let name = format!("sitewatch_bench_{}", uuid::Uuid::now_v7().simple());
    let admin = connect(&admin_url).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut client = connect(&format!("{admin_url} dbname={name}")).await;
    migrations::migrate(&mut client).await.unwrap();

    let rows = rows(ROWS);
    let mut report = Vec::new();
    for method in [InsertMethod::Staged, InsertMethod::Copy] {
        reset(&client).await;
        let took = write_all(&mut client, &rows, method).await;
        report.push((
            format!("write_batch {method:?}, {BATCH}-row batches"),
            ROWS,
            took,
        ));
    }

    // Reference: the same rows as a file, COPYed into the same (emptied) table.
    let copy_took = common::copy_reference(&client, &name).await;

    // Naive: one INSERT and one commit per row.
    reset(&client).await;
    let started = Instant::now();
    for row in rows.iter().take(NAIVE_ROWS) {
        let r = &row.result;
        client
            .execute(
                "INSERT INTO results (started_at, site_id, agent_id, outcome, total_us)
                 VALUES ($1, $2, 1, 0, $3) ON CONFLICT DO NOTHING",
                &[
                    &r.started_at,
                    &(row.offset as i32 % 1000),
                    &(r.timings_ms.total as i32),
                ],
            )
            .await
            .unwrap();
    }
    let naive_took = started.elapsed();

    let copy_rate = rate(ROWS, copy_took);
    println!("sink write throughput ({ROWS} results; PostgreSQL on 127.0.0.1)");
    println!(
        "  {:<48} {:>10.0} rows/s   1.00x",
        "reference: plain COPY from a file", copy_rate
    );
    for (what, n, took) in &report {
        let r = rate(*n, *took);
        println!("  {what:<48} {r:>10.0} rows/s   {:.2}x", r / copy_rate);
    }
    let naive = rate(NAIVE_ROWS, naive_took);
    println!(
        "  {:<48} {naive:>10.0} rows/s   {:.4}x",
        format!("naive INSERT + commit per row ({NAIVE_ROWS} rows)"),
        naive / copy_rate
    );

    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}

async fn write_all(client: &mut Client, rows: &[Row], method: InsertMethod) -> Duration {
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let batch = Batch {
            rows: chunk.to_vec(),
            rejected: Vec::new(),
            catalog: Vec::new(),
        };
        let stats = write_batch_with(client, &batch, method).await.unwrap();
        assert_eq!(stats.inserted as usize, chunk.len(), "{method:?}");
    }
    started.elapsed()
}

async fn reset(client: &Client) {
    client
        .batch_execute("TRUNCATE results, site_events, sites")
        .await
        .unwrap();
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// Results as agents send them: 1,000 sites, typical `up` results, spread over the last hour.
fn rows(n: usize) -> Vec<Row> {
    let now = Utc::now();
    (0..n)
        .map(|i| {
            let at = now - chrono::Duration::milliseconds((n - i) as i64 * 30);
            let r = common::typical(&format!("site-{}", i % 1000), "agent", "eu", at, i as u64);
            Row::new((i % 6) as i32, i as i64, r)
        })
        .collect()
}

async fn connect(params: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(params, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}
