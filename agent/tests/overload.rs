//! An overloaded agent does not blame the sites: results taken while it is behind are
//! marked, healthy sites are not reported down, and the agent says it is overloaded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sitewatch_checks::{CheckResult, Outcome};
use sitewatch_tests::free_port;
use sitewatch_tests::site::{http_get, serve, Page};

/// A site that sends its headers at once and its body after `body_after`.
fn headers_now_body_later(body_after: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n",
                );
                std::thread::sleep(body_after);
                let _ = stream.write_all(b"Welcome");
            });
        }
    });
    port
}

#[tokio::test(flavor = "current_thread")]
async fn time_the_agent_could_not_run_a_check_is_not_held_against_the_site() {
    // Headers at once, the body after 600 ms, a 500 ms timeout: a healthy site. The agent's
    // only thread is taken for 300 ms in between; without allowing for that, the check
    // would time out at 500 ms and report the site down.
    let port = headers_now_body_later(Duration::from_millis(600));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sites.yaml");
    std::fs::write(
        &path,
        format!("sites:\n  - name: s\n    url: http://127.0.0.1:{port}/\n    timeout: 500ms\n"),
    )
    .unwrap();
    let config = sitewatch_agent::config::load(&[path]).unwrap();
    let checker = sitewatch_agent::check::Checker::new(&config.agent);
    let spec = std::sync::Arc::new(config.sites[0].spec.clone());
    let check = tokio::spawn(checker.check(spec, None));
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::thread::sleep(Duration::from_millis(300));
    let r = check.await.unwrap();
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let stall = r.agent_stall_ms.expect("the stall is reported");
    assert!(stall >= 250.0, "{stall}");
}

#[test]
fn a_saturated_concurrency_cap_marks_results_and_reports_no_healthy_site_down() {
    // 12 healthy sites answering in 300 ms, every 500 ms, one check at a time: the agent
    // can do about a quarter of what is asked.
    let port = serve(vec![
        Page::ok("/", "<h1>Welcome</h1>").delayed(Duration::from_millis(300))
    ]);
    let ops = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.yaml");
    let mut yaml = format!(
        "agent:\n  listen: 127.0.0.1:{ops}\n  max_concurrency: 1\n\
         defaults:\n  interval: 500ms\n  timeout: 2s\n  degraded_after: 1s\n  regex: Welcome\nsites:\n"
    );
    for i in 0..12 {
        yaml.push_str(&format!(
            "  - name: s{i}\n    url: http://127.0.0.1:{port}/\n"
        ));
    }
    std::fs::write(&config, yaml).unwrap();
    let log = dir.path().join("agent.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitewatch-agent"))
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut results: Vec<CheckResult> = Vec::new();
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let line = lines.next().unwrap().unwrap();
        results.push(serde_json::from_str(&line).unwrap());
    }
    let health = http_get(&format!("127.0.0.1:{ops}"), "/healthz");
    let metrics = http_get(&format!("127.0.0.1:{ops}"), "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap();

    assert!(results.len() >= 10, "{} results", results.len());
    let not_up: Vec<_> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Up)
        .collect();
    assert!(not_up.is_empty(), "healthy sites reported {not_up:#?}");
    let late = results
        .iter()
        .filter(|r| r.agent_lag_ms.is_some_and(|ms| ms >= 250.0))
        .count();
    assert!(
        late >= results.len() / 2,
        "{late} of {} marked late",
        results.len()
    );
    assert!(
        metrics.contains("sitewatch_agent_overloaded 1"),
        "{metrics}"
    );
    let late_total = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sitewatch_checks_late_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(late_total > 0, "{metrics}");
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(health.contains("overloaded"), "{health}");
    assert!(log.contains("the agent is overloaded"), "{log}");
    assert!(
        log.contains("agent.max_concurrency"),
        "the warning says what to do: {log}"
    );
}
