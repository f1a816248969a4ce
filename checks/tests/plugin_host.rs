//! The WebAssembly host with real components from `examples/plugins/`: verdicts,
//! what a plugin is shown, the sandbox, and containment of hostile plugins.

#![cfg(feature = "wasm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sitewatch_checks::plugin::{
    host_wit_version, CallError, HostOptions, LoadError, PluginHost, PluginLimits, WasmPlugin,
};
use sitewatch_checks::schema::{PluginOutcome, PluginResult, Timings};
use sitewatch_checks::spec::ResponseView;
use sitewatch_tests::plugins::{component, component_importing};

fn host() -> PluginHost {
    PluginHost::new(None).unwrap()
}

fn load(host: &PluginHost, name: &str) -> WasmPlugin {
    host.load(name, &component(name), PluginLimits::default())
        .unwrap()
}

const TIMINGS: Timings = Timings {
    dns: None,
    connect: Some(1.5),
    tls: None,
    ttfb: Some(3.0),
    total: 4.25,
};

/// A 200 response from `http://127.0.0.1:1/status` with these headers and body.
fn view<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> ResponseView<'a> {
    ResponseView {
        url: "http://127.0.0.1:1/status",
        status: 200,
        version: "HTTP/1.1",
        headers,
        body,
        timings: &TIMINGS,
    }
}

async fn run(plugin: &WasmPlugin, body: &[u8], config: &[(&str, &str)]) -> PluginResult {
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-content-type-options".to_string(), "nosniff".to_string()),
    ];
    let view = view(&headers, body);
    let config: Vec<(String, String)> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plugin.run("p", &view, &config).await
}

fn label<'a>(r: &'a PluginResult, key: &str) -> &'a str {
    r.labels
        .iter()
        .find(|l| l.key == key)
        .map(|l| l.value.as_str())
        .unwrap_or_else(|| panic!("no label {key} in {r:?}"))
}

#[tokio::test]
async fn json_field_checks_a_path_and_reports_the_number() {
    let h = host();
    let p = load(&h, "json-field");
    let body = br#"{"queue": {"depth": 42, "state": "ok"}, "items": [{"id": 7}]}"#;

    let r = run(&p, body, &[("path", "queue.depth"), ("max", "100")]).await;
    assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
    assert_eq!(r.metrics.len(), 1);
    assert_eq!(
        (r.metrics[0].name.as_str(), r.metrics[0].value),
        ("queue.depth", 42.0)
    );

    let r = run(&p, body, &[("path", "queue.depth"), ("max", "10")]).await;
    assert_eq!(r.outcome, PluginOutcome::Fail);
    assert!(r.message.contains("above the maximum 10"), "{}", r.message);

    let r = run(&p, body, &[("path", "queue.state"), ("equals", "ok")]).await;
    assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
    let r = run(
        &p,
        body,
        &[
            ("path", "items.0.id"),
            ("equals", "8"),
            ("severity", "warn"),
        ],
    )
    .await;
    assert_eq!(r.outcome, PluginOutcome::Warn, "{r:?}");
    let r = run(&p, b"<html>", &[("path", "a")]).await;
    assert_eq!(r.outcome, PluginOutcome::Fail);
    assert!(r.message.contains("not JSON"), "{}", r.message);
    // A plugin's own config error is `err`, reported as outcome `error`.
    let r = run(&p, body, &[]).await;
    assert_eq!(r.outcome, PluginOutcome::Error);
    assert!(r.message.contains("`path` is required"), "{}", r.message);
}

#[tokio::test]
async fn security_headers_reports_what_is_missing() {
    let h = host();
    let p = load(&h, "security-headers");
    let r = run(&p, b"", &[("require", "x-content-type-options")]).await;
    assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
    let r = run(&p, b"", &[]).await;
    assert_eq!(r.outcome, PluginOutcome::Warn, "{r:?}");
    assert!(r.message.contains("strict-transport-security missing"));
    assert_eq!(r.metrics[0].value, 2.0);
}

#[tokio::test]
async fn content_freshness_reads_a_time_of_day_from_the_page() {
    let h = host();
    let p = load(&h, "content-freshness");
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let now = chrono::Utc::now();
    let page = |t: &str| format!("<p>Weather for Helsinki. Last updated today at {t}.</p>");
    let config = [
        ("pattern", r"Last updated .* at (\d{1,2}:\d{2})"),
        ("format", "%H:%M"),
        ("max_age_minutes", "30"),
    ];
    let fresh = page(&fmt(now - chrono::Duration::minutes(2)));
    let r = run(&p, fresh.as_bytes(), &config).await;
    assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
    let stale = page(&fmt(now - chrono::Duration::minutes(90)));
    let r = run(&p, stale.as_bytes(), &config).await;
    assert_eq!(r.outcome, PluginOutcome::Fail, "{r:?}");
    assert!((88.0..=92.0).contains(&r.metrics[0].value), "{r:?}");
    let r = run(&p, b"no time here", &config).await;
    assert_eq!(r.outcome, PluginOutcome::Fail);
}

