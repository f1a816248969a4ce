//! Notification channels against real local receivers: a recording HTTP server for the
//! webhook (signature checked independently), Slack and PagerDuty formats, Debian's
//! `prometheus-alertmanager` queried through its API, and an SMTP server for email. Also
//! how failures are classified (retry or permanent), `${VAR}` secrets and config errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use sitewatch_sink::alerts::channel::{build, build_with, Channel, ChannelConfig, DeliveryError};
use sitewatch_sink::alerts::notification::{Notification, NotificationKind};
use sitewatch_tests::alertmanager::Alertmanager;
use sitewatch_tests::receiver::Receiver;
use sitewatch_tests::smtp::{acceptor, Security, SmtpReceiver};

const WAIT: Duration = Duration::from_secs(10);

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0).unwrap()
}

/// A trigger for incident 42 of `shop`.
fn trigger() -> Notification {
    Notification {
        kind: NotificationKind::Trigger,
        idempotency_key: "incident-42:trigger:ops".into(),
        channel: "ops".into(),
        site: "shop".into(),
        url: Some("https://shop.example/".into()),
        group: Some("store".into()),
        tags: vec!["prod".into(), "eu".into()],
        incident_id: Some(42),
        verdict: "down".into(),
        summary: "shop is down from eu, us: timed out after 5s".into(),
        started_at: Some(at(6, 0)),
        resolved_at: None,
        locations: vec!["eu".into(), "us".into()],
        first_error: Some("timed out after 5s".into()),
        created_at: at(6, 1),
    }
}

fn resolve() -> Notification {
    Notification {
        kind: NotificationKind::Resolve,
        idempotency_key: "incident-42:resolve:ops".into(),
        verdict: "up".into(),
        summary: "shop is up again after 4m".into(),
        resolved_at: Some(at(6, 4)),
        created_at: at(6, 4),
        ..trigger()
    }
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn channel(config: Value, vars: &[(&str, &str)]) -> Arc<dyn Channel> {
    let config: ChannelConfig = serde_json::from_value(config).unwrap();
    build_with("ops", &config, &env(vars)).unwrap()
}

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
async fn email_reaches_an_smtp_server_with_subject_and_details() {
    let smtp = SmtpReceiver::start();
    let ch = channel(
        json!({"type": "email", "host": "127.0.0.1", "port": smtp.port(), "tls": "none",
               "username": "sitewatch", "password": "${SMTP_PASSWORD}",
               "from": "sitewatch <alerts@example.com>",
               "to": ["ops@example.com", "Web Team <web@example.com>"]}),
        &[("SMTP_PASSWORD", "pa55")],
    );
    ch.deliver(&trigger()).await.unwrap();
    ch.deliver(&trigger()).await.unwrap(); // delivered twice: the same Message-ID
    ch.deliver(&resolve()).await.unwrap();
    let mails = smtp.wait_for(3, WAIT);
    assert_eq!(mails.len(), 3);
    let m = &mails[0];
    assert_eq!(m.from, "alerts@example.com");
    assert_eq!(m.to, vec!["ops@example.com", "web@example.com"]);
    assert_eq!(m.auth, Some(("sitewatch".into(), "pa55".into())));
    assert_eq!(
        m.header("Subject").unwrap(),
        "[sitewatch] DOWN shop: shop is down from eu, us: timed out after 5s"
    );
    let body = m.body();
    assert!(body.contains("First error: timed out after 5s"), "{body}");
    assert!(body.contains("Locations: eu, us"), "{body}");
    assert!(body.contains("URL: https://shop.example/"), "{body}");
    assert_eq!(m.header("Message-ID"), mails[1].header("Message-ID"));
    assert_ne!(m.header("Message-ID"), mails[2].header("Message-ID"));
    assert!(mails[2]
        .header("Subject")
        .unwrap()
        .starts_with("[sitewatch] RESOLVED shop"));
    assert!(
        mails[2].body().contains("Duration: 4m"),
        "{}",
        mails[2].body()
    );
}

#[tokio::test]
async fn email_goes_over_starttls_and_tls_checking_the_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let acceptor = || acceptor(&cert.cert.pem(), &cert.key_pair.serialize_pem());
    for (mode, security) in [
        ("starttls", Security::StartTls(acceptor())),
        ("tls", Security::Tls(acceptor())),
    ] {
        let smtp = SmtpReceiver::start_with(security);
        let config = |ca_file: Option<&std::path::Path>| {
            let mut c = json!({"type": "email", "host": "127.0.0.1", "port": smtp.port(),
                               "tls": mode, "username": "u", "password": "p",
                               "from": "alerts@example.com", "to": ["ops@example.com"],
                               "timeout": "5s"});
            if let Some(path) = ca_file {
                c["ca_file"] = path.to_str().unwrap().into();
            }
            channel(c, &[])
        };
        // Without the CA the self-signed certificate is refused: nothing is sent.
        let e = config(None).deliver(&trigger()).await.unwrap_err();
        assert!(e.is_retry(), "{mode}: {e}");
        assert!(
            smtp.mails().is_empty(),
            "{mode}: sent to an untrusted server"
        );
        config(Some(&ca)).deliver(&trigger()).await.unwrap();
        let mails = smtp.wait_for(1, WAIT);
        assert_eq!(mails.len(), 1, "{mode}");
        assert!(mails[0].tls, "{mode}: not encrypted");
        assert_eq!(mails[0].auth, Some(("u".into(), "p".into())), "{mode}");
        assert!(
            mails[0].header("Subject").unwrap().contains("DOWN shop"),
            "{mode}"
        );
    }
}

