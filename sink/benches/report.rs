//! `sitewatch-sink report --since 90d --json` over 1,000 sites with 90 days of rollups
//! (hourly and daily, from one location and then from three), timed end to end as an
//! operator runs it (the release binary: start, connect, query, print), plus the library
//! call alone. Run with `cargo bench -p sitewatch-sink --bench report`; see BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write;
use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta, Utc};
use futures::SinkExt;
use sitewatch_sink::rollups::Sketch;
use sitewatch_sink::{migrations, partitions, report};
use sitewatch_tests::db::TestDb;
use tokio_postgres::Client;

const SITES: usize = 1_000;
const DAYS: i64 = 90;
const RUNS: usize = 15;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!(
        "report --since 90d --json over {SITES} sites, {DAYS} days of rollups ({RUNS} runs each)"
    );
    for locations in [1, 3] {
        let db = TestDb::create().await;
        let mut client = db.client().await;
        migrations::migrate(&mut client).await.unwrap();
        let rows = fill(&mut client, locations).await;
        client.batch_execute("VACUUM ANALYZE").await.unwrap();

        let mut binary = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
                .args(["report", "--since", "90d", "--json"])
                .env("SITEWATCH_DATABASE_URL", db.url())
                .output()
                .unwrap();
            binary.push(started.elapsed());
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["source"], "daily_rollups");
            assert_eq!(v["sites"].as_array().unwrap().len(), SITES);
        }
        let mut library = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let r = report::load(&client, Utc::now() - TimeDelta::days(DAYS))
                .await
                .unwrap();
            library.push(started.elapsed());
            assert!(r.sites.iter().all(|s| s.checks > 0 && s.p95_ms.is_some()));
        }
        println!(
            "  {locations} location(s), {rows} rollup rows: binary end to end median {}, max {}; report::load median {}, max {}",
            ms(median(&mut binary)),
            ms(*binary.iter().max().unwrap()),
            ms(median(&mut library)),
            ms(*library.iter().max().unwrap()),
        );
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Sites, a few events each, and for every site and location an hourly and a daily rollup
/// row for each of the last 90 days (as a minute-interval check would make them), written
/// with COPY, then each site's daily rows across locations; returns the per-location rollup
/// rows written.
async fn fill(client: &mut Client, locations: i16) -> usize {
    let now = Utc::now();
    let first = (now - TimeDelta::days(DAYS))
        .duration_trunc(TimeDelta::days(1))
        .unwrap();
    let mut sql = String::from(
        "INSERT INTO sites (name, url, first_seen, last_seen, current_outcome, last_change_at)
         SELECT 'site-' || i, 'https://site-' || i || '.example.com/', now() - interval '91 days',
                now(), 'up', now() - interval '3 days'
         FROM generate_series(0, 999) i;
         INSERT INTO site_events (site, kind, previous_outcome, new_outcome, at, check_id, reason)
         SELECT 'site-' || (i % 1000), 'verdict', 'up', 'down', now() - (i || ' minutes')::interval,
                gen_random_uuid(), 'timed out'
         FROM generate_series(0, 19999) i;",
    );
    for l in 0..locations {
        let _ = write!(sql, "INSERT INTO locations (name) VALUES ('loc-{l}');");
    }
    client.batch_execute(&sql).await.unwrap();
    let days: Vec<_> = (0..=DAYS)
        .map(|d| (first + TimeDelta::days(d)).date_naive())
        .collect();
    partitions::ensure_days(client, days).await.unwrap();

    // A few realistic sketches: a minute-interval day or hour of latencies around 80-250 ms.
    let sketch = |checks: u64, seed: u64| {
        let mut s = Sketch::default();
        for i in 0..checks {
            let x = (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97)) % 1000;
            s.add(80_000 + (x * x * 170) as i64 / 1000 + (i % 7) as i64 * 900);
        }
        format!("\\\\x{}", hex(&s.encode()))
    };
    let daily: Vec<String> = (0..16).map(|s| sketch(1440, s)).collect();
    let hourly: Vec<String> = (0..16).map(|s| sketch(60, s)).collect();
    let mut text = [String::new(), String::new()];
    let mut rows = 0;
    for site in 1..=SITES as i32 {
        for location in 1..=locations {
            for d in 0..=DAYS {
                let day = first + TimeDelta::days(d);
                let n = (site as usize + d as usize) % 16;
                let _ = writeln!(
                    text[1],
                    "{}\t1425000\t9000\t6000\t181440000\t{site}\t1430\t5\t5\t81000\t950000\t{location}\t{}",
                    day.to_rfc3339(),
                    daily[n]
                );
                rows += 1;
                for h in 0..24 {
                    let hour = day + TimeDelta::hours(h);
                    if hour > now {
                        break;
                    }
                    let _ = writeln!(
                        text[0],
                        "{}\t3540000\t60000\t0\t7560000\t{site}\t59\t1\t0\t81000\t400000\t{location}\t{}",
                        hour.to_rfc3339(),
                        hourly[(n + h as usize) % 16]
                    );
                    rows += 1;
                }
            }
        }
    }
    for (table, data) in ["rollup_hourly", "rollup_daily"].into_iter().zip(text) {
        let sink = client
            .copy_in(&format!(
                "COPY {table} (bucket, up_ms, degraded_ms, down_ms, total_us_sum, site_id, up,
                     degraded, down, total_us_min, total_us_max, location_id, latency) FROM STDIN"
            ))
            .await
            .unwrap();
        futures::pin_mut!(sink);
        // In pieces: a COPY message may not exceed 1 GB.
        let data = bytes::Bytes::from(data);
        for at in (0..data.len()).step_by(8 << 20) {
            let end = (at + (8 << 20)).min(data.len());
            sink.send(data.slice(at..end)).await.unwrap();
        }
        sink.close().await.unwrap();
    }
    // The per-site daily rows, as the migration that adds them fills them (timed: that is
    // what the migration costs on a database of this size).
    let started = Instant::now();
    let tx = client.transaction().await.unwrap();
    let site_rows = sitewatch_sink::rollups::site::fill(&tx).await.unwrap();
    tx.commit().await.unwrap();
    println!(
        "  {locations} location(s): {site_rows} per-site daily rows filled from the daily rows in {}",
        ms(started.elapsed())
    );
    rows
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
