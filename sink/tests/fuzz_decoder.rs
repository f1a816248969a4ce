//! Fuzzing the sink's message decoder: mutated result messages (JSON-aware and byte-level)
//! never panic it, and everything it accepts or rejects then stores in a real database,
//! so no message can hold up a batch.
//!
//! Longer run: `SITEWATCH_FUZZ_SECONDS=300 cargo test --release -p sitewatch-sink --test fuzz_decoder`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::sync::Mutex;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use sitewatch_checks::MAX_SITE_NAME;
use sitewatch_sink::decode::{decode, decode_row};
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{write_batch, Batch, Rejected};
use sitewatch_tests::db::TestDb;
use sitewatch_tests::fuzz::{budget, mutated_bytes, mutated_json, run_for};

/// Kept for the database half of the test: enough to cover many shapes, few enough to be quick.
const KEEP: usize = 500;

fn full_seed() -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "schema": 1,
        "check_id": uuid::Uuid::now_v7(),
        "site": "shop",
        "url": "https://shop.example/health",
        "agent": "agent-1",
        "location": "eu-west",
        "started_at": now,
        "outcome": "down",
        "error": {"kind": "plugin", "message": "stock feed is stale"},
        "http": {"status": 200, "version": "HTTP/1.1", "body_bytes": 5120, "body_truncated": false, "redirects": 1},
        "timings_ms": {"dns": 0.5, "connect": 1.2, "tls": 8.0, "ttfb": 20.1, "total": 31.0},
        "tls": {"cert_not_after": now, "days_left": 42},
        "regex": {"pattern": "In stock", "matched": true},
        "regex_absent": {"pattern": "(?i)error", "matched": false},
        "plugins": [{
            "name": "freshness", "outcome": "fail", "message": "12 minutes old",
            "metrics": [{"name": "age_s", "value": 720.0}],
            "labels": [{"key": "feed", "value": "stock"}],
            "duration_ms": 0.05
        }]
    })
}

fn minimal_seed() -> serde_json::Value {
    json!({
        "schema": 1,
        "check_id": uuid::Uuid::now_v7(),
        "site": "s",
        "url": "http://127.0.0.1/",
        "agent": "a",
        "started_at": chrono::Utc::now().to_rfc3339(),
        "outcome": "up",
        "timings_ms": {"total": 1.0}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_messages_never_panic_the_decoder_and_whatever_it_returns_stores() {
    let accepted: Mutex<Vec<(Vec<u8>, sitewatch_checks::CheckResult)>> = Mutex::default();
    let rejected: Mutex<Vec<(Vec<u8>, String)>> = Mutex::default();
    let strategy = prop_oneof![
        4 => mutated_json(full_seed()),
        2 => mutated_json(minimal_seed()),
        1 => mutated_bytes(serde_json::to_vec(&full_seed()).unwrap()),
    ];
    let cases = run_for(budget(Duration::from_secs(4)), strategy, |payload| {
        match decode(Some(&payload)) {
            Ok(result) => {
                let text = serde_json::to_string(&result).unwrap();
                prop_assert!(!text.contains("\\u0000"), "NUL survived decoding: {text}");
                prop_assert!(!result.site.trim().is_empty() && result.site.len() <= MAX_SITE_NAME);
                let mut kept = accepted.lock().unwrap();
                if kept.len() < KEEP {
                    kept.push((payload, result));
                }
            }
            Err(e) => {
                let why = e.to_string();
                prop_assert!(!why.contains('\0'), "NUL in the rejection text: {why:?}");
                let mut kept = rejected.lock().unwrap();
                if kept.len() < KEEP {
                    kept.push((payload, why));
                }
            }
        }
        Ok(())
    });
    let accepted = accepted.into_inner().unwrap();
    let rejected = rejected.into_inner().unwrap();
    assert!(
        accepted.len() >= 20 && rejected.len() >= 20,
        "the fuzzer should reach both sides: {} accepted, {} rejected of {cases}",
        accepted.len(),
        rejected.len()
    );

    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();
    let mut offset = 0i64;
    // As the consumer makes them (an unknown error kind keeps its name).
    let mut rows = accepted
        .into_iter()
        .map(|(payload, _)| decode_row(Some(&payload), 0, 0).unwrap())
        .collect::<Vec<_>>();
    let mut bad = rejected;
    while !rows.is_empty() || !bad.is_empty() {
        let mut batch = Batch::default();
        for mut row in rows.drain(..rows.len().min(50)) {
            offset += 1;
            row.offset = offset;
            batch.rows.push(row);
        }
        for (payload, error) in bad.drain(..bad.len().min(50)) {
            offset += 1;
            batch.rejected.push(Rejected {
                topic: "fuzz".into(),
                partition: 0,
                offset,
                error,
                payload,
            });
        }
        if let Err(e) = write_batch(&mut client, &batch).await {
            panic!("a batch of decoder output did not store: {e:?}\n{batch:#?}");
        }
    }
}
