//! Fuzzing the site-list loader: mutated YAML (byte-level and token splices) never panics
//! it; every error it reports names the file, a line inside it and a field; whatever it
//! accepts can be printed back.
//!
//! Longer run: `SITEWATCH_FUZZ_SECONDS=300 cargo test --release -p sitewatch-agent --test fuzz_config`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::time::Duration;

use proptest::prelude::*;
use sitewatch_agent::config;
use sitewatch_tests::fuzz::{budget, mutated_bytes, run_for};

const RICH: &str = r#"agent:
  name: fuzz
  location: lab
  max_concurrency: 8
  shutdown_grace: 2s
  listen: 127.0.0.1:9464
  plugin_cache: off
kafka:
  brokers: "127.0.0.1:9092,127.0.0.1:9093"
  topic: checks
  security_protocol: sasl_ssl
  sasl: {mechanism: PLAIN, username: u, password: "${FUZZ_SECRET:-x}"}
  spool_dir: spool
  spool_max_bytes: 16MiB
  properties: {linger.ms: "5"}
plugins:
  fresh:
    path: fresh.wasm
    timeout: 50ms
    max_memory: 8MiB
    config: {max_age: 10m}
defaults: &d
  interval: 30s
  timeout: 5s
  regex: Welcome
  expect_status: [200, "300-308"]
  headers: &h {Authorization: "Bearer t"}
sites:
  - name: a
    url: https://example.invalid/
    headers: *h
  - name: b
    url: http://127.0.0.1:8080/x
    method: POST
    body: "{}"
    regex_absent: "(?i)error"
    degraded_after: 1s
    max_body_bytes: 512KiB
    follow_redirects: 3
    plugins: [fresh, {name: fresh, config: {max_age: 1m}}]
"#;

#[test]
fn fuzzed_site_lists_get_located_errors_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sites.yaml");
    // The plugin file must exist; the loader does not compile it.
    std::fs::write(dir.path().join("fresh.wasm"), b"").unwrap();
    // The demo list without its generated CA file.
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/sites.yaml"
    ))
    .unwrap()
    .lines()
    .filter(|l| !l.trim_start().starts_with("tls_ca:"))
    .collect::<Vec<_>>()
    .join("\n");
    let seeds = [RICH.as_bytes().to_vec(), demo.into_bytes()];
    for seed in &seeds {
        std::fs::write(&path, seed).unwrap();
        if let Err(e) = config::load(std::slice::from_ref(&path)) {
            panic!("seed does not load: {e}");
        }
    }
    let strategy = prop_oneof![
        mutated_bytes(seeds[0].clone()),
        mutated_bytes(seeds[1].clone()),
    ];
    // Loaded; refused by validation (a field named); refused as unreadable or not YAML.
    let counts = std::cell::Cell::new((0u64, 0u64, 0u64));
    run_for(budget(Duration::from_secs(4)), strategy, |yaml| {
        std::fs::write(&path, &yaml).unwrap();
        let lines = yaml.iter().filter(|b| **b == b'\n').count() + 1;
        let (mut loaded, mut validated, mut syntax) = counts.get();
        match config::load(std::slice::from_ref(&path)) {
            Ok(config) => {
                let _ = config::render(&config);
                loaded += 1;
            }
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert_eq!(&e.file, &path);
                    prop_assert!(!e.message.is_empty(), "{}", e);
                    // A field, unless the file as a whole is unreadable or not YAML.
                    prop_assert!(!e.field.is_empty() || e.line.is_some(), "{}", e);
                    if let Some(line) = e.line {
                        // One past the last line: "ended too early" errors point at the end.
                        prop_assert!(
                            (1..=lines + 1).contains(&line),
                            "line {} of {}: {}",
                            line,
                            lines,
                            e
                        );
                    }
                }
                if errors.0.iter().any(|e| !e.field.is_empty()) {
                    validated += 1;
                } else {
                    syntax += 1;
                }
            }
        }
        counts.set((loaded, validated, syntax));
        Ok(())
    });
    // The mutations must get past the YAML parser into validation, or they test little.
    let (loaded, validated, syntax) = counts.get();
    assert!(
        loaded + validated > 100 && syntax > 100,
        "{loaded} loaded, {validated} refused by validation, {syntax} not YAML"
    );
}