#[tokio::test]
async fn a_plugin_sees_the_response_and_its_config() {
    let h = host();
    let p = load(&h, "hostile");
    let r = run(&p, b"hello", &[("mode", "echo"), ("extra", "1")]).await;
    assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
    assert_eq!(label(&r, "url"), "http://127.0.0.1:1/status");
    assert_eq!(label(&r, "status"), "200");
    assert_eq!(label(&r, "version"), "HTTP/1.1");
    assert_eq!(label(&r, "body"), "hello");
    assert_eq!(label(&r, "header:x-content-type-options"), "nosniff");
    assert_eq!(label(&r, "config:extra"), "1");
    let total = r.metrics.iter().find(|m| m.name == "total_ms").unwrap();
    assert_eq!(total.value, 4.25);
}

#[tokio::test]
async fn the_sandbox_grants_no_files_environment_or_network() {
    // Something to connect to, were the network reachable.
    let listener = std::net::TcpListener::bind("127.0.0.1:5432").ok();
    let h = host();
    let r = run(&load(&h, "hostile"), b"", &[("mode", "sandbox")]).await;
    assert_eq!(label(&r, "files"), "denied");
    assert_eq!(label(&r, "env_vars"), "0");
    assert_eq!(label(&r, "network"), "denied");
    drop(listener);
}

#[tokio::test]
async fn hostile_plugins_are_contained_and_the_host_stays_usable() {
    // Two pooled slots: the concurrent calls at the end must wait for one, not fail.
    let h = PluginHost::with_options(&HostOptions {
        concurrent_calls: 2,
        ..HostOptions::default()
    })
    .unwrap();
    let limits = PluginLimits {
        timeout: Duration::from_millis(100),
        max_memory: 32 * 1024 * 1024,
    };
    let p = Arc::new(h.load("hostile", &component("hostile"), limits).unwrap());
    let call = |mode: &'static str| {
        let p = p.clone();
        async move {
            let started = Instant::now();
            let r = p
                .call(&view(&[], b""), &[("mode".into(), mode.into())])
                .await;
            (r, started.elapsed())
        }
    };

    for mode in ["loop", "sleep"] {
        let (r, took) = call(mode).await;
        assert_eq!(
            r.unwrap_err(),
            CallError::Deadline(limits.timeout),
            "{mode}"
        );
        // Generous bound: the point is "ends near its deadline", not "never ends".
        assert!(took < Duration::from_secs(5), "{mode} took {took:?}");
    }
    // Filling 32 MiB can take longer than 100 ms on a loaded machine: this case is
    // about the memory cap, so it gets a deadline it cannot reach.
    let roomy = h
        .load(
            "hostile",
            &component("hostile"),
            PluginLimits {
                timeout: Duration::from_secs(30),
                ..limits
            },
        )
        .unwrap();
    let oom = roomy
        .call(&view(&[], b""), &[("mode".into(), "oom".into())])
        .await;
    match oom.unwrap_err() {
        CallError::Memory { limit, wanted } => {
            assert_eq!(limit, limits.max_memory);
            assert!(wanted > limit);
        }
        other => panic!("oom gave {other:?}"),
    }
    match call("trap").await.0.unwrap_err() {
        CallError::Trap(m) => assert!(m.contains("unreachable"), "{m}"),
        other => panic!("trap gave {other:?}"),
    }
    assert_eq!(
        call("err").await.0.unwrap_err(),
        CallError::Returned("deliberate error".into())
    );
    // Floods and huge verdicts are bounded on the way out.
    let empty = view(&[], b"");
    let huge = p.run("h", &empty, &[("mode".into(), "huge".into())]).await;
    assert_eq!(
        huge.outcome,
        PluginOutcome::Pass,
        "{}",
        &huge.message[..huge.message.len().min(300)]
    );
    assert!(huge.message.len() <= 1024);
    assert!(huge.metrics.len() <= 64 && huge.metrics.iter().all(|m| m.value.is_finite()));
    serde_json::to_string(&huge).unwrap();
    let flood = p
        .run("f", &empty, &[("mode".into(), "log-flood".into())])
        .await;
    assert_eq!(flood.outcome, PluginOutcome::Pass, "{flood:?}");

    // After all that, many concurrent good calls still succeed.
    let over = PluginLimits {
        max_memory: 1 << 30,
        ..limits
    };
    let err = h.load("big", &component("hostile"), over).err().unwrap();
    assert!(matches!(err, LoadError::Limits { .. }), "{err}");
    let calls: Vec<_> = (0..16).map(|_| tokio::spawn(call("pass"))).collect();
    for c in calls {
        c.await.unwrap().0.unwrap();
    }
}

