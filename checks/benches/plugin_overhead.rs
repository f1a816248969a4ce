//! Per-check cost of a WebAssembly plugin: fresh store + instance from the cached
//! `InstancePre`, one `check` call, drop. Run with
//! `cargo bench -p sitewatch-checks --features wasm --bench plugin_overhead`
//! (see BENCHMARKS.md). Prints p50/p99 for the trivial plugin and for `json-field`
//! on a 10 KB JSON body, next to native `serde_json` parsing of that body as the
//! reference measured in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sitewatch_checks::plugin::{PluginHost, PluginLimits};
use sitewatch_checks::schema::{PluginOutcome, Timings};
use sitewatch_checks::spec::ResponseView;
use sitewatch_tests::plugins::component;

const WARMUP: usize = 200;
const ITERATIONS: usize = 5_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let host = PluginHost::new(None).unwrap();
    let trivial = host
        .load("trivial", &component("hostile"), PluginLimits::default())
        .unwrap();
    let json = host
        .load(
            "json-field",
            &component("json-field"),
            PluginLimits::default(),
        )
        .unwrap();
    let body = json_body(10 * 1024);
    let timings = Timings {
        dns: None,
        connect: Some(0.1),
        tls: None,
        ttfb: Some(0.2),
        total: 0.3,
    };
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    let view = |body: &'static [u8]| ResponseView {
        url: "http://127.0.0.1/",
        status: 200,
        version: "HTTP/1.1",
        headers: &headers,
        body,
        timings: &timings,
    };
    let body: &'static [u8] = Box::leak(body.into_boxed_slice());
    let pass_cfg = vec![("mode".to_string(), "pass".to_string())];
    let json_cfg = vec![
        ("path".to_string(), "items.99.value".to_string()),
        ("max".to_string(), "1000000".to_string()),
    ];

    let trivial_times = runtime.block_on(async {
        measure(|| async {
            let r = trivial.run("trivial", &view(b"ok"), &pass_cfg).await;
            assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
        })
        .await
    });
    let json_times = runtime.block_on(async {
        measure(|| async {
            let r = json.run("json-field", &view(body), &json_cfg).await;
            assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
        })
        .await
    });
    let native_times = runtime.block_on(async {
        measure(|| async {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert!(v["items"][99]["value"].is_number());
        })
        .await
    });

    println!("plugin overhead per check ({ITERATIONS} calls each, after {WARMUP} warm-up)");
    report("trivial plugin (instantiate + call + drop)", &trivial_times);
    report("json-field on a 10 KB JSON body", &json_times);
    report(
        "reference: native serde_json parse of that body",
        &native_times,
    );
    println!(
        "ratio json-field / native parse (p50): {:.1}x",
        p(&json_times, 50.0).as_secs_f64() / p(&native_times, 50.0).as_secs_f64()
    );
}

async fn measure<F, Fut>(mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..WARMUP {
        f().await;
    }
    let mut times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        f().await;
        times.push(started.elapsed());
    }
    times.sort();
    times
}

fn p(sorted: &[Duration], pct: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * pct / 100.0).round() as usize;
    sorted[i]
}

fn report(what: &str, times: &[Duration]) {
    println!(
        "  {what:<50} p50 {:>8.1} µs   p99 {:>8.1} µs",
        p(times, 50.0).as_secs_f64() * 1e6,
        p(times, 99.0).as_secs_f64() * 1e6
    );
}

/// A JSON document of about `size` bytes: `{"items":[{"id":0,"name":"...","value":0},...]}`.
fn json_body(size: usize) -> Vec<u8> {
    let mut items = Vec::new();
    let mut len = 12;
    let mut i = 0;
    while len < size {
        let item = format!(r#"{{"id":{i},"name":"item number {i}","value":{}}}"#, i * 7);
        len += item.len() + 1;
        items.push(item);
        i += 1;
    }
    format!(r#"{{"items":[{}]}}"#, items.join(",")).into_bytes()
}