#[tokio::test]
async fn email_failures_are_classified_by_smtp_reply() {
    let smtp = SmtpReceiver::start();
    let ch = channel(
        json!({"type": "email", "host": "127.0.0.1", "port": smtp.port(), "tls": "none",
               "from": "alerts@example.com", "to": ["ops@example.com"], "timeout": "2s"}),
        &[],
    );
    smtp.reject_with("451 4.3.0 try again later");
    assert!(ch.deliver(&trigger()).await.unwrap_err().is_retry());
    smtp.reject_with("550 5.7.1 relaying denied");
    let e = ch.deliver(&trigger()).await.unwrap_err();
    assert!(matches!(e, DeliveryError::Permanent(_)), "{e}");
    let port = sitewatch_tests::free_port();
    let ch = channel(
        json!({"type": "email", "host": "127.0.0.1", "port": port, "tls": "none",
               "from": "alerts@example.com", "to": ["ops@example.com"]}),
        &[],
    );
    assert!(ch.deliver(&trigger()).await.unwrap_err().is_retry());
}

#[test]
fn config_errors_name_the_field_variable_and_channel() {
    let unknown = serde_json::from_value::<ChannelConfig>(
        json!({"type": "webhook", "url": "http://x/", "secrte": "y"}),
    )
    .unwrap_err()
    .to_string();
    assert!(unknown.contains("secrte"), "{unknown}");
    let kind = serde_json::from_value::<ChannelConfig>(json!({"type": "pigeon", "url": "x"}))
        .unwrap_err()
        .to_string();
    assert!(kind.contains("pigeon"), "{kind}");
    // From the real environment: a variable nobody sets.
    let config: ChannelConfig = serde_json::from_value(
        json!({"type": "pagerduty", "routing_key": "${SITEWATCH_TEST_UNSET_ROUTING_KEY}"}),
    )
    .unwrap();
    let e = build("pager", &config).err().unwrap().to_string();
    assert!(
        e.contains("SITEWATCH_TEST_UNSET_ROUTING_KEY") && e.contains("`pager`"),
        "{e}"
    );
    let bad = [
        json!({"type": "webhook", "url": "ftp://x/"}),
        json!({"type": "pagerduty", "routing_key": "k", "severity": "fatal"}),
        json!({"type": "alertmanager", "url": "http://x", "labels": {"site": "a"}}),
        json!({"type": "email", "host": "h", "from": "not an address", "to": ["a@b.c"]}),
        json!({"type": "email", "host": "h", "from": "a@b.c", "to": []}),
        json!({"type": "email", "host": "h", "from": "a@b.c", "to": ["a@b.c"], "username": "u"}),
    ];
    for (config, field) in
        bad.into_iter()
            .zip(["url", "severity", "labels.site", "from", "to", "password"])
    {
        let config: ChannelConfig = serde_json::from_value(config).unwrap();
        let e = build_with("c", &config, &env(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&format!("field `{field}`")), "{e}");
    }
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let config: ChannelConfig = serde_json::from_value(json!({
        "type": "webhook", "url": "https://hooks.example/T0KEN1", "secret": "hunter2",
        "headers": {"Authorization": "Bearer T0KEN2"}
    }))
    .unwrap();
    let shown = format!("{config:?}");
    for secret in ["T0KEN1", "hunter2", "T0KEN2"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let config: ChannelConfig = serde_json::from_value(json!({
        "type": "email", "host": "h", "from": "a@b.c", "to": ["a@b.c"],
        "username": "u", "password": "pa55word"
    }))
    .unwrap();
    assert!(!format!("{config:?}").contains("pa55word"));
}
