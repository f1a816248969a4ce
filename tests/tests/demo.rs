//! The first README command, `scripts/demo`, run for a short while with a private
//! PostgreSQL cluster: it exits 0, its report shows every demo site with the outcome
//! its scenario implies, and nothing it started is left running.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use sitewatch_tests::plugins::repo_root;

/// Processes the demo starts, by a fragment of their command line.
const STARTED: [&str; 6] = [
    "demo-sites",
    "tansu",
    "sitewatch-demo-pg",
    "sitewatch-agent",
    "sitewatch-sink",
    ".build/demo/pg",
];

fn demo_processes() -> BTreeSet<(u32, String)> {
    let out = Command::new("ps")
        .args(["-eo", "pid=,args="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (pid, args) = l.trim().split_once(' ')?;
            let pid: u32 = pid.parse().ok()?;
            STARTED
                .iter()
                .any(|p| args.contains(p))
                .then(|| (pid, args.to_string()))
        })
        .collect()
}

#[test]
fn the_demo_runs_the_whole_pipeline_and_reports_every_scenario() {
    let before = demo_processes();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/demo"))
        .args(["--duration", "12", "--private-db", "--report-json"])
        .arg(&report)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stderr}\n{stdout}");
    assert!(stdout.contains("sitewatch report:"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let outcomes: BTreeMap<String, String> = report["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("healthy", "up"),
        ("slow", "degraded"),
        ("server-error", "down"),
        ("content-changed", "down"),
        ("refused", "down"),
        ("redirected", "up"),
        ("https", "up"),
        ("api-queue", "up"),
        ("api-queue-strict", "down"),
        ("missing-csp", "degraded"),
        ("weather-fresh", "up"),
        ("weather-stale", "down"),
    ];
    for (site, outcome) in expected {
        assert_eq!(
            outcomes.get(site).map(String::as_str),
            Some(outcome),
            "{site} in {outcomes:?}"
        );
    }
    // Flapping alternates every 10 s: either is right, but it must be there.
    assert!(matches!(
        outcomes.get("flapping").map(String::as_str),
        Some("up" | "down")
    ));
    assert_eq!(outcomes.len(), expected.len() + 1, "{outcomes:?}");

    let left: Vec<_> = demo_processes().difference(&before).cloned().collect();
    assert!(left.is_empty(), "left running: {left:?}");
}
