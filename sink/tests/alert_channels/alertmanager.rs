//! The Alertmanager channel against Debian's real `prometheus-alertmanager`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sitewatch_sink::alerts::notification::NotificationKind;
use sitewatch_tests::alertmanager::Alertmanager;
use sitewatch_tests::receiver::Receiver;

use super::{channel, resolve, trigger, WAIT};

/// The alerts Alertmanager lists for site `shop`.
fn shop_alerts(am: &Alertmanager, query: &str) -> Vec<Value> {
    let all = am.alerts(query);
    all.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["site"] == "shop")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_shows_the_alert_firing_then_resolved() {
    let am = tokio::task::spawn_blocking(Alertmanager::start)
        .await
        .unwrap();
    let ch = channel(
        json!({"type": "alertmanager", "url": am.url(), "labels": {"team": "web"}}),
        &[],
    );
    let mut n = trigger();
    n.started_at = Some(Utc::now() - chrono::Duration::minutes(2));
    ch.deliver(&n).await.unwrap();
    let started = std::time::Instant::now();
    let firing = loop {
        let got = shop_alerts(&am, "?active=true");
        if got
            .first()
            .is_some_and(|a| a["status"]["state"] == "active")
        {
            break got;
        }
        assert!(
            started.elapsed() < WAIT,
            "not active in Alertmanager: {got:?}\n{}",
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(firing.len(), 1);
    let a = &firing[0];
    assert_eq!(a["labels"]["alertname"], "SitewatchSiteDown");
    assert_eq!(a["labels"]["group"], "store");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["team"], "web");
    assert_eq!(a["annotations"]["first_error"], "timed out after 5s");
    assert!(a["annotations"]["summary"]
        .as_str()
        .unwrap()
        .contains("shop is down"));
    let starts: DateTime<Utc> = a["startsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(starts.timestamp(), n.started_at.unwrap().timestamp());
    let ends: DateTime<Utc> = a["endsAt"].as_str().unwrap().parse().unwrap();
    assert!(
        ends > Utc::now() + chrono::Duration::hours(23),
        "held firing: {ends}"
    );

    let mut r = resolve();
    r.started_at = n.started_at;
    r.resolved_at = Some(Utc::now() - chrono::Duration::seconds(1));
    ch.deliver(&r).await.unwrap();
    assert!(
        shop_alerts(&am, "?active=true").is_empty(),
        "still active after the resolve"
    );
    assert!(
        shop_alerts(&am, "").is_empty(),
        "resolved alerts are not listed"
    );
}

#[tokio::test]
async fn alertmanager_requests_carry_configured_headers_and_a_test_alert_is_separate() {
    let receiver = Receiver::start();
    let ch = channel(
        json!({"type": "alertmanager", "url": receiver.url("/am/"),
               "headers": {"Authorization": "Bearer ${AM_TOKEN}"}}),
        &[("AM_TOKEN", "t0k")],
    );
    let mut test = trigger();
    test.kind = NotificationKind::Test;
    ch.deliver(&test).await.unwrap();
    let r = &receiver.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/am/api/v2/alerts")
    );
    assert_eq!(r.header("authorization"), Some("Bearer t0k"));
    let alerts = r.json();
    assert_eq!(alerts.as_array().unwrap().len(), 1);
    assert_eq!(alerts[0]["labels"]["alertname"], "SitewatchTest");
    let ends: DateTime<Utc> = alerts[0]["endsAt"].as_str().unwrap().parse().unwrap();
    assert!(
        ends <= Utc::now() + chrono::Duration::minutes(5),
        "a test fires briefly"
    );
}
