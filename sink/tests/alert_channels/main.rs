//! Notification channels against real local receivers: a recording HTTP server for the
//! webhook (signature checked independently), Slack and PagerDuty formats, Debian's
//! `prometheus-alertmanager` queried through its API, and an SMTP server (plain, STARTTLS,
//! TLS) for email. Also how failures are classified (retry or permanent), `${VAR}` secrets
//! and config errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod alertmanager;
mod config;
mod email;
mod http;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sitewatch_sink::alerts::channel::{build_with, Channel, ChannelConfig};
use sitewatch_sink::alerts::notification::{Notification, NotificationKind};

/// Longest a receiver is waited for.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0).unwrap()
}

/// A trigger for incident 42 of `shop`.
pub fn trigger() -> Notification {
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

pub fn resolve() -> Notification {
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

pub fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

pub fn channel(config: Value, vars: &[(&str, &str)]) -> Arc<dyn Channel> {
    let config: ChannelConfig = serde_json::from_value(config).unwrap();
    build_with("ops", &config, &env(vars)).unwrap()
}
