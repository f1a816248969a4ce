//! Plugin configuration as a plugin author meets it (issue 14, item 5): values of
//! any scalar type, limits refused outside their range, effective defaults shown by
//! `--check-config`, the agent-wide memory budget, and every component problem
//! reported with the config file, line and field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::path::{Path, PathBuf};
use std::process::Command;

use sitewatch_agent::config::{self, ConfigError};
use sitewatch_checks::ops::EXIT_CONFIG;
use sitewatch_checks::CheckResult;
use sitewatch_tests::plugins::{component, component_importing, script_component, Language};
use sitewatch_tests::site::{serve, Page};

const AGENT: &str = env!("CARGO_BIN_EXE_sitewatch-agent");

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `sitewatch-agent --check-config FILE`: exit code, stdout, stderr.
fn check_config(file: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(AGENT)
        .arg("--check-config")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The config error reported for `file` as `sitewatch-agent --check-config` prints it.
fn refused(file: &Path) -> String {
    let (code, _, stderr) = check_config(file);
    assert_eq!(code, Some(i32::from(EXIT_CONFIG)), "{stderr}");
    stderr
}

fn errors(file: &Path) -> Vec<ConfigError> {
    match config::load(&[file.to_path_buf()]) {
        Ok(_) => panic!("config should be rejected"),
        Err(e) => e.0,
    }
}

fn find<'a>(errs: &'a [ConfigError], field: &str) -> &'a ConfigError {
    errs.iter()
        .find(|e| e.field == field)
        .unwrap_or_else(|| panic!("no error on {field}: {errs:#?}"))
}

/// `plugins:` with one plugin `p` at `path` plus `extra` lines, used by one site.
fn one_plugin(path: &Path, extra: &str) -> String {
    format!(
        "plugins:\n  p:\n    path: {}\n{extra}sites:\n  - name: a\n    url: http://127.0.0.1:9/\n    plugins: [p]\n",
        path.display()
    )
}

#[test]
fn numbers_and_booleans_in_plugin_config_are_passed_as_text() {
    let port = serve(vec![Page::ok("/", "hello")]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sites.yaml",
        &format!(
            "plugins:\n  echo:\n    path: {}\n    config: {{ mode: echo, max: 50, strict: true, ratio: 1.5 }}\n\
             sites:\n  - name: a\n    url: http://127.0.0.1:{port}/\n    \
             plugins: [{{ name: echo, config: {{ max: 10, off: false }} }}]\n",
            component("hostile").display()
        ),
    );
    let cfg = config::load(std::slice::from_ref(&file)).unwrap();
    let merged = &cfg.sites[0].plugins[0].config;
    let get = |k: &str| merged[k].as_str();
    assert_eq!(
        (get("max"), get("strict"), get("ratio"), get("off")),
        ("10", "true", "1.5", "false")
    );
    // The plugin sees them as text.
    let out = Command::new(AGENT)
        .arg("--once")
        .arg(&file)
        .output()
        .unwrap();
    let r: CheckResult = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let label = |k: &str| {
        r.plugins[0]
            .labels
            .iter()
            .find(|l| l.key == k)
            .map(|l| l.value.clone())
    };
    assert_eq!(label("config:max").as_deref(), Some("10"), "{r:?}");
    assert_eq!(label("config:strict").as_deref(), Some("true"), "{r:?}");

    // A list or a map is not a value a plugin can be given.
    let bad = write(
        dir.path(),
        "bad.yaml",
        &one_plugin(
            &component("hostile"),
            "    config:\n      mode: echo\n      hosts: [a, b]\n",
        ),
    );
    let e = find(&errors(&bad), "plugins.p.config.hosts").clone();
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("text, a number or true/false"), "{e}");
}

