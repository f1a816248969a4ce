//! What the sink benchmarks share: realistic results, and the plain-COPY references
//! measured in the same run.

// Each benchmark uses some of these.
#![allow(dead_code)]

use std::fmt::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use sitewatch_checks::schema::{HttpInfo, RegexInfo, Timings, TlsInfo};
use sitewatch_checks::CheckResult;
use tokio_postgres::Client;

/// A typical `up` result of an HTTPS check: status, version, size, all five timings, the
/// certificate's expiry and a matched regex; `n` varies the numbers.
pub fn typical(site: &str, agent: &str, location: &str, at: DateTime<Utc>, n: u64) -> CheckResult {
    let mut r = sitewatch_tests::fixtures::result(site);
    r.agent = agent.into();
    r.location = Some(location.into());
    r.url = format!("https://{site}.example.com/health");
    r.started_at = at;
    let jitter = (n.wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0;
    r.timings_ms = Timings {
        dns: Some(0.4 + jitter),
        connect: Some(8.0 + 4.0 * jitter),
        tls: Some(21.0 + 9.0 * jitter),
        ttfb: Some(45.0 + 30.0 * jitter),
        total: 80.0 + 50.0 * jitter,
    };
    r.http = Some(HttpInfo {
        status: 200,
        version: "HTTP/1.1".into(),
        body_bytes: 4_000 + n % 2_000,
        body_truncated: false,
        redirects: 0,
    });
    r.tls = Some(TlsInfo {
        cert_not_after: at + chrono::Duration::days(60),
        days_left: 60,
    });
    r.regex = Some(RegexInfo {
        pattern: "Welcome".into(),
        matched: true,
    });
    r
}

/// Times a plain `COPY … FROM STDIN` of `results` (from a file written first) into a
/// compact 16-column table keyed by `(started_at, check_id)`: the ceiling the issue set for
/// storing them (`reference_compact`, created here).
pub async fn compact_copy_reference(
    client: &Client,
    results: &[CheckResult],
    tag: &str,
) -> Duration {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS reference_compact;
             CREATE TABLE reference_compact (
                 started_at timestamptz NOT NULL, check_id uuid NOT NULL, site_id integer NOT NULL,
                 outcome smallint NOT NULL, http_status smallint, dns_us integer,
                 connect_us integer, tls_us integer, ttfb_us integer, total_us integer NOT NULL,
                 body_bytes integer, regex_matched boolean, error_kind smallint,
                 agent_id smallint NOT NULL, kafka_partition integer NOT NULL,
                 kafka_offset bigint NOT NULL,
                 PRIMARY KEY (started_at, check_id))",
        )
        .await
        .unwrap();
    let us = |ms: Option<f64>| ms.map_or("\\N".to_string(), |v| ((v * 1000.0) as i64).to_string());
    let mut text = String::new();
    for (i, r) in results.iter().enumerate() {
        let site: u32 = r
            .site
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % 1_000_000;
        let _ = writeln!(
            text,
            "{}\t{}\t{site}\t0\t{}\t{}\t{}\t{}\t{}\t{}\t{}\tt\t\\N\t1\t{}\t{i}",
            r.started_at.to_rfc3339(),
            r.check_id,
            r.http.as_ref().map_or(0, |h| h.status),
            us(r.timings_ms.dns),
            us(r.timings_ms.connect),
            us(r.timings_ms.tls),
            us(r.timings_ms.ttfb),
            us(Some(r.timings_ms.total)),
            r.http.as_ref().map_or(0, |h| h.body_bytes),
            i % 6,
        );
    }
    copy_file(client, "reference_compact", text.into_bytes(), tag).await
}

/// Dumps `results` to a file, empties the sink's tables, and times a plain
/// `COPY results FROM STDIN` of that file: the ceiling for storing those rows.
pub async fn copy_reference(client: &Client, tag: &str) -> Duration {
    let mut data = Vec::new();
    let out = client
        .copy_out("COPY (SELECT * FROM results) TO STDOUT")
        .await
        .unwrap();
    futures::pin_mut!(out);
    while let Some(chunk) = out.next().await {
        data.extend_from_slice(&chunk.unwrap());
    }
    client
        .batch_execute("TRUNCATE results, site_events, rollup_hourly, rollup_daily, rollup_site_daily, location_states, site_verdicts, incidents")
        .await
        .unwrap();
    copy_file(client, "results", data, tag).await
}

/// Writes `data` to a file, then times reading it and `COPY table FROM STDIN`.
async fn copy_file(client: &Client, table: &str, data: Vec<u8>, tag: &str) -> Duration {
    let file = std::env::temp_dir().join(format!("{tag}.copy"));
    std::fs::write(&file, &data).unwrap();
    let started = Instant::now();
    let bytes = std::fs::read(&file).unwrap();
    let sink = client
        .copy_in(&format!("COPY {table} FROM STDIN"))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(bytes)).await.unwrap();
    sink.close().await.unwrap();
    let took = started.elapsed();
    std::fs::remove_file(&file).ok();
    took
}
