//! The `sitewatch-agent` binary as a user runs it: `--once` exit codes and JSON lines,
//! SIGTERM shutdown, `--check-config`, and config errors (exit 78 with file and line).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sitewatch_checks::{CheckResult, ErrorKind, Outcome};

const AGENT: &str = env!("CARGO_BIN_EXE_sitewatch-agent");

use sitewatch_tests::site::welcome as serve;

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("sites.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

fn results(stdout: &[u8]) -> Vec<CheckResult> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a result line: {l}: {e}")))
        .collect()
}

/// A running agent, killed when dropped so a failing test leaves nothing behind.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// The agent running one local site, `home`, every `interval`, results on a piped stdout.
fn run_home_every(dir: &Path, interval: &str) -> Running {
    let port = serve();
    let config = write_config(
        dir,
        &format!("defaults:\n  interval: {interval}\nsites:\n  - name: home\n    url: http://127.0.0.1:{port}/\n"),
    );
    Running(
        Command::new(AGENT)
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn once_prints_one_json_line_per_site_and_exits_1_when_a_site_is_down() {
    let port = serve();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "defaults:\n  regex: Welcome\n  timeout: 5s\nsites:\n  - name: home\n    url: http://127.0.0.1:{port}/\n  - name: broken\n    url: http://127.0.0.1:{port}/error\n    regex: null\n"
        ),
    );
    let out = Command::new(AGENT)
        .arg("--once")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut results = results(&out.stdout);
    results.sort_by(|a, b| a.site.cmp(&b.site));
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].site, "broken");
    assert_eq!(results[0].outcome, Outcome::Down);
    assert_eq!(
        results[0].error.as_ref().unwrap().kind,
        ErrorKind::HttpStatus
    );
    assert_eq!(results[1].site, "home");
    assert_eq!(results[1].outcome, Outcome::Up);
    assert!(results[1].regex.as_ref().unwrap().matched);
}

#[test]
fn once_exits_0_when_every_site_is_up() {
    let port = serve();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("sites:\n  - name: home\n    url: http://127.0.0.1:{port}/\n    regex: Welcome\n"),
    );
    let out = Command::new(AGENT)
        .arg("--once")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(results(&out.stdout).len(), 1);
}

#[test]
fn sigterm_stops_the_agent_cleanly_after_results_were_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = run_home_every(dir.path(), "1s");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: CheckResult = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first.site, "home");
    let second: CheckResult = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let gap = second.started_at - first.started_at;
    assert!(
        (900..=1500).contains(&gap.num_milliseconds()),
        "checks every interval, gap {gap}"
    );
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn a_result_line_is_written_while_the_agent_waits_for_the_next_check() {
    // Lines are gathered for a few ms under load (the timing is unit-tested in
    // `publisher::stdout`); one not followed by another result, the next check being an
    // hour away, must still come out while the agent runs.
    let dir = tempfile::tempdir().unwrap();
    let mut child = run_home_every(dir.path(), "1h");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Generous for a loaded machine: the alternative is an hour, or exit.
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a result line while the agent is running");
    let result: CheckResult = serde_json::from_str(&line).unwrap();
    assert_eq!(result.site, "home");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the agent is still running"
    );
}

#[test]
fn bad_config_exits_78_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "sites:\n  - name: a\n    url: http://127.0.0.1:1/\n  - name: b\n    url: http://127.0.0.1:1/\n    regex: \"(unclosed\"\n",
    );
    let out = Command::new(AGENT)
        .arg("--once")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(sitewatch_checks::ops::EXIT_CONFIG))
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:6", config.display())),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("regex"), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn check_config_prints_resolved_config_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "defaults:\n  interval: 45s\nsites:\n  - name: api\n    url: http://127.0.0.1:1/\n    headers:\n      Authorization: \"Bearer ${SITEWATCH_TEST_TOKEN}\"\n",
    );
    let out = Command::new(AGENT)
        .arg("--check-config")
        .arg(&config)
        .env("SITEWATCH_TEST_TOKEN", "hunter2-secret")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("api"), "stdout: {stdout}");
    assert!(stdout.contains("45s"), "resolved interval shown: {stdout}");
    assert!(
        !stdout.contains("hunter2-secret"),
        "secret leaked: {stdout}"
    );
}

fn http_get(port: u16, path: &str) -> String {
    sitewatch_tests::site::http_get(&format!("127.0.0.1:{port}"), path)
}

#[test]
fn serves_healthz_and_metrics_counting_checks_by_outcome() {
    let port = serve();
    let ops_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "agent:\n  listen: 127.0.0.1:{ops_port}\ndefaults:\n  interval: 1s\nsites:\n  - name: home\n    url: http://127.0.0.1:{port}/\n  - name: broken\n    url: http://127.0.0.1:{port}/error\n"
        ),
    );
    let mut child = Command::new(AGENT)
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        lines.next().unwrap().unwrap();
    }
    let health = http_get(ops_port, "/healthz");
    let metrics = http_get(ops_port, "/metrics");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let count = |outcome: &str| -> u64 {
        let prefix = format!("sitewatch_checks_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(count("up") >= 1, "{metrics}");
    assert!(count("down") >= 1, "{metrics}");
    assert!(
        metrics.contains("sitewatch_check_duration_seconds_count"),
        "{metrics}"
    );
    assert!(metrics.contains("sitewatch_sites 2"), "{metrics}");
}
