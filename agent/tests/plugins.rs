//! The agent binary with WebAssembly plugins from `examples/plugins/`: verdicts set
//! the site's outcome, a hostile plugin costs only its own check, and an unusable
//! component is a config error naming the file and line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::process::Command;

use sitewatch_checks::schema::PluginOutcome;
use sitewatch_checks::{CheckResult, ErrorKind, Outcome};
use sitewatch_tests::plugins::component;
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
    assert!(stderr.contains("junk.wasm"), "{stderr}");
}
