//! Plugins written in Python and JavaScript (`examples/plugins/python/`,
//! `examples/plugins/javascript/`), built by their own build scripts with the
//! toolchains `scripts/setup` pins: what they need from the instance pool, that
//! no call fails for want of a pool entry at any concurrency, and their verdicts.
//! Compiled code is shared through one on-disk cache (see `shared_plugin_cache`).

#![cfg(feature = "wasm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sitewatch_checks::plugin::{
    CallNeeds, HostOptions, LoadError, PluginFile, PluginHost, PluginLimits, WasmPlugin,
    DEFAULT_PER_CALL,
};
use sitewatch_checks::schema::{PluginOutcome, PluginResult, Timings};
use sitewatch_checks::spec::ResponseView;
use sitewatch_tests::plugins::{component, script_component, shared_plugin_cache, Language};

fn python() -> &'static PluginFile {
    static FILE: OnceLock<PluginFile> = OnceLock::new();
    FILE.get_or_init(|| compiled(Language::Python, "api-contract"))
}

fn javascript() -> &'static PluginFile {
    static FILE: OnceLock<PluginFile> = OnceLock::new();
    FILE.get_or_init(|| compiled(Language::JavaScript, "login-page"))
}

/// The example, read, and compiled once into the shared cache: the tests that
/// use it then load it from there instead of each compiling it at once.
fn compiled(lang: Language, name: &str) -> PluginFile {
    let file = PluginFile::read(&script_component(lang, name)).unwrap();
    let started = std::time::Instant::now();
    host_for(&file, 1).load_file(name, &file, LIMITS).unwrap();
    eprintln!("{name}: loaded in {:.1}s", started.elapsed().as_secs_f64());
    file
}

/// A host sized for `file` with `concurrent_calls` slots, caching compiled code
/// where every test finds it.
fn host_for(file: &PluginFile, concurrent_calls: u32) -> PluginHost {
    let options = HostOptions {
        cache_dir: Some(shared_plugin_cache()),
        concurrent_calls,
        ..HostOptions::default()
    }
    .sized_for([file]);
    PluginHost::with_options(&options).unwrap()
}

/// Generous: these tests are about verdicts and pool sizing, not speed, and a
/// debug build on a loaded machine is slow.
const LIMITS: PluginLimits = PluginLimits {
    timeout: Duration::from_secs(20),
    max_memory: 64 * 1024 * 1024,
};

const TIMINGS: Timings = Timings {
    dns: None,
    connect: Some(1.0),
    tls: Some(2.0),
    ttfb: Some(3.0),
    total: 4.0,
};

async fn run(
    plugin: &WasmPlugin,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    config: &[(&str, &str)],
) -> PluginResult {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config: Vec<(String, String)> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let view = ResponseView {
        url,
        status: 200,
        version: "HTTP/1.1",
        headers: &headers,
        body: body.as_bytes(),
        timings: &TIMINGS,
    };
    plugin.run("p", &view, &config).await
}

fn metric(r: &PluginResult, name: &str) -> f64 {
    r.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name} in {r:?}"))
        .value
}

#[test]
fn each_language_needs_what_its_runtime_brings() {
    let rust = PluginFile::read(&component("json-field")).unwrap().needs();
    let (py, js) = (python().needs(), javascript().needs());
    eprintln!("per call: rust {rust:?}\npython {py:?}\njavascript {js:?}");
    // A Rust component fits the default sizing; Python's interpreter does not.
    assert!(DEFAULT_PER_CALL.covers(&rust), "{rust:?}");
    assert!(
        py.core_instances > DEFAULT_PER_CALL.core_instances,
        "{py:?}"
    );
    assert!(js.core_instances >= 2 && js.memories >= 1, "{js:?}");
    assert!(py.initial_memory > 0 && js.initial_memory > 0);
    // Types the world `use`s (`response`, `verdict`) are not imports to provide.
    for file in [python(), javascript()] {
        assert!(
            file.imports().iter().all(|i| i.contains(':')),
            "{:?}",
            file.imports()
        );
        assert!(file
            .imports()
            .iter()
            .any(|i| i.starts_with("sitewatch:check/log@")));
    }
}

