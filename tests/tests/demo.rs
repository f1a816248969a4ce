//! The first README command, `scripts/demo`, run for a short while with a private
//! PostgreSQL cluster: it exits 0, its report shows every demo site with the verdict its
//! scenario implies from three locations (a regional fault seen from ap only is degraded;
//! sites down everywhere have an open incident, and their triggers reached the demo's webhook
//! receiver), it served the web pages at the address it
//! printed, and nothing it started is left running.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use sitewatch_tests::plugins::repo_root;

/// Set in the demo's environment: every process it starts inherits it, also one left
/// behind and re-parented, while other tests' agents and brokers on the machine lack it.
const MARK: &str = "SITEWATCH_DEMO_TEST_MARK";

/// Live processes (pid, command line) whose environment holds `MARK=mark`.
fn marked_processes(mark: &str) -> BTreeSet<(u32, String)> {
    let needle = format!("{MARK}={mark}");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes that exit meanwhile, or are not ours to read, are skipped.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.insert((pid, args.trim().to_string()));
        }
    }
    found
}

#[test]
fn the_demo_runs_the_whole_pipeline_and_reports_every_scenario() {
    let mark = uuid::Uuid::now_v7().simple().to_string();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/demo"))
        .args(["--duration", "20", "--private-db", "--report-json"])
        .arg(&report)
        .env_remove("DATABASE_URL")
        .env(MARK, &mark)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stderr}\n{stdout}");
    assert!(stdout.contains("sitewatch report:"), "{stdout}");
    assert!(
        stderr.contains("== web pages on http://127.0.0.1:"),
        "{stderr}"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let sites = report["sites"].as_array().unwrap();
    let site = |name: &str| sites.iter().find(|s| s["name"] == name).unwrap();
    let outcomes: BTreeMap<String, String> = sites
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap().to_string(),
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
        ("regional", "degraded"),
    ];
    for (site, outcome) in expected {
        assert_eq!(
            outcomes.get(site).map(String::as_str),
            Some(outcome),
            "{site} in {outcomes:?}"
        );
    }
    // Flapping alternates every 10 s: any verdict is right, but it must be there.
    assert!(matches!(
        outcomes.get("flapping").map(String::as_str),
        Some("up" | "degraded" | "down")
    ));
    assert_eq!(outcomes.len(), expected.len() + 1, "{outcomes:?}");

    // The quorum verdict: ap fails, eu and us pass.
    let regional = site("regional");
    let states: BTreeMap<&str, &str> = regional["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([("ap", "failing"), ("eu", "passing"), ("us", "passing")])
    );
    assert!(regional["open_incident"].is_null());
    // Down everywhere: an incident open, every location in it.
    let incident = &site("server-error")["open_incident"];
    assert_eq!(incident["locations"], serde_json::json!(["ap", "eu", "us"]));
    assert!(
        stdout.contains("open incidents:")
            && stdout.contains("1 of 3 locations failing (quorum 2)"),
        "{stdout}"
    );

    // Incidents went to the demo's webhook receiver: a trigger for each site down
    // everywhere, none for the regional fault.
    let received = stdout
        .split("demo webhook received ")
        .nth(1)
        .unwrap_or_else(|| panic!("no notifications printed: {stdout}"));
    for site in ["server-error", "content-changed", "refused"] {
        assert!(
            received
                .lines()
                .any(|l| l.trim_start().starts_with("trigger") && l.contains(site)),
            "{site}: {received}"
        );
    }
    assert!(!received.contains("regional"), "{received}");

    let left = marked_processes(&mark);
    assert!(left.is_empty(), "left running: {left:?}");
}
