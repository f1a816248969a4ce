//! The agent binary with WebAssembly plugins from `examples/plugins/`: verdicts set
//! the site's outcome, a hostile plugin costs only its own check, and an unusable
//! component is a config error naming the file and line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::process::Command;

use sitewatch_checks::schema::PluginOutcome;
use sitewatch_checks::{CheckResult, ErrorKind, Outcome};
use sitewatch_tests::plugins::{component, script_component, shared_plugin_cache, Language};
use sitewatch_tests::site::{serve, Page};

const AGENT: &str = env!("CARGO_BIN_EXE_sitewatch-agent");

#[test]
fn plugin_verdicts_set_outcomes_and_a_hostile_plugin_is_contained() {
    let port = serve(vec![
        Page::ok("/ok.json", r#"{"queue": {"depth": 5}}"#)
            .header("Strict-Transport-Security", "max-age=31536000"),
        Page::ok("/deep.json", r#"{"queue": {"depth": 500}}"#),
        Page::ok("/", "plain"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    std::fs::write(
        &config,
        format!(
            r#"agent:
  plugin_cache: off
plugins:
  queue:
    path: {json}
    config: {{ path: queue.depth, max: "100" }}
  hsts:
    path: {headers}
    config: {{ require: strict-transport-security }}
  stuck:
    path: {hostile}
    config: {{ mode: loop }}
    timeout: 50ms
sites:
  - name: healthy
    url: http://127.0.0.1:{port}/ok.json
    plugins: [queue, hsts]
  - name: too-deep
    url: http://127.0.0.1:{port}/deep.json
    plugins: [queue]
  - name: tight-limit
    url: http://127.0.0.1:{port}/ok.json
    plugins: [{{ name: queue, config: {{ max: "3" }} }}]
  - name: missing-header
    url: http://127.0.0.1:{port}/deep.json
    plugins: [{{ name: hsts, config: {{ severity: warn }} }}]
  - name: stuck
    url: http://127.0.0.1:{port}/
    plugins: [stuck]
  - name: plain
    url: http://127.0.0.1:{port}/
"#,
            json = component("json-field").display(),
            headers = component("security-headers").display(),
            hostile = component("hostile").display(),
        ),
    )
    .unwrap();
    let out = Command::new(AGENT)
        .arg("--once")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a site is down; stderr: {stderr}"
    );
    let results: Vec<CheckResult> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let site = |name: &str| results.iter().find(|r| r.site == name).unwrap();

    let healthy = site("healthy");
    assert_eq!(healthy.outcome, Outcome::Up, "{healthy:?}");
    let names: Vec<&str> = healthy.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["queue", "hsts"]);
    assert_eq!(healthy.plugins[0].metrics[0].value, 5.0);
    assert!(healthy
        .plugins
        .iter()
        .all(|p| p.outcome == PluginOutcome::Pass));

    for name in ["too-deep", "tight-limit"] {
        let r = site(name);
        assert_eq!(r.outcome, Outcome::Down, "{r:?}");
        let e = r.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Plugin);
        assert!(e.message.contains("above the maximum"), "{}", e.message);
    }

    let r = site("missing-header");
    assert_eq!(r.outcome, Outcome::Degraded, "{r:?}");
    assert_eq!(r.plugins[0].outcome, PluginOutcome::Warn);

    let r = site("stuck");
    assert_eq!(r.outcome, Outcome::Degraded, "{r:?}");
    assert_eq!(r.plugins[0].outcome, PluginOutcome::Error);
    assert!(
        r.plugins[0].message.contains("50ms deadline"),
        "{:?}",
        r.plugins[0]
    );

    let r = site("plain");
    assert_eq!(r.outcome, Outcome::Up);
    assert!(r.plugins.is_empty());
}

#[test]
fn an_unusable_component_is_a_config_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0").unwrap(); // a core module, not a component
    let config = dir.path().join("sites.yaml");
    std::fs::write(
        &config,
        "plugins:\n  broken:\n    path: junk.wasm\nsites:\n  - name: a\n    url: http://127.0.0.1:9/\n    plugins: [broken]\n",
    )
    .unwrap();
    let out = Command::new(AGENT)
        .arg("--check-config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(sitewatch_checks::ops::EXIT_CONFIG)),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("sites.yaml:3: plugins.broken.path"),
        "{stderr}"
    );
    assert!(
        stderr.contains("build it as a component (Rust: cargo build --target wasm32-wasip2"),
        "{stderr}"
    );
    assert!(stderr.contains("junk.wasm"), "{stderr}");
}

/// Runs `sitewatch-agent --once` on `yaml` (written to a temporary sites.yaml) and
/// returns its results and stderr.
fn run_once(yaml: &str) -> (Vec<CheckResult>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = Command::new(AGENT)
        .arg("--once")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let results = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (results, stderr)
}

const LOGIN_PAGE: &str = r#"<html><h1>Sign in</h1><form method="post" action="/session">
<input type="hidden" name="csrf_token" value="t"><input name="user">
<input type="password" name="password"></form></html>"#;

/// The Python and JavaScript examples, built with the pinned registry toolchains,
/// judge real responses through the agent.
#[test]
fn python_and_javascript_plugins_judge_sites_through_the_agent() {
    let json =
        |path: &str, body: &str| Page::ok(path, body).header("Content-Type", "application/json");
    let port = serve(vec![
        json("/api", r#"{"status": "ok", "items": [{"id": 1}]}"#),
        json("/api-broken", r#"{"status": 500, "items": []}"#),
        Page::ok("/login", LOGIN_PAGE).header("X-Frame-Options", "DENY"),
        Page::ok("/maintenance", "<html>Back soon</html>"),
    ]);
    let (results, stderr) = run_once(&format!(
        r#"agent:
  plugin_cache: {cache}
plugins:
  contract:
    path: {python}
    config: {{ fields: "status:string,items.*.id:integer", non_empty: items }}
    timeout: 10s
  login:
    path: {javascript}
    config: {{ allow_http: "true", expect_text: Sign in }}
    timeout: 10s
sites:
  - {{ name: api, url: "http://127.0.0.1:{port}/api", plugins: [contract] }}
  - {{ name: api-broken, url: "http://127.0.0.1:{port}/api-broken", plugins: [contract] }}
  - {{ name: login, url: "http://127.0.0.1:{port}/login", plugins: [login] }}
  - {{ name: maintenance, url: "http://127.0.0.1:{port}/maintenance", plugins: [login] }}
"#,
        cache = shared_plugin_cache().display(),
        python = script_component(Language::Python, "api-contract").display(),
        javascript = script_component(Language::JavaScript, "login-page").display(),
    ));
    let site = |name: &str| {
        results
            .iter()
            .find(|r| r.site == name)
            .unwrap_or_else(|| panic!("no result for {name}; stderr: {stderr}"))
    };
    for name in ["api", "login"] {
        let r = site(name);
        assert_eq!(r.outcome, Outcome::Up, "{r:?}");
        assert_eq!(r.plugins[0].outcome, PluginOutcome::Pass, "{r:?}");
    }
    let r = site("api-broken");
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Plugin);
    assert!(
        e.message.contains("`status` is integer, not string"),
        "{}",
        e.message
    );
    assert!(e.message.contains("`items` is empty"), "{}", e.message);
    let r = site("maintenance");
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(
        r.plugins[0]
            .message
            .contains("does not contain \"Sign in\""),
        "{:?}",
        r.plugins[0]
    );
}

/// Issue 19: a Python component needs 14 core instances per call; with the pool
/// sized at 8 per slot every call failed at `max_concurrency: 1`, and most at 2.
/// The pool is now sized from the components loaded: 20 sites, every call passes.
#[test]
fn a_python_plugin_passes_on_every_site_at_max_concurrency_1_2_and_64() {
    let port = serve(vec![Page::ok(
        "/api",
        r#"{"status": "ok", "items": [{"id": 1}]}"#,
    )
    .header("Content-Type", "application/json")]);
    let sites: String = (0..20)
        .map(|i| format!("  - {{ name: s{i}, url: \"http://127.0.0.1:{port}/api\" }}\n"))
        .collect();
    for concurrency in [1, 2, 64] {
        let (results, stderr) = run_once(&format!(
            r#"agent:
  max_concurrency: {concurrency}
  plugin_cache: {cache}
plugins:
  contract:
    path: {python}
    config: {{ fields: "status:string,items.*.id:integer" }}
    timeout: 10s
defaults:
  plugins: [contract]
sites:
{sites}"#,
            cache = shared_plugin_cache().display(),
            python = script_component(Language::Python, "api-contract").display(),
        ));
        assert_eq!(results.len(), 20, "max_concurrency {concurrency}: {stderr}");
        for r in &results {
            assert_eq!(
                (r.outcome, r.plugins[0].outcome),
                (Outcome::Up, PluginOutcome::Pass),
                "max_concurrency {concurrency}: {r:?}"
            );
        }
    }
}

/// `plugins compile` fills the cache ahead of time; an agent started with the same
/// config then loads from it without compiling.
#[test]
fn plugins_compile_fills_the_cache_the_agent_then_loads_from() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = dir.path().join("sites.yaml");
    std::fs::write(
        &config,
        format!(
            "agent:\n  plugin_cache: {cache}\nplugins:\n  queue:\n    path: {json}\n\
             sites:\n  - {{ name: a, url: \"http://127.0.0.1:9/\", plugins: [queue] }}\n",
            cache = cache.display(),
            json = component("json-field").display(),
        ),
    )
    .unwrap();
    let compile = |extra: &[&str]| {
        let out = Command::new(AGENT)
            .args(["plugins", "compile"])
            .args(extra)
            .arg(&config)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        stdout
    };
    let first = compile(&[]);
    assert!(
        first.contains(&format!("plugin cache: {}", cache.display())),
        "{first}"
    );
    assert!(
        first.contains("queue: ") && first.contains(": compiled in"),
        "{first}"
    );
    let again = compile(&[]);
    assert!(again.contains("already compiled"), "{again}");

    // The agent (here --check-config, which loads every plugin) compiles nothing.
    let out = Command::new(AGENT)
        .env("RUST_LOG", "info")
        .arg("--check-config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("plugin loaded") && stderr.contains("cached=true"),
        "{stderr}"
    );

    // --cache-dir fills another directory; without any cache there is nothing to do.
    let elsewhere = dir.path().join("elsewhere");
    let out = compile(&["--cache-dir", elsewhere.to_str().unwrap()]);
    assert!(out.contains(": compiled in") && elsewhere.is_dir(), "{out}");
    let off = dir.path().join("off.yaml");
    std::fs::write(
        &off,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(&cache.display().to_string(), "off"),
    )
    .unwrap();
    let out = Command::new(AGENT)
        .args(["plugins", "compile"])
        .arg(&off)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(sitewatch_checks::ops::EXIT_CONFIG)),
        "{stderr}"
    );
    assert!(stderr.contains("no cache to compile into"), "{stderr}");
}