/// What wasmtime itself counts for `path` (core instances, memories, tables), read
/// from its refusal when the per-component maximum is one below `needs`.
fn wasmtime_counts(path: &std::path::Path, needs: CallNeeds) -> (u32, u32, u32) {
    use wasmtime::{Cache, CacheConfig, Config, Engine, PoolingAllocationConfig};
    let bytes = std::fs::read(path).unwrap();
    let refusal = |limit: &dyn Fn(&mut PoolingAllocationConfig), what: &str| -> u32 {
        let mut pool = PoolingAllocationConfig::default();
        pool.max_memory_size(LIMITS.max_memory);
        limit(&mut pool);
        let mut config = Config::new();
        // The host's compile settings, so the shared cache spares a compile.
        config
            .allocation_strategy(pool)
            .memory_reservation(LIMITS.max_memory as u64)
            .epoch_interruption(true);
        let mut cache = CacheConfig::new();
        cache.with_directory(shared_plugin_cache());
        config.cache(Some(Cache::new(cache).unwrap()));
        let engine = Engine::new(&config).unwrap();
        let err = wasmtime::component::Component::new(&engine, &bytes)
            .err()
            .unwrap_or_else(|| panic!("{} fits a pool one {what} short", path.display()));
        let text = format!("{err:#}");
        let count = text
            .split("transitively contains ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no count in: {text}"));
        count.parse().unwrap()
    };
    let below = |n: u32| n.saturating_sub(1);
    (
        refusal(
            &|p| {
                p.max_core_instances_per_component(below(needs.core_instances));
            },
            "core instance",
        ),
        refusal(
            &|p| {
                p.max_memories_per_component(below(needs.memories));
            },
            "memory",
        ),
        refusal(
            &|p| {
                p.max_tables_per_component(below(needs.tables));
            },
            "table",
        ),
    )
}

/// The pool is sized from `inspect`'s count, so it must agree with the count
/// wasmtime enforces, for each language's component.
#[test]
fn needs_read_from_the_file_match_what_wasmtime_counts() {
    let files = [
        PluginFile::read(&component("json-field")).unwrap(),
        python().clone(),
        javascript().clone(),
    ];
    for file in &files {
        let n = file.needs();
        assert_eq!(
            wasmtime_counts(file.path(), n),
            (n.core_instances, n.memories, n.tables),
            "{}",
            file.path().display()
        );
    }
}

#[test]
fn a_host_too_small_for_a_component_refuses_it_at_load_not_per_call() {
    let small = PluginHost::new(None).unwrap();
    let err = small.load_file("py", python(), LIMITS).err().unwrap();
    assert!(matches!(err, LoadError::Pool { .. }), "{err}");
    assert!(err.to_string().contains("api_contract.wasm"), "{err}");
}

/// Issue 19: at `max_concurrency` 1 and 2 every Python call used to fail with
/// "maximum concurrent limit of 8 for core instances reached". Twenty calls at
/// once (and 64 at 64) must all give their verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_calls_never_run_out_of_pool_entries_at_any_concurrency() {
    let body = r#"{"status": "ok", "items": [{"id": 1}, {"id": 2}]}"#;
    for concurrency in [1u32, 2, 64] {
        let host = host_for(python(), concurrency);
        let plugin = Arc::new(host.load_file("api", python(), LIMITS).unwrap());
        let calls = concurrency.max(20);
        let tasks: Vec<_> = (0..calls)
            .map(|_| {
                let plugin = plugin.clone();
                tokio::spawn(async move {
                    run(
                        &plugin,
                        "https://api.example/v1",
                        &[("content-type", "application/json")],
                        body,
                        &[("fields", "status:string,items.*.id:integer")],
                    )
                    .await
                })
            })
            .collect();
        for task in tasks {
            let r = task.await.unwrap();
            assert_eq!(
                r.outcome,
                PluginOutcome::Pass,
                "max_concurrency {concurrency}: {r:?}"
            );
        }
    }
}

