//! Site-list loading: defaults and overrides, directories, interpolation, and every
//! validation error reported together with its file, line and field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::path::{Path, PathBuf};
use std::time::Duration;

use sitewatch_agent::config::{self, ConfigError};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn errors(paths: &[PathBuf]) -> Vec<ConfigError> {
    match config::load(paths) {
        Ok(_) => panic!("config should be rejected"),
        Err(e) => e.0,
    }
}

/// The error on `field` (exact), panicking with all errors if absent.
fn find<'a>(errs: &'a [ConfigError], field: &str) -> &'a ConfigError {
    errs.iter()
        .find(|e| e.field == field)
        .unwrap_or_else(|| panic!("no error on {field}: {errs:#?}"))
}

const VALID: &str = r#"
agent:
  name: probe-1
  location: eu-west
  max_concurrency: 8
defaults:
  interval: 30s
  timeout: 5s
  expect_status: "200-299"
  regex: Welcome
  headers:
    User-Agent: demo
    X-Team: web
sites:
  - name: home
    url: http://127.0.0.1:18080/
  - name: api
    url: https://127.0.0.1:18443/health
    interval: 2m
    regex: '"ok"'
    regex_absent: maintenance
    expect_status: [200, "300-302", 404]
    headers:
      X-Team: api
    degraded_after: 750ms
    max_body_bytes: 64KiB
    follow_redirects: 3
    method: post
    body: '{"ping": true}'
  - name: no-regex
    url: http://127.0.0.1:18080/error
    regex: null
"#;

#[test]
fn defaults_apply_unless_overridden_or_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::load(&[write(dir.path(), "sites.yaml", VALID)]).unwrap();
    assert_eq!(cfg.agent.name, "probe-1");
    assert_eq!(cfg.agent.location.as_deref(), Some("eu-west"));
    assert_eq!(cfg.agent.max_concurrency, 8);
    assert!(cfg.kafka.is_none());
    let [home, api, bare] = &cfg.sites[..] else {
        panic!("three sites expected")
    };

    let h = &home.spec;
    assert_eq!(h.interval, Duration::from_secs(30));
    assert_eq!(h.timeout, Duration::from_secs(5));
    assert_eq!(h.regex.as_ref().unwrap().as_str(), "Welcome");
    assert!(h.expect_status.contains(204) && !h.expect_status.contains(301));
    assert_eq!(h.headers["x-team"], "web");
    assert_eq!(h.method, http::Method::GET);
    assert_eq!(h.max_body_bytes, 1024 * 1024);
    assert_eq!(h.follow_redirects, 0);

    let a = &api.spec;
    assert_eq!(a.interval, Duration::from_secs(120));
    assert_eq!(a.timeout, Duration::from_secs(5), "timeout from defaults");
    assert_eq!(a.regex.as_ref().unwrap().as_str(), "\"ok\"");
    assert_eq!(a.regex_absent.as_ref().unwrap().as_str(), "maintenance");
    assert!(a.expect_status.contains(301) && a.expect_status.contains(404));
    assert!(!a.expect_status.contains(201));
    assert_eq!(a.headers["x-team"], "api", "site header overrides default");
    assert_eq!(a.headers["user-agent"], "demo", "default header kept");
    assert_eq!(a.degraded_after, Some(Duration::from_millis(750)));
    assert_eq!(a.max_body_bytes, 64 * 1024);
    assert_eq!(a.follow_redirects, 3);
    assert_eq!(a.method, http::Method::POST);
    assert_eq!(a.body.as_deref(), Some(&b"{\"ping\": true}"[..]));

    assert!(
        bare.spec.regex.is_none(),
        "regex: null clears the default regex"
    );
}

#[test]
fn a_directory_loads_every_yaml_file_and_names_are_unique_across_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        "sites:\n  - name: one\n    url: http://127.0.0.1:1/\n",
    );
    write(
        dir.path(),
        "b.yml",
        "sites:\n  - name: two\n    url: http://127.0.0.1:2/\n",
    );
    write(dir.path(), "notes.txt", "not yaml: [");
    let cfg = config::load(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<_> = cfg.sites.iter().map(|s| s.spec.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);

    let other = tempfile::tempdir().unwrap();
    let dup = write(
        other.path(),
        "c.yaml",
        "sites:\n  - name: x\n    url: http://127.0.0.1:3/\n  - name: two\n    url: http://127.0.0.1:4/\n",
    );
    let errs = errors(&[dir.path().to_path_buf(), dup.clone()]);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].file, dup);
    assert_eq!(errs[0].line, Some(4));
    assert!(errs[0].message.contains("duplicate site name `two`"));
    assert!(errs[0].message.contains("b.yml:2"), "{}", errs[0].message);
}

