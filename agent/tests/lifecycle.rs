//! The agent binary's start, stop and reload as an operator meets them:
//! - an unreachable broker at start does not hold up the first checks (with a spool);
//! - `--once` honours `agent.shutdown_grace` on SIGTERM, and a second signal exits at once;
//! - SIGHUP (and, with `agent.watch_config`, a changed file) reloads the site list: added
//!   sites start, removed ones stop, changed ones take their new definition, and an
//!   invalid file changes nothing but is logged with its line and counted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use sitewatch_checks::ops::EXIT_INTERRUPTED;
use sitewatch_checks::CheckResult;
use sitewatch_tests::free_port;
use sitewatch_tests::site::{hang, http_get, welcome};

const AGENT: &str = env!("CARGO_BIN_EXE_sitewatch-agent");

/// A running agent (killed when dropped), its stdout lines as results, its log in a file.
struct Agent {
    child: Child,
    results: Receiver<CheckResult>,
    log: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(args: &[&str], config: &Path) -> Agent {
        let log = config.with_extension("log");
        let mut child = Command::new(AGENT)
            .args(args)
            .arg(config)
            .env("RUST_LOG", "info,sitewatch_agent=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, results) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let result: CheckResult = serde_json::from_str(&line).unwrap();
                if tx.send(result).is_err() {
                    break;
                }
            }
        });
        Agent {
            child,
            results,
            log,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit, at most `limit`; the exit code and how long it took.
    fn exit_within(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), start.elapsed());
            }
            assert!(
                start.elapsed() < limit,
                "agent still running after {limit:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Results that arrive within `window`.
    fn results_for(&self, window: Duration) -> Vec<CheckResult> {
        let until = Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok(r) => out.push(r),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return out,
            }
        }
    }

    /// The first result for `site` within `limit`.
    fn wait_for_site(&self, site: &str, limit: Duration) -> CheckResult {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok(r) if r.site == site => return r,
                Ok(_) => {}
                Err(e) => panic!("no result for {site} ({e}); log:\n{}", self.log_text()),
            }
        }
    }
}

