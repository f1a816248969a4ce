//! PagerDuty Events API v2: a trigger opens (or updates) a PagerDuty alert keyed by
//! `dedup_key` = `sitewatch-incident-<id>`, a resolve closes it. 202 means accepted.
//!
//! Reminders are skipped (delivered without a request): PagerDuty re-notifies through its
//! own escalation policy, and a trigger with the same key would only add a log entry.
//! Flapping notices are sent as a trigger with severity `warning` under the incident's key
//! (so the incident's resolve closes it), or under `sitewatch-flapping-<site>` without one.

use std::time::Duration;

use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::json;

use super::secret::{expand, Lookup};
use super::{http, text, Channel, ChannelConfigError, DeliveryError, DeliveryFuture, Secret};
use crate::alerts::notification::{Notification, NotificationKind};

/// PagerDuty's Events API v2 endpoint.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Severities PagerDuty accepts.
const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// A PagerDuty Events API v2 channel (`type: pagerduty`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// The integration's routing key (a secret: write it as `${VAR}`).
    pub routing_key: Secret,
    /// Events API endpoint (default https://events.pagerduty.com/v2/enqueue).
    #[serde(default)]
    pub url: Option<String>,
    /// Severity of triggers: critical, error, warning or info (default critical).
    #[serde(default)]
    pub severity: Option<String>,
    /// Per-request timeout (default 10s).
    #[serde(default, deserialize_with = "super::duration::optional")]
    pub timeout: Option<Duration>,
}

/// A built PagerDuty channel.
pub struct PagerdutyChannel {
    name: String,
    url: Url,
    routing_key: String,
    severity: String,
    client: Client,
}

impl PagerdutyChannel {
    /// Builds the channel, expanding `${VAR}` references with `lookup`.
    pub fn new(
        name: &str,
        config: &PagerdutyConfig,
        lookup: Lookup<'_>,
    ) -> Result<Self, ChannelConfigError> {
        let routing_key = expand(name, "routing_key", config.routing_key.expose(), lookup)?;
        if routing_key.trim().is_empty() {
            return Err(ChannelConfigError::invalid(name, "routing_key", "is empty"));
        }
        let url = expand(
            name,
            "url",
            config.url.as_deref().unwrap_or(DEFAULT_URL),
            lookup,
        )?;
        let severity = config.severity.as_deref().unwrap_or("critical");
        if !SEVERITIES.contains(&severity) {
            return Err(ChannelConfigError::invalid(
                name,
                "severity",
                format!("`{severity}` is not one of {}", SEVERITIES.join(", ")),
            ));
        }
        Ok(Self {
            name: name.to_string(),
            url: http::parse_url(name, "url", &url)?,
            routing_key,
            severity: severity.to_string(),
            client: http::client(name, config.timeout.unwrap_or(http::DEFAULT_TIMEOUT))?,
        })
    }

    async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let Some(event) = event(n, &self.routing_key, &self.severity) else {
            return Ok(());
        };
        http::send(self.client.post(self.url.clone()).json(&event)).await
    }
}

/// The key PagerDuty groups a notification's events under.
pub fn dedup_key(n: &Notification) -> String {
    match (n.kind, n.incident_id) {
        (_, Some(id)) => format!("sitewatch-incident-{id}"),
        (NotificationKind::Flapping, None) => format!("sitewatch-flapping-{}", n.site),
        (_, None) => format!("sitewatch-{}", n.idempotency_key),
    }
}

/// The event to send, or `None` for kinds this channel skips.
fn event(n: &Notification, routing_key: &str, severity: &str) -> Option<serde_json::Value> {
    let key = dedup_key(n);
    let (action, severity) = match n.kind {
        NotificationKind::Reminder => return None,
        NotificationKind::Resolve => {
            return Some(json!({
                "routing_key": routing_key,
                "event_action": "resolve",
                "dedup_key": key,
            }))
        }
        NotificationKind::Flapping => ("trigger", "warning"),
        NotificationKind::Test => ("trigger", "info"),
        NotificationKind::Trigger => ("trigger", severity),
    };
    let details: serde_json::Map<String, serde_json::Value> = text::details(n)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": key,
        "client": "sitewatch",
        "payload": {
            // PagerDuty truncates summaries at 1024 characters.
            "summary": text::headline(n).chars().take(1024).collect::<String>(),
            "source": n.site,
            "severity": severity,
            "timestamp": n.started_at.unwrap_or(n.created_at).to_rfc3339(),
            "component": n.site,
            "class": n.verdict,
            "custom_details": details,
        },
    });
    if let Some(group) = &n.group {
        event["payload"]["group"] = group.clone().into();
    }
    if let Some(url) = &n.url {
        event["client_url"] = url.clone().into();
    }
    Some(event)
}

impl Channel for PagerdutyChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(self.send(n))
    }
}