#[test]
fn environment_interpolation_with_defaults_and_missing_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("SITEWATCH_CFG_TEST_HOST", "127.0.0.1");
    let ok = write(
        dir.path(),
        "ok.yaml",
        "sites:\n  - name: a\n    url: http://${SITEWATCH_CFG_TEST_HOST}:${SITEWATCH_CFG_TEST_PORT:-8081}/\n",
    );
    let cfg = config::load(&[ok]).unwrap();
    assert_eq!(cfg.sites[0].spec.url.as_str(), "http://127.0.0.1:8081/");

    let bad = write(
        dir.path(),
        "bad.yaml",
        "sites:\n  - name: a\n    url: http://127.0.0.1/\n    headers:\n      Authorization: ${SITEWATCH_CFG_TEST_UNSET}\n",
    );
    let errs = errors(&[bad]);
    assert_eq!(errs[0].line, Some(5));
    assert!(errs[0].message.contains("SITEWATCH_CFG_TEST_UNSET"));
}

#[test]
fn every_problem_is_reported_at_once_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.yaml",
        r#"defaults:
  interval: 30s
sites:
  - name: bad-url
    url: "not a url"
  - name: bad-interval
    url: http://127.0.0.1/
    interval: soon
  - name: bad-regex
    url: http://127.0.0.1/
    regex: "(unclosed"
  - name: unknown-key
    url: http://127.0.0.1/
    intervall: 5s
  - url: http://127.0.0.1/nameless
  - name: bad-status
    url: http://127.0.0.1/
    expect_status: "600"
  - name: ftp
    url: ftp://127.0.0.1/
  - name: bad-plugin
    url: http://127.0.0.1/
    plugins: [nope]
  - name: bad-ca
    url: https://127.0.0.1/
    tls_ca: missing-ca.pem
"#,
    );
    let errs = errors(std::slice::from_ref(&file));
    assert!(errs.iter().all(|e| e.file == file));
    let expect = [
        ("sites[0].url", 5, "not a valid URL"),
        ("sites[1].interval", 8, "not a duration"),
        ("sites[2].regex", 11, "invalid regular expression"),
        ("sites[3].intervall", 14, "unknown field `intervall`"),
        ("sites[4].name", 15, "missing"),
        ("sites[5].expect_status", 18, "600"),
        ("sites[6].url", 20, "only http and https"),
        ("sites[8].tls_ca", 26, "missing-ca.pem"),
    ];
    for (field, line, text) in expect {
        let e = find(&errs, field);
        assert_eq!(e.line, Some(line), "{field}: {e:?}");
        assert!(e.message.contains(text), "{field}: {}", e.message);
    }
    let plugin = errs
        .iter()
        .find(|e| e.message.contains("plugin `nope` is not declared"))
        .unwrap_or_else(|| panic!("{errs:#?}"));
    assert_eq!(plugin.line, Some(23));
    assert_eq!(errs.len(), expect.len() + 1, "{errs:#?}");
    // The rendered report names file:line for each.
    let report = config::ConfigErrors(errs).to_string();
    assert!(report.contains(&format!("{}:11: sites[2].regex", file.display())));
}

#[test]
fn bad_defaults_point_at_the_defaults_block() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "d.yaml",
        "defaults:\n  timeout: 0s\n  regex: '['\n  url: http://x/\nsites:\n  - name: a\n    url: http://127.0.0.1/\n",
    );
    let errs = errors(&[file]);
    assert_eq!(find(&errs, "defaults.url").line, Some(4));
    assert_eq!(find(&errs, "sites[0].timeout").line, Some(2));
    assert_eq!(find(&errs, "sites[0].regex").line, Some(3));
}

#[test]
fn syntax_errors_and_unknown_top_level_keys_have_lines() {
    let dir = tempfile::tempdir().unwrap();
    let syntax = write(
        dir.path(),
        "s.yaml",
        "sites:\n  - name: a\n    url: [unclosed\n",
    );
    let errs = errors(&[syntax]);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].line.is_some(), "{errs:?}");

    let unknown = write(dir.path(), "u.yaml", "sites: []\nsitez:\n  - name: a\n");
    let errs = errors(&[unknown]);
    assert_eq!(errs[0].line, Some(2), "{errs:?}");
    assert!(errs[0].message.contains("sitez"));
}

