//! The alerting command line, through the `sitewatch-sink` binary against a real
//! PostgreSQL: `silence` makes, lists and expires silences; `alerts test CHANNEL` delivers
//! a test notification to a local receiver and reports a refusing one; a config file with
//! mistakes stops the sink with every mistake (file, line, field) and exit code 78.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::process::{Command, Output};

use sitewatch_sink::migrations;
use sitewatch_tests::receiver::Receiver;
use support::TestDb;

fn sink(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
        .env("SITEWATCH_DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn silences_are_made_listed_and_expired() {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();

    let out = sink(
        &db,
        &[
            "silence",
            "tag:payments",
            "--for",
            "30m",
            "--reason",
            "deploy",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("silence 1 for tag:payments until "),
        "{stdout}"
    );
    assert!(sink(&db, &["silence", "shop", "--for", "1h"])
        .status
        .success());

    let out = sink(&db, &["silence", "list"]);
    let (stdout, _) = text(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("2\tshop\t") && lines[0].contains("\tactive"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("1\ttag:payments\t") && lines[1].ends_with("\tactive\tdeploy"),
        "{stdout}"
    );
    let ends: chrono::DateTime<chrono::Utc> = client
        .query_one(
            "SELECT ends_at - interval '30 minutes' FROM silences WHERE id = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!((chrono::Utc::now() - ends).num_seconds().abs() < 60);

    assert!(sink(&db, &["silence", "expire", "1"]).status.success());
    let (stdout, _) = text(&sink(&db, &["silence", "list"]));
    assert!(
        stdout.contains("\ttag:payments\t") && stdout.contains("\texpired "),
        "{stdout}"
    );
    let again = sink(&db, &["silence", "expire", "1"]);
    assert!(
        !again.status.success(),
        "an expired silence cannot be expired again"
    );

    let bad = sink(&db, &["silence", "tag:", "--for", "30m"]);
    assert_eq!(bad.status.code(), Some(78), "{:?}", text(&bad));
    let missing = sink(&db, &["silence", "shop"]);
    assert_eq!(missing.status.code(), Some(78), "--for is needed");
}

#[tokio::test]
async fn alerts_test_delivers_through_the_named_channel_and_reports_failures() {
    let db = TestDb::create().await;
    let good = tokio::task::spawn_blocking(Receiver::start).await.unwrap();
    let refusing = tokio::task::spawn_blocking(|| Receiver::answering(400))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sink.yaml");
    std::fs::write(
        &config,
        format!(
            "channels:\n  ops: {{ type: webhook, url: '{}' }}\n  broken: {{ type: webhook, url: '{}' }}\n",
            good.url("/ops"),
            refusing.url("/broken")
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let out = sink(&db, &["--config", config, "alerts", "test", "ops"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("delivered through ops"), "{stdout}");
    let got = good.wait_for(1, std::time::Duration::from_secs(10));
    assert_eq!(got[0].json()["kind"], "test");
    assert_eq!(got[0].json()["channel"], "ops");

    let out = sink(&db, &["--config", config, "alerts", "test", "broken"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("NOT delivered through broken (permanent)"),
        "{stdout}"
    );

    let out = sink(&db, &["--config", config, "alerts", "test", "nope"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr.contains("no channel `nope`") && stderr.contains("broken, ops"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_config_file_with_mistakes_stops_the_sink_with_every_one() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sink.yaml");
    std::fs::write(
        &config,
        "channels:\n  hook: { type: webhook, url: '${SITEWATCH_TEST_UNSET_HOOK}' }\n\
         routes:\n  - channels: [hook, pager]\nreminder_every: often\n",
    )
    .unwrap();
    let out = sink(&db, &["--config", config.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stdout}{stderr}");
    let file = config.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{file}:5: reminder_every: `often` is not a duration"
        )),
        "{stderr}"
    );
    // Shape errors first; the routes and channels are checked once the shape is right.
    std::fs::write(
        &config,
        "channels:\n  hook: { type: webhook, url: '${SITEWATCH_TEST_UNSET_HOOK}' }\n\
         routes:\n  - channels: [hook, pager]\n",
    )
    .unwrap();
    let out = sink(&db, &["--config", config.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!("{file}:2: channels.hook:"))
            && stderr.contains("SITEWATCH_TEST_UNSET_HOOK"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{file}:4: routes[0].channels: no channel `pager` under `channels:`"
        )),
        "{stderr}"
    );
}