#[tokio::test]
async fn python_api_contract_passes_warns_and_fails() {
    let host = host_for(python(), 4);
    let p = host.load_file("api", python(), LIMITS).unwrap();
    let json = [("content-type", "application/json; charset=utf-8")];
    let body = r#"{"status": "ok", "count": 2, "items": [{"id": 1, "email": null}, {"id": "2"}]}"#;

    let r = run(
        &p,
        "u",
        &json,
        body,
        &[
            ("fields", "status:string,count:integer,items:array"),
            ("non_empty", "items"),
        ],
    )
    .await;
    assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
    assert_eq!(metric(&r, "fields_checked"), 4.0);
    assert_eq!(metric(&r, "violations"), 0.0);

    // One element breaks the contract; optional fields may be absent or null.
    let config = [("fields", "items.*.id:integer,items.*.email:string?")];
    let r = run(&p, "u", &json, body, &config).await;
    assert_eq!(r.outcome, PluginOutcome::Fail, "{r:?}");
    assert!(
        r.message.contains("`items.1.id` is string, not integer"),
        "{}",
        r.message
    );
    assert_eq!(metric(&r, "violations"), 1.0);

    let r = run(
        &p,
        "u",
        &json,
        body,
        &[("fields", "missing:number"), ("severity", "warn")],
    )
    .await;
    assert_eq!(r.outcome, PluginOutcome::Warn, "{r:?}");
    assert!(r.message.contains("`missing` is missing"), "{}", r.message);

    let r = run(
        &p,
        "u",
        &[("content-type", "text/html")],
        "<html>",
        &[("fields", "a:any")],
    )
    .await;
    assert_eq!(r.outcome, PluginOutcome::Fail, "{r:?}");
    assert!(
        r.message.contains("content-type is `text/html`"),
        "{}",
        r.message
    );
    let r = run(&p, "u", &json, "{not json", &[]).await;
    assert_eq!(r.outcome, PluginOutcome::Fail, "{r:?}");
    assert!(r.message.contains("not JSON"), "{}", r.message);

    // A config mistake is the plugin's `err`: outcome `error`, with its message.
    let r = run(&p, "u", &json, body, &[("fields", "status:text")]).await;
    assert_eq!(r.outcome, PluginOutcome::Error, "{r:?}");
    assert!(r.message.contains("unknown type `text`"), "{}", r.message);
}

const LOGIN: &str = r#"<html><body><h1>Sign in</h1>
<form method="post" action="/session">
  <input type="hidden" name="authenticity_token" value="x1">
  <input type="text" name="user"><input type="password" name="password">
  <button>Sign in</button>
</form></body></html>"#;

#[tokio::test]
async fn javascript_login_page_passes_warns_and_fails() {
    let host = host_for(javascript(), 4);
    let p = host.load_file("login", javascript(), LIMITS).unwrap();
    let safe = [("x-frame-options", "DENY")];
    let url = "https://app.example/login";

    let r = run(&p, url, &safe, LOGIN, &[("expect_text", "Sign in")]).await;
    assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
    assert!(
        r.message.contains("https://app.example/session"),
        "{}",
        r.message
    );
    assert_eq!(
        (metric(&r, "forms"), metric(&r, "password_fields")),
        (1.0, 1.0)
    );

    // No CSRF token and framing allowed: findings, a warning when asked for.
    let bare = LOGIN.replace("authenticity_token", "other");
    let r = run(&p, url, &[], &bare, &[("insecure", "warn")]).await;
    assert_eq!(r.outcome, PluginOutcome::Warn, "{r:?}");
    assert!(
        r.message.contains("no CSRF token") && r.message.contains("framed"),
        "{}",
        r.message
    );
    let r = run(&p, url, &[], &bare, &[]).await;
    assert_eq!(r.outcome, PluginOutcome::Fail, "{r:?}");

    // Broken login: no password field, or a password sent over plain http.
    let r = run(&p, url, &safe, "<form><input name=q></form>", &[]).await;
    assert_eq!(r.outcome, PluginOutcome::Fail, "{r:?}");
    assert!(r.message.contains("no login form"), "{}", r.message);
    let http = "http://app.example/login";
    let r = run(&p, http, &safe, LOGIN, &[]).await;
    assert_eq!(r.outcome, PluginOutcome::Fail, "{r:?}");
    assert!(r.message.contains("plain http"), "{}", r.message);
    let r = run(&p, http, &safe, LOGIN, &[("allow_http", "true")]).await;
    assert_eq!(r.outcome, PluginOutcome::Pass, "{r:?}");
    let r = run(&p, url, &safe, LOGIN, &[("expect_text", "Welcome")]).await;
    assert_eq!(r.outcome, PluginOutcome::Fail, "{r:?}");

    let r = run(&p, url, &safe, LOGIN, &[("allow_http", "yes")]).await;
    assert_eq!(r.outcome, PluginOutcome::Error, "{r:?}");
    assert!(
        r.message.contains("`allow_http` must be true or false"),
        "{}",
        r.message
    );
}

#[test]
fn memory_too_small_for_the_runtime_is_refused_at_load_naming_both_sizes() {
    let host = host_for(python(), 1);
    let tiny = PluginLimits {
        max_memory: 1024 * 1024,
        ..LIMITS
    };
    let err = host.load_file("api", python(), tiny).err().unwrap();
    assert!(matches!(err, LoadError::MemoryTooSmall { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("max_memory is 1 MiB") && text.contains("raise max_memory"),
        "{text}"
    );
}