#[test]
fn plugins_resolve_paths_and_merge_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.wasm"), b"\0asm").unwrap();
    let file = write(
        dir.path(),
        "p.yaml",
        r#"plugins:
  fields:
    path: p.wasm
    timeout: 50ms
    max_memory: 16MiB
    config: { path: status, equals: ok }
defaults:
  plugins: [fields]
sites:
  - name: a
    url: http://127.0.0.1/
  - name: b
    url: http://127.0.0.1/
    plugins:
      - name: fields
        config: { equals: green }
"#,
    );
    let cfg = config::load(&[file]).unwrap();
    let decl = &cfg.plugins["fields"];
    assert!(decl.path.is_absolute() && decl.path.ends_with("p.wasm"));
    assert_eq!(decl.timeout, Some(Duration::from_millis(50)));
    assert_eq!(decl.max_memory, Some(16 << 20));
    assert_eq!(cfg.sites[0].plugins[0].config["equals"], "ok");
    assert_eq!(cfg.sites[1].plugins[0].config["equals"], "green");
    assert_eq!(cfg.sites[1].plugins[0].config["path"], "status");
}

#[test]
fn render_masks_interpolated_secrets_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("SITEWATCH_CFG_TEST_TOKEN", "tok-9f8e7d");
    std::env::set_var("SITEWATCH_CFG_TEST_PASS", "kafka-pw-123");
    let file = write(
        dir.path(),
        "r.yaml",
        r#"kafka:
  brokers: "127.0.0.1:9092, 127.0.0.1:9093"
  security_protocol: sasl_ssl
  sasl: { mechanism: SCRAM-SHA-256, username: svc, password: "${SITEWATCH_CFG_TEST_PASS}" }
sites:
  - name: a
    url: http://127.0.0.1/?key=${SITEWATCH_CFG_TEST_TOKEN}
    headers:
      Cookie: literal-cookie-value
"#,
    );
    let cfg = config::load(&[file]).unwrap();
    assert_eq!(
        cfg.kafka.as_ref().unwrap().brokers,
        ["127.0.0.1:9092", "127.0.0.1:9093"]
    );
    let text = config::render(&cfg);
    assert!(!text.contains("tok-9f8e7d"), "{text}");
    assert!(!text.contains("kafka-pw-123"), "{text}");
    assert!(!text.contains("literal-cookie-value"), "{text}");
    assert!(text.contains("output: kafka"), "{text}");
    assert!(text.contains("name: a"), "{text}");
}

#[test]
fn sites_with_the_same_pattern_share_one_compiled_regex() {
    // 10,000 separate copies of the default pattern cost ~50 MiB; one shared costs nothing.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::load(&[write(
        dir.path(),
        "sites.yaml",
        "defaults:\n  regex: Welcome\nsites:\n  - name: a\n    url: http://127.0.0.1:1/\n  - name: b\n    url: http://127.0.0.1:2/\n  - name: c\n    url: http://127.0.0.1:3/\n    regex: Other\n",
    )])
    .unwrap();
    let re = |i: usize| cfg.sites[i].spec.regex.clone().unwrap();
    assert!(std::sync::Arc::ptr_eq(&re(0), &re(1)));
    assert!(!std::sync::Arc::ptr_eq(&re(0), &re(2)));
    assert_eq!(re(2).as_str(), "Other");
}

#[test]
fn the_spool_resolves_next_to_the_file_and_bad_settings_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let site = "sites:\n  - name: a\n    url: http://127.0.0.1/\n";
    let kafka = |extra: &str| format!("kafka:\n  brokers: [\"127.0.0.1:9092\"]\n{extra}{site}");

    let path = write(
        dir.path(),
        "on.yaml",
        &kafka("  spool_dir: spool\n  spool_max_bytes: 64MiB\n"),
    );
    let spool = config::load(&[path]).unwrap().kafka.unwrap().spool.unwrap();
    assert_eq!(spool.dir, dir.path().join("spool"));
    assert_eq!(spool.max_bytes, 64 << 20);

    let path = write(dir.path(), "off.yaml", &kafka("  spool_dir: off\n"));
    assert!(config::load(&[path])
        .unwrap()
        .kafka
        .unwrap()
        .spool
        .is_none());

    let path = write(
        dir.path(),
        "small.yaml",
        &kafka("  spool_dir: spool\n  spool_max_bytes: 1000\n"),
    );
    let errs = errors(std::slice::from_ref(&path));
    let e = find(&errs, "kafka.spool_max_bytes");
    assert_eq!((e.file.clone(), e.line), (path, Some(4)));
    assert!(e.message.contains("at least 1MiB"), "{}", e.message);
}

#[test]
fn site_names_that_cannot_be_database_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = "n".repeat(201);
    let path = write(
        dir.path(),
        "names.yaml",
        &format!("sites:\n  - name: {long}\n    url: http://127.0.0.1/\n  - name: \"a\\tb\"\n    url: http://127.0.0.1/\n"),
    );
    let errs = errors(&[path]);
    assert!(
        errs.iter().any(|e| e.field == "sites[0].name"
            && e.line == Some(2)
            && e.message.contains("at most 200")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.field == "sites[1].name" && e.message.contains("control characters")),
        "{errs:#?}"
    );
}
