//! `sitewatch-sink report` against real PostgreSQL: per-site figures over the window,
//! recent changes, the table and the `--json` output of the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use chrono::{Duration, DurationRound, SubsecRound, Utc};
use sitewatch_checks::schema::CheckError;
use sitewatch_checks::{ErrorKind, Outcome};
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{write_batch, Batch, Row};
use sitewatch_sink::report::{self, Source};
use sitewatch_sink::retention::Retention;
use sitewatch_tests::fixtures::result;
use support::TestDb;

fn row(offset: i64, site: &str, outcome: Outcome, minutes_ago: i64, total_ms: f64) -> Row {
    let mut r = result(site);
    r.outcome = outcome;
    r.started_at = (Utc::now() - Duration::minutes(minutes_ago)).trunc_subsecs(3);
    r.timings_ms.total = total_ms;
    if outcome == Outcome::Down {
        r.error = Some(CheckError {
            kind: ErrorKind::HttpStatus,
            message: "expected 200-399, got 503".into(),
        });
    }
    Row::new(0, offset, r)
}

async fn filled() -> TestDb {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();
    let rows = vec![
        row(0, "steady", Outcome::Up, 30, 10.0),
        row(1, "steady", Outcome::Up, 20, 20.0),
        row(2, "steady", Outcome::Up, 10, 30.0),
        row(3, "flaky", Outcome::Up, 30, 5.0),
        row(4, "flaky", Outcome::Down, 20, 7.0),
        row(5, "flaky", Outcome::Up, 10, 6.0),
        row(6, "gone", Outcome::Down, 180, 1.0),
        // Down for 20 minutes (two down checks confirm it), then up: one incident, resolved.
        row(7, "recovered", Outcome::Up, 50, 5.0),
        row(8, "recovered", Outcome::Down, 40, 5.0),
        row(9, "recovered", Outcome::Down, 30, 5.0),
        row(10, "recovered", Outcome::Up, 20, 5.0),
        // Down now: an open incident.
        row(11, "broken", Outcome::Down, 15, 5.0),
        row(12, "broken", Outcome::Down, 5, 5.0),
    ];
    write_batch(
        &mut client,
        &Batch {
            rows,
            rejected: Vec::new(),
            catalog: Vec::new(),
        },
    )
    .await
    .unwrap();
    db
}

#[tokio::test]
async fn the_report_summarises_each_site_over_the_window() {
    let db = filled().await;
    let client = db.client().await;
    let r = report::load(&client, Utc::now() - Duration::hours(1))
        .await
        .unwrap();
    let names: Vec<&str> = r.sites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["broken", "flaky", "gone", "recovered", "steady"]);

    let steady = &r.sites[4];
    assert_eq!((steady.outcome.as_str(), steady.checks), ("up", 3));
    assert_eq!(steady.verdict, "up");
    assert_eq!(steady.uptime_pct, Some(100.0));
    assert_eq!(steady.p50_ms, Some(20.0));
    assert!(steady.last_error.is_none());
    assert!(
        steady.events.is_empty(),
        "a first verdict of up is no event"
    );
    assert_eq!(steady.locations.len(), 1);
    assert_eq!(
        (
            steady.locations[0].name.as_str(),
            steady.locations[0].state.as_str()
        ),
        ("test", "passing")
    );

    let flaky = &r.sites[1];
    assert_eq!(flaky.verdict, "up", "one down check is below the threshold");
    assert_eq!((flaky.checks, flaky.down), (3, 1));
    assert!((flaky.uptime_pct.unwrap() - 66.666).abs() < 0.01);
    assert_eq!(
        flaky.last_error.as_deref(),
        Some("expected 200-399, got 503")
    );
    assert_eq!(flaky.last_error_kind.as_deref(), Some("http_status"));
    assert!(flaky.events.is_empty());

    // Outside the window: known, its one check down, not judged yet (no second check).
    let gone = &r.sites[2];
    assert_eq!((gone.outcome.as_str(), gone.checks), ("down", 0));
    assert_eq!(
        (gone.verdict.as_str(), gone.locations[0].state.as_str()),
        ("unknown", "pending")
    );
    assert_eq!(gone.uptime_pct, None);
    assert!(gone.events.is_empty());

    let recovered = &r.sites[3];
    assert_eq!(recovered.verdict, "up");
    assert_eq!(recovered.incidents, 1);
    assert!(recovered.open_incident.is_none());
    assert_eq!(
        recovered.mttr_seconds,
        Some(1200.0),
        "from the first down check to recovery"
    );
    let changes: Vec<(&str, Option<&str>, &str)> = recovered
        .events
        .iter()
        .map(|e| (e.kind.as_str(), e.previous.as_deref(), e.new.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("verdict", Some("up"), "down"),
            ("verdict", Some("down"), "up")
        ]
    );

    let broken = &r.sites[0];
    assert_eq!(broken.verdict, "down");
    let incident = broken.open_incident.as_ref().unwrap();
    assert_eq!(incident.locations, ["test"]);
    assert_eq!(
        incident.first_error.as_deref(),
        Some("http_status: expected 200-399, got 503")
    );
    assert_eq!(r.mttr_seconds, Some(1200.0));

    let text = report::text(&r);
    let steady_line = text.lines().find(|l| l.starts_with("steady")).unwrap();
    assert!(
        steady_line.contains("100.0%") && steady_line.contains("20.0"),
        "{text}"
    );
    let flaky_line = text.lines().find(|l| l.starts_with("flaky")).unwrap();
    assert!(
        flaky_line.contains("66.7%") && flaky_line.contains("http_status: expected"),
        "{text}"
    );
    assert!(text.contains("verdict: up -> down"), "{text}");
    let broken_line = text.lines().find(|l| l.starts_with("broken")).unwrap();
    assert!(
        broken_line.contains("down") && broken_line.contains("test:failing"),
        "{text}"
    );
    let recovered_line = text.lines().find(|l| l.starts_with("recovered")).unwrap();
    assert!(recovered_line.contains("20m 0s"), "MTTR: {text}");
    assert!(
        text.contains("open incidents:") && text.contains("broken"),
        "{text}"
    );
}