fn write(path: &Path, text: &str) {
    // Written beside and renamed over, as editors do: a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A metric's value from `/metrics` at `port`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let text = http_get(&format!("127.0.0.1:{port}"), "/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn with_a_spool_an_unreachable_broker_does_not_delay_the_first_checks() {
    let port = welcome();
    let ops = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    // Nothing listens on the broker's port; asking to create the topic and the start-up
    // probe each wait up to 5 s for it.
    write(
        &config,
        &format!(
            "agent:\n  listen: 127.0.0.1:{ops}\n\
             kafka:\n  brokers: [\"127.0.0.1:{}\"]\n  spool_dir: spool\n  create_topic: {{ partitions: 1 }}\n\
             defaults:\n  interval: 1h\nsites:\n  - name: home\n    url: http://127.0.0.1:{port}/\n",
            free_port()
        ),
    );
    let agent = Agent::start(&[], &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(ops, "sitewatch_checks_total{outcome=\"up\"}").unwrap_or(0.0) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no check; log:\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The check was made before start-up learnt that Kafka is unreachable.
    assert!(
        !agent.log_text().contains("kafka is not reachable yet"),
        "{}",
        agent.log_text()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !agent.log_text().contains("kafka is not reachable yet") {
        assert!(Instant::now() < deadline, "{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric(ops, "sitewatch_spool_backlog").unwrap_or(0.0) >= 1.0);
}

/// `--once` on a quick site and one that never answers (30 s timeout).
fn once_with_a_hanging_site(grace: &str) -> (Agent, tempfile::TempDir) {
    let quick = welcome();
    let (stuck, accepted) = hang();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    write(
        &config,
        &format!(
            "agent:\n  shutdown_grace: {grace}\ndefaults:\n  timeout: 30s\nsites:\n\
             \x20 - name: quick\n    url: http://127.0.0.1:{quick}/\n\
             \x20 - name: stuck\n    url: http://127.0.0.1:{stuck}/\n"
        ),
    );
    let agent = Agent::start(&["--once"], &config);
    accepted
        .recv_timeout(Duration::from_secs(30))
        .expect("the stuck site is being checked");
    (agent, dir)
}

#[test]
fn once_stops_within_the_shutdown_grace_on_sigterm() {
    let (mut agent, _dir) = once_with_a_hanging_site("1s");
    agent.signal("TERM");
    // The grace is 1 s; the stuck check would take 30 s. Loose bound for a busy machine.
    let (code, took) = agent.exit_within(Duration::from_secs(20));
    assert_eq!(
        code,
        Some(i32::from(EXIT_INTERRUPTED)),
        "{}",
        agent.log_text()
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        agent.log_text().contains("abandoning checks"),
        "{}",
        agent.log_text()
    );
    // What was checked is still published.
    let quick = agent.wait_for_site("quick", Duration::from_secs(5));
    assert_eq!(quick.outcome, sitewatch_checks::Outcome::Up);
}

#[test]
fn a_second_signal_exits_at_once() {
    // A grace of 10 minutes: only the second signal can end this run soon.
    let (mut agent, _dir) = once_with_a_hanging_site("10m");
    agent.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    agent.signal("INT");
    let (code, _) = agent.exit_within(Duration::from_secs(20));
    assert_eq!(
        code,
        Some(i32::from(EXIT_INTERRUPTED)),
        "{}",
        agent.log_text()
    );
    assert!(
        agent.log_text().contains("second stop signal"),
        "{}",
        agent.log_text()
    );
}

fn sites_yaml(ops: u16, watch: bool, sites: &[(&str, String)]) -> String {
    let mut yaml = format!(
        "agent:\n  listen: 127.0.0.1:{ops}\n  watch_config: {watch}\ndefaults:\n  interval: 300ms\n  timeout: 5s\nsites:\n"
    );
    for (name, url) in sites {
        yaml.push_str(&format!("  - name: {name}\n    url: {url}\n"));
    }
    yaml
}

#[test]
fn sighup_reloads_sites_and_an_invalid_config_keeps_the_old_one() {
    let port = welcome();
    let ops = free_port();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    write(
        &config,
        &sites_yaml(
            ops,
            false,
            &[("keep", url("/")), ("gone", url("/")), ("moved", url("/"))],
        ),
    );
    let agent = Agent::start(&[], &config);
    for site in ["keep", "gone", "moved"] {
        agent.wait_for_site(site, Duration::from_secs(30));
    }

    write(
        &config,
        &sites_yaml(
            ops,
            false,
            &[
                ("keep", url("/")),
                ("moved", url("/two")),
                ("added", url("/")),
            ],
        ),
    );
    agent.signal("HUP");
    agent.wait_for_site("added", Duration::from_secs(30));
    // Whatever was in flight at the reload has been sent by now.
    let after: Vec<CheckResult> = agent.results_for(Duration::from_secs(2));
    let of = |site: &str| after.iter().filter(|r| r.site == site).collect::<Vec<_>>();
    assert!(of("gone").is_empty(), "a removed site is no longer checked");
    assert!(!of("keep").is_empty() && !of("added").is_empty());
    let moved = of("moved");
    assert!(!moved.is_empty() && moved.iter().all(|r| r.url.ends_with("/two")));
    assert_eq!(metric(ops, "sitewatch_sites"), Some(3.0));
    assert_eq!(
        metric(ops, "sitewatch_config_reload_failures_total"),
        Some(0.0)
    );

    // An invalid config: refused with its line, counted, the old sites go on.
    let before = metric(
        ops,
        "sitewatch_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();
    assert!(before > 1.6e9, "a Unix time: {before}");
    write(
        &config,
        &format!(
            "{}  - name: broken\n    url: {}\n    regex: \"(unclosed\"\n",
            sites_yaml(ops, false, &[("keep", url("/"))]),
            url("/")
        ),
    );
    agent.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(ops, "sitewatch_config_reload_failures_total") != Some(1.0) {
        assert!(Instant::now() < deadline, "{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        metric(ops, "sitewatch_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            ops,
            "sitewatch_config_last_reload_success_timestamp_seconds"
        ),
        Some(before)
    );
    let log = agent.log_text();
    assert!(
        log.contains(&format!("{}:12: sites[1].regex", config.display())),
        "the problem with file:line: {log}"
    );
    let still = agent.results_for(Duration::from_secs(2));
    for site in ["keep", "moved", "added"] {
        assert!(still.iter().any(|r| r.site == site), "{site} still checked");
    }
    assert!(!still.iter().any(|r| r.site == "broken"));
}

#[test]
fn with_watch_config_a_changed_file_is_reloaded() {
    let port = welcome();
    let ops = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    write(&config, &sites_yaml(ops, true, &[("first", url.clone())]));
    let agent = Agent::start(&[], &config);
    agent.wait_for_site("first", Duration::from_secs(30));
    write(
        &config,
        &sites_yaml(ops, true, &[("first", url.clone()), ("second", url)]),
    );
    // The files are looked at every 2 s and a change is acted on once it has settled.
    agent.wait_for_site("second", Duration::from_secs(30));
    assert!(agent.log_text().contains("config files changed"));
}