/// Issue 14: a plugin call still running when the agent exits (abandoned after the
/// shutdown grace) used to panic with "A Tokio 1.x context was found, but it is being
/// shutdown" as the runtime went away under it. The agent must exit cleanly.
#[test]
fn a_plugin_call_in_flight_at_exit_does_not_panic() {
    let port = serve(vec![Page::ok("/", "hello")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    std::fs::write(
        &config,
        format!(
            "agent:\n  plugin_cache: off\n  shutdown_grace: 500ms\nplugins:\n  nap:\n    path: {}\n    \
             config: {{ mode: sleep }}\n    timeout: 30s\nsites:\n  - name: a\n    \
             url: http://127.0.0.1:{port}/\n    plugins: [nap]\n",
            component("hostile").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let mut child = Command::new(AGENT)
        .arg("--once")
        .arg(&config)
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Wait until the plugin is loaded, then give the check time to reach its call.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("plugin loaded")
    {
        assert!(std::time::Instant::now() < deadline, "agent did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the plugin should still be sleeping"
    );
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "agent did not exit: {}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("panicked"), "{text}");
    assert!(!text.contains("Tokio 1.x context"), "{text}");
    assert_eq!(
        exit.code(),
        Some(i32::from(sitewatch_checks::ops::EXIT_INTERRUPTED)),
        "{text}"
    );
}