#[tokio::test]
async fn the_binary_prints_json_for_scripts() {
    let db = filled().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
        .args(["report", "--since", "4h", "--json"])
        .env("SITEWATCH_DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sites = v["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 5);
    assert_eq!(sites[0]["verdict"], "down");
    assert_eq!(sites[0]["open_incident"]["locations"][0], "test");
    let gone = sites.iter().find(|s| s["name"] == "gone").unwrap();
    assert_eq!(gone["checks"], 1, "a 4h window includes its check");
    assert_eq!(gone["uptime_pct"], 0.0);
}

#[tokio::test]
async fn long_windows_are_read_from_rollups_and_outlive_raw_results() {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();
    // Every 30 minutes for 30 days; every fifth check down; total times 100 … 400 ms.
    let now = Utc::now().trunc_subsecs(3);
    let rows: Vec<Row> = (0..1440)
        .map(|i| {
            let outcome = if i % 5 == 0 {
                Outcome::Down
            } else {
                Outcome::Up
            };
            let mut row = row(i, "long", outcome, 0, 100.0 * (1 + i % 4) as f64);
            row.result.started_at = now - Duration::minutes(30 * (1440 - i));
            row
        })
        .collect();
    write_batch(
        &mut client,
        &Batch {
            rows,
            rejected: Vec::new(),
            catalog: Vec::new(),
        },
    )
    .await
    .unwrap();
    // Raw results older than 14 days go.
    sitewatch_sink::retention::apply(
        &mut client,
        &Retention {
            raw_days: 14,
            hourly_days: 180,
            daily_days: None,
        },
        now.date_naive(),
    )
    .await
    .unwrap();
    let raw: i64 = client
        .query_one("SELECT count(*) FROM results", &[])
        .await
        .unwrap()
        .get(0);
    assert!(raw < 15 * 48, "raw results were dropped ({raw} left)");

    let r = report::load(&client, now - Duration::days(40))
        .await
        .unwrap();
    assert_eq!(r.source, Source::DailyRollups);
    assert_eq!(
        r.since,
        (now - Duration::days(40))
            .duration_trunc(Duration::days(1))
            .unwrap()
    );
    let long = &r.sites[0];
    assert_eq!(
        (long.checks, long.down),
        (1440, 288),
        "every check, dropped raw or not"
    );
    assert_eq!(long.uptime_pct, Some(80.0));
    // Each down check covers the 30 minutes since the one before (the first covers none).
    assert_eq!(long.down_seconds, Some(287.0 * 1800.0));
    for (got, exact) in [
        (long.p50_ms, 200.0),
        (long.p95_ms, 400.0),
        (long.p99_ms, 400.0),
    ] {
        let got = got.unwrap();
        assert!((got - exact).abs() / exact <= 0.021, "{got} vs {exact}");
    }

    // Three days: hourly rollups, from the hour.
    let r = report::load(&client, now - Duration::days(3))
        .await
        .unwrap();
    assert_eq!(r.source, Source::HourlyRollups);
    assert!(
        (144..=146).contains(&r.sites[0].checks),
        "{}",
        r.sites[0].checks
    );
    // A day: raw results, exact.
    let r = report::load(&client, now - Duration::hours(24))
        .await
        .unwrap();
    assert_eq!((r.source, r.sites[0].checks), (Source::Results, 48));
    assert_eq!(r.sites[0].down_seconds, None);
    let text = report::text(&r);
    assert!(text.contains("(from raw results)"), "{text}");
}

#[test]
fn the_source_follows_the_window_and_the_raw_retention() {
    let now = Utc::now();
    let day_ago = now - Duration::hours(23);
    assert_eq!(
        report::source_for(day_ago, now, None),
        (Source::Results, day_ago)
    );
    let cut = now.date_naive();
    assert_eq!(
        report::source_for(day_ago, now, Some(cut)).0,
        Source::HourlyRollups
    );
    assert_eq!(
        report::source_for(now - Duration::days(7), now, None).0,
        Source::HourlyRollups
    );
    assert_eq!(
        report::source_for(now - Duration::days(8), now, None).0,
        Source::DailyRollups
    );
}
