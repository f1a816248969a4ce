//! HTTP channels against the recording receiver: webhook (signature), Slack, PagerDuty,
//! and the classification of failures.

use std::time::Duration;

use chrono::Utc;
use hmac::{KeyInit, Mac};
use serde_json::json;
use sitewatch_sink::alerts::channel::DeliveryError;
use sitewatch_sink::alerts::notification::{Notification, NotificationKind};
use sitewatch_tests::receiver::Receiver;

use super::{channel, resolve, trigger};

#[tokio::test]
async fn webhook_posts_the_notification_signed_with_the_shared_secret() {
    let receiver = Receiver::start();
    let ch = channel(
        json!({"type": "webhook", "url": receiver.url("/hook"), "secret": "${HOOK_SECRET}",
               "headers": {"X-Team": "${TEAM}"}}),
        &[("HOOK_SECRET", "s3cr3t"), ("TEAM", "web")],
    );
    assert_eq!(ch.name(), "ops");
    let n = trigger();
    let before = Utc::now().timestamp();
    ch.deliver(&n).await.unwrap();
    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("idempotency-key"), Some("incident-42:trigger:ops"));
    assert_eq!(r.header("x-team"), Some("web"));
    let ts: i64 = r.header("x-sitewatch-timestamp").unwrap().parse().unwrap();
    assert!((before..=Utc::now().timestamp()).contains(&ts));
    // Check the signature the way a receiver would, with hmac directly.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cr3t").unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&r.body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        r.header("x-sitewatch-signature"),
        Some(format!("sha256={hex}").as_str())
    );
    // The body is the notification plus its version.
    let body = r.json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["kind"], "trigger");
    assert_eq!(body["started_at"], "2026-11-30T06:00:00Z");
    let back: Notification = serde_json::from_value(body).unwrap();
    assert_eq!(back, n);
}

#[tokio::test]
async fn webhook_without_a_secret_is_unsigned() {
    let receiver = Receiver::start();
    let ch = channel(json!({"type": "webhook", "url": receiver.url("/")}), &[]);
    ch.deliver(&trigger()).await.unwrap();
    let r = &receiver.requests()[0];
    assert!(r.header("x-sitewatch-signature").is_none());
    assert!(r.header("x-sitewatch-timestamp").is_some());
}

async fn outcome(status: u16) -> Result<(), DeliveryError> {
    let receiver = Receiver::answering(status);
    let ch = channel(json!({"type": "webhook", "url": receiver.url("/")}), &[]);
    ch.deliver(&trigger()).await
}

#[tokio::test]
async fn failures_are_retried_or_permanent_by_cause() {
    for status in [500, 502, 503, 429, 408] {
        let e = outcome(status).await.unwrap_err();
        assert!(e.is_retry(), "{status} should be retried: {e}");
        assert!(e.to_string().contains(&status.to_string()), "{e}");
    }
    for status in [400, 401, 403, 404, 410, 301] {
        let e = outcome(status).await.unwrap_err();
        assert!(matches!(e, DeliveryError::Permanent(_)), "{status}: {e}");
    }
    assert!(outcome(204).await.is_ok());
    // Nothing listening: connection refused.
    let port = sitewatch_tests::free_port();
    let ch = channel(
        json!({"type": "webhook", "url": format!("http://127.0.0.1:{port}/")}),
        &[],
    );
    let e = ch.deliver(&trigger()).await.unwrap_err();
    assert!(e.is_retry(), "{e}");
    // A receiver slower than the channel's timeout.
    let slow = Receiver::start();
    slow.delay(Duration::from_secs(3));
    let ch = channel(
        json!({"type": "webhook", "url": slow.url("/"), "timeout": "300ms"}),
        &[],
    );
    let e = ch.deliver(&trigger()).await.unwrap_err();
    assert!(e.is_retry(), "{e}");
}

#[tokio::test]
async fn slack_gets_a_text_line_and_blocks_and_errors_keep_the_url_secret() {
    let receiver = Receiver::start();
    let url = receiver.url("/services/T000/B000/XYZTOKEN");
    let ch = channel(
        json!({"type": "slack", "url": "${SLACK_URL}"}),
        &[("SLACK_URL", &url)],
    );
    let mut n = trigger();
    n.first_error = Some("HTTP 500 <html>".into());
    ch.deliver(&n).await.unwrap();
    ch.deliver(&resolve()).await.unwrap();
    let got = receiver.requests();
    assert_eq!(got[0].path, "/services/T000/B000/XYZTOKEN");
    let body = got[0].json();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("DOWN shop: shop is down from eu, us: timed out after 5s"),
        "{text}"
    );
    let blocks = body["blocks"].to_string();
    assert!(
        blocks.contains("HTTP 500 &lt;html&gt;"),
        "mrkdwn escaped: {blocks}"
    );
    assert!(got[1].json()["text"]
        .as_str()
        .unwrap()
        .contains("RESOLVED shop"));
    // A failing Slack: the error does not carry the token.
    receiver.script(&[500]);
    let e = ch.deliver(&n).await.unwrap_err().to_string();
    assert!(!e.contains("XYZTOKEN"), "{e}");
    let port = sitewatch_tests::free_port();
    let down = format!("http://127.0.0.1:{port}/services/XYZTOKEN");
    let ch = channel(json!({"type": "slack", "url": down}), &[]);
    let e = ch.deliver(&n).await.unwrap_err().to_string();
    assert!(!e.contains("XYZTOKEN"), "{e}");
}

#[tokio::test]
async fn pagerduty_triggers_and_resolves_under_the_incident_key() {
    let receiver = Receiver::answering(202);
    let ch = channel(
        json!({"type": "pagerduty", "routing_key": "${PD_KEY}", "url": receiver.url("/v2/enqueue")}),
        &[("PD_KEY", "R0UTING")],
    );
    ch.deliver(&trigger()).await.unwrap();
    let mut reminder = trigger();
    reminder.kind = NotificationKind::Reminder;
    ch.deliver(&reminder).await.unwrap(); // skipped: PagerDuty escalates by itself
    let mut flapping = trigger();
    flapping.kind = NotificationKind::Flapping;
    ch.deliver(&flapping).await.unwrap();
    ch.deliver(&resolve()).await.unwrap();
    let got = receiver.requests();
    assert_eq!(got.len(), 3, "trigger, flapping, resolve; no reminder");
    let t = got[0].json();
    assert_eq!(got[0].path, "/v2/enqueue");
    assert_eq!(t["routing_key"], "R0UTING");
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(t["dedup_key"], "sitewatch-incident-42");
    assert_eq!(t["payload"]["source"], "shop");
    assert_eq!(t["payload"]["severity"], "critical");
    assert_eq!(t["payload"]["timestamp"], "2026-11-30T06:00:00+00:00");
    assert!(t["payload"]["summary"]
        .as_str()
        .unwrap()
        .contains("shop is down"));
    let f = got[1].json();
    assert_eq!(
        (f["event_action"].as_str(), f["dedup_key"].as_str()),
        (Some("trigger"), Some("sitewatch-incident-42"))
    );
    assert_eq!(f["payload"]["severity"], "warning");
    let r = got[2].json();
    assert_eq!(r["event_action"], "resolve");
    assert_eq!(r["dedup_key"], "sitewatch-incident-42");
    // PagerDuty's 400 (invalid event) is permanent.
    receiver.script(&[400]);
    assert!(matches!(
        ch.deliver(&trigger()).await,
        Err(DeliveryError::Permanent(_))
    ));
}