#[test]
fn unusable_component_files_are_load_errors_naming_the_file() {
    let h = host();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wasm");
    let err = h
        .load("m", &missing, PluginLimits::default())
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.wasm"));

    // A core module (e.g. built for wasm32-wasip1): says how to build a component.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = h.load("c", &core, PluginLimits::default()).err().unwrap();
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("build it as a component (Rust: cargo build --target wasm32-wasip2"),
        "{err}"
    );

    // A directory where the file should be.
    let err = h
        .load("d", dir.path(), PluginLimits::default())
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Directory { .. }), "{err}");
    assert!(err.to_string().contains("is a directory"), "{err}");

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let err = h.load("j", &junk, PluginLimits::default()).err().unwrap();
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
    assert!(err.to_string().contains("junk.wasm"));

    // A valid but empty component: no `check` export.
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    let err = h.load("e", &empty, PluginLimits::default()).err().unwrap();
    assert!(matches!(err, LoadError::World { .. }), "{err}");
    assert!(err.to_string().contains("empty.wasm") && err.to_string().contains("checker"));
}

#[test]
fn imports_the_host_lacks_are_named_with_how_to_build_without_them() {
    let h = host();
    let dir = tempfile::tempdir().unwrap();
    let load = |file: &str, names: &[&str]| {
        let path = dir.path().join(file);
        std::fs::write(&path, component_importing(names)).unwrap();
        h.load("p", &path, PluginLimits::default()).err().unwrap()
    };

    // What componentize-js builds without `-d http fetch-event`.
    let err = load("js.wasm", &["wasi:io/poll@0.2.3", "wasi:http/types@0.2.3"]);
    assert!(matches!(err, LoadError::World { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("js.wasm") && text.contains("`wasi:http/types@0.2.3`"),
        "{text}"
    );
    assert!(
        text.contains("componentize-js -d http fetch-event"),
        "{text}"
    );
    assert!(
        !text.contains("`wasi:io/poll"),
        "provided imports are not blamed: {text}"
    );

    // Built against another version of the contract: both versions named.
    let err = load("old.wasm", &["sitewatch:check/log@0.2.0"]);
    let text = err.to_string();
    assert!(text.contains("sitewatch:check@0.2.0"), "{text}");
    assert!(
        text.contains(&format!("sitewatch:check@{}", host_wit_version())),
        "{text}"
    );

    let err = load("db.wasm", &["acme:db/query@1.0.0"]);
    let text = err.to_string();
    assert!(
        text.contains("`acme:db/query@1.0.0`") && text.contains("build the plugin without"),
        "{text}"
    );
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let h = PluginHost::new(Some(&cache)).unwrap();
    load(&h, "json-field");
    assert_eq!(h.cache_stats(), Some((0, 1)), "first load compiles");
    // A second host, as after a restart, loads the compiled code from disk.
    let h2 = PluginHost::new(Some(&cache)).unwrap();
    load(&h2, "json-field");
    assert_eq!(
        h2.cache_stats(),
        Some((1, 0)),
        "restart is served from the cache"
    );
}

/// The agent-wide memory budget: calls whose `max_memory` does not fit beside the
/// calls running wait for it (here one call at a time although four slots are
/// free), and a plugin larger than the whole budget is refused at load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_wait_for_their_share_of_the_memory_budget() {
    const MIB: usize = 1 << 20;
    let h = PluginHost::with_options(&HostOptions {
        concurrent_calls: 4,
        max_memory: 64 * MIB,
        memory_total: Some(32 * MIB as u64),
        ..HostOptions::default()
    })
    .unwrap();
    let limits = PluginLimits {
        timeout: Duration::from_millis(300),
        max_memory: 32 * MIB,
    };
    let p = Arc::new(h.load("hostile", &component("hostile"), limits).unwrap());
    let started = Instant::now();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                p.call(&view(&[], b""), &[("mode".into(), "loop".into())])
                    .await
            })
        })
        .collect();
    for c in calls {
        assert_eq!(
            c.await.unwrap().unwrap_err(),
            CallError::Deadline(limits.timeout)
        );
    }
    // Each ran to its 300 ms deadline in turn: a lower bound, so load cannot break it.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(850),
        "ran side by side: {took:?}"
    );

    let err = h
        .load(
            "big",
            &component("hostile"),
            PluginLimits {
                max_memory: 32 * MIB + 1,
                ..limits
            },
        )
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Limits { .. }), "{err}");
    assert!(err.to_string().contains("memory budget"), "{err}");
}
