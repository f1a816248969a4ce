//! The sink's recording of maintenance windows in `maintenance_periods` (read by the web
//! role, which cannot see the config): occurrences a day back and a week ahead per covered
//! site, written once however often the pass runs; a window removed from the config loses
//! its rows that have not begun, the one in progress ends, ended rows stay as they were;
//! a changed duration moves the end of rows that have not ended.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::path::Path;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use sitewatch_checks::catalog::{Quorum, SiteDefinition, CATALOG_SCHEMA_VERSION};
use sitewatch_sink::alerts::periodic::{pass, MAINTENANCE_AHEAD};
use sitewatch_sink::alerts::Alerts;
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{write_batch, Batch, CatalogEntry, Row};
use sitewatch_tests::fixtures::result;
use support::TestDb;
use tokio_postgres::Client;

fn define(site: &str, group: &str) -> CatalogEntry {
    let at = Utc::now() - TimeDelta::hours(1);
    CatalogEntry {
        site: site.into(),
        definition: Some(SiteDefinition {
            schema: CATALOG_SCHEMA_VERSION,
            site: site.into(),
            url: format!("http://127.0.0.1/{site}"),
            interval_ms: 60_000,
            timeout_ms: 5000,
            failure_threshold: 2,
            success_threshold: 1,
            quorum: Quorum::Majority,
            tags: vec![],
            group: Some(group.into()),
            public: true,
            agent: "agent-eu".into(),
            location: Some("eu".into()),
            published_at: at,
        }),
        timestamp: at,
    }
}

fn config(windows: &str) -> Alerts {
    sitewatch_sink::alerts::file::parse(Path::new("sink.yaml"), &format!("maintenance:\n{windows}"))
        .unwrap()
}

/// (site, window, start, end) of every row, in order.
async fn rows(client: &Client) -> Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> {
    client
        .query(
            "SELECT s.name, m.window_name, m.starts_at, m.ends_at
             FROM maintenance_periods m JOIN sites s ON s.id = m.site_id
             ORDER BY s.name, m.window_name, m.starts_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[tokio::test]
async fn upcoming_maintenance_is_recorded_once_and_follows_the_config() {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();
    let checks: Vec<Row> = ["shop", "blog"]
        .iter()
        .map(|s| Row::new(0, 0, result(s)))
        .collect();
    let batch = Batch {
        catalog: vec![define("shop", "Shop"), define("blog", "Blog")],
        rows: checks,
        ..Batch::default()
    };
    write_batch(&mut client, &batch).await.unwrap();

    let now = Utc::now();
    let move_at = (now + TimeDelta::days(2))
        .format("%Y-%m-%dT%H:%M:00Z")
        .to_string();
    let nightly = "  - { name: nightly, groups: [Shop], start: '03:00', days: [mon, tue, wed, thu, fri, sat, sun], duration: 1h }\n";
    let one_off =
        format!("  - {{ name: move, sites: ['blog'], start: '{move_at}', duration: 3h }}\n");
    let both = config(&format!("{nightly}{one_off}"));

    let first = pass(&mut client, &both).await.unwrap();
    let recorded = rows(&client).await;
    // Expected independently: every 03:00 UTC whose hour overlaps [now - 1 day, now + 7 days).
    let mut nights = Vec::new();
    let mut day = (now - TimeDelta::days(2)).date_naive();
    while day <= (now + MAINTENANCE_AHEAD).date_naive() {
        let start = day
            .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
            .and_utc();
        if start < now + MAINTENANCE_AHEAD && start + TimeDelta::hours(1) > now - TimeDelta::days(1)
        {
            nights.push(start);
        }
        day = day.succ_opt().unwrap();
    }
    let shop: Vec<DateTime<Utc>> = recorded
        .iter()
        .filter(|r| r.0 == "shop")
        .map(|r| {
            assert_eq!((r.1.as_str(), r.3 - r.2), ("nightly", TimeDelta::hours(1)));
            r.2
        })
        .collect();
    assert_eq!(shop, nights);
    let blog: Vec<_> = recorded.iter().filter(|r| r.0 == "blog").collect();
    assert_eq!(blog.len(), 1, "{recorded:?}");
    assert_eq!(
        (blog[0].1.as_str(), blog[0].2.to_rfc3339()),
        (
            "move",
            DateTime::parse_from_rfc3339(&move_at)
                .unwrap()
                .to_utc()
                .to_rfc3339()
        )
    );
    assert_eq!(first.maintenance as usize, nights.len() + 1);

    // Idempotent: a second pass (or a second sink) writes nothing.
    let second = pass(&mut client, &both).await.unwrap();
    assert_eq!((second.maintenance, second.maintenance_dropped), (0, 0));
    assert_eq!(rows(&client).await, recorded);

    // Rows of a window that is gone: an ended one stays, one in progress ends now.
    let blog_id: i32 = client
        .query_one("SELECT id FROM sites WHERE name = 'blog'", &[])
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "INSERT INTO maintenance_periods VALUES
                ($1, 'old', now() - interval '3 days', now() - interval '2 days'),
                ($1, 'adhoc', now() - interval '10 minutes', now() + interval '1 hour')",
            &[&blog_id],
        )
        .await
        .unwrap();

    // `move` removed and `nightly` lengthened to 2 h.
    let changed = config(&nightly.replace("duration: 1h", "duration: 2h"));
    let third = pass(&mut client, &changed).await.unwrap();
    let after = rows(&client).await;
    let at = Utc::now();
    let blog: Vec<(&str, bool)> = after
        .iter()
        .filter(|r| r.0 == "blog")
        .map(|r| (r.1.as_str(), r.3 <= at))
        .collect();
    assert_eq!(blog, [("adhoc", true), ("old", true)], "{after:?}");
    let old = after.iter().find(|r| r.1 == "old").unwrap();
    assert_eq!(old.3 - old.2, TimeDelta::days(1), "ended rows never change");
    assert_eq!(third.maintenance_dropped, 2, "move deleted, adhoc ended");
    for r in after.iter().filter(|r| r.0 == "shop") {
        let length = if r.3 <= now {
            TimeDelta::hours(1)
        } else {
            TimeDelta::hours(2)
        };
        assert_eq!(r.3 - r.2, length, "{r:?}");
    }
    // No window at all: what has not begun goes.
    pass(&mut client, &config("  []\n")).await.unwrap();
    let left = client
        .query_one(
            "SELECT count(*) FROM maintenance_periods WHERE starts_at > now()",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(left, 0);
}