#[test]
fn a_directory_a_core_module_and_another_contract_version_are_named_at_path() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused(&write(dir.path(), "dir.yaml", &one_plugin(dir.path(), "")));
    assert!(stderr.contains("dir.yaml:3: plugins.p.path"), "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert!(!stderr.contains("does not exist"), "{stderr}");

    let core = write(dir.path(), "core.wasm", "\0asm\x01\0\0\0");
    let stderr = refused(&write(dir.path(), "core.yaml", &one_plugin(&core, "")));
    assert!(stderr.contains("core.yaml:3: plugins.p.path"), "{stderr}");
    assert!(
        stderr.contains("build it as a component (Rust: cargo build --target wasm32-wasip2"),
        "{stderr}"
    );

    let old = dir.path().join("old.wasm");
    std::fs::write(&old, component_importing(&["sitewatch:check/log@0.2.0"])).unwrap();
    let stderr = refused(&write(dir.path(), "old.yaml", &one_plugin(&old, "")));
    assert!(stderr.contains("old.yaml:3: plugins.p.path"), "{stderr}");
    assert!(
        stderr.contains(
            "built against sitewatch:check@0.2.0, this agent provides sitewatch:check@0.1.0"
        ),
        "{stderr}"
    );
}

#[test]
fn a_max_memory_below_what_the_component_needs_points_at_max_memory() {
    let dir = tempfile::tempdir().unwrap();
    let python = script_component(Language::Python, "api-contract");
    let file = write(
        dir.path(),
        "sites.yaml",
        &one_plugin(&python, "    timeout: 1s\n    max_memory: 4MiB\n"),
    );
    let stderr = refused(&file);
    assert!(
        stderr.contains("sites.yaml:5: plugins.p.max_memory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("max_memory is 4 MiB") && stderr.contains("raise max_memory"),
        "{stderr}"
    );
}

#[test]
fn limits_outside_their_range_are_refused_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = component("json-field");
    let file = write(
        dir.path(),
        "sites.yaml",
        &one_plugin(&wasm, "    timeout: 0s\n    max_memory: 4GiB\n"),
    );
    let errs = errors(&file);
    let t = find(&errs, "plugins.p.timeout");
    assert_eq!(t.line, Some(4), "{t}");
    assert!(t.message.contains("between 1ms and 1m"), "{t}");
    let m = find(&errs, "plugins.p.max_memory");
    assert_eq!(m.line, Some(5), "{m}");
    assert!(m.message.contains("between 1 MiB and 1 GiB"), "{m}");

    let file = write(
        dir.path(),
        "small.yaml",
        &one_plugin(&wasm, "    timeout: 1h\n    max_memory: 10KiB\n"),
    );
    let errs = errors(&file);
    assert!(find(&errs, "plugins.p.timeout").message.contains("between"));
    assert!(find(&errs, "plugins.p.max_memory")
        .message
        .contains("between"));
}

#[test]
fn check_config_prints_the_effective_limits_and_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sites.yaml",
        &format!(
            "agent:\n  plugin_cache: off\n{}",
            one_plugin(&component("json-field"), "")
        ),
    );
    let (code, stdout, stderr) = check_config(&file);
    assert_eq!(code, Some(0), "{stderr}");
    let rendered: serde_yaml::Value = serde_yaml::from_str(&stdout).unwrap();
    let p = &rendered["plugins"]["p"];
    assert_eq!(p["timeout"].as_str(), Some("100ms"), "{stdout}");
    assert_eq!(p["max_memory"].as_str(), Some("64 MiB"), "{stdout}");
    assert_eq!(
        rendered["agent"]["plugin_memory_total"].as_str(),
        Some("1 GiB"),
        "{stdout}"
    );
}

#[test]
fn a_plugin_larger_than_the_memory_budget_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sites.yaml",
        &format!(
            "agent:\n  plugin_memory_total: 32MiB\n{}",
            one_plugin(&component("json-field"), "    max_memory: 64MiB\n")
        ),
    );
    let e = find(&errors(&file), "plugins.p.max_memory").clone();
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("agent.plugin_memory_total"), "{e}");

    let file = write(
        dir.path(),
        "zero.yaml",
        "agent:\n  plugin_memory_total: 0\nsites: []\n",
    );
    let e = find(&errors(&file), "agent.plugin_memory_total").clone();
    assert_eq!(e.line, Some(2), "{e}");
}
