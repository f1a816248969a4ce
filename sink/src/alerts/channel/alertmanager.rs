//! Prometheus Alertmanager API v2: `POST {url}/api/v2/alerts` with one alert. Labels are
//! the same for every notice of a site (so Alertmanager sees one alert): `alertname`,
//! `site`, `group`, `severity` and configured extras. A resolve sends them with `endsAt` =
//! the resolution time.
//!
//! Alertmanager resolves an alert by itself when `endsAt` passes (Prometheus re-sends
//! firing alerts; sitewatch sends once), so triggers, reminders and flapping notices set
//! `endsAt` = now + `firing_for` (default 24h): keep reminders shorter than that to hold a
//! long outage firing. Tests are sent with a 5-minute `endsAt`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::json;

use super::secret::{expand, Lookup};
use super::{http, text, Channel, ChannelConfigError, DeliveryError, DeliveryFuture, Secret};
use crate::alerts::notification::{Notification, NotificationKind};

/// `alertname` label unless configured.
pub const DEFAULT_ALERTNAME: &str = "SitewatchSiteDown";
/// How long a firing alert stays firing without a new notice, unless configured.
pub const DEFAULT_FIRING_FOR: Duration = Duration::from_secs(24 * 3600);
/// `alertname` of test notifications.
pub const TEST_ALERTNAME: &str = "SitewatchTest";
/// How long a test alert fires.
const TEST_FIRING_FOR: Duration = Duration::from_secs(300);

/// A Prometheus Alertmanager channel (`type: alertmanager`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL, e.g. http://127.0.0.1:9093 (`/api/v2/alerts` is appended).
    pub url: String,
    /// The `alertname` label (default SitewatchSiteDown).
    #[serde(default)]
    pub alertname: Option<String>,
    /// The `severity` label (default critical).
    #[serde(default)]
    pub severity: Option<String>,
    /// Extra labels added to every alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Extra headers sent with every request, e.g. `Authorization` for a proxy in front
    /// (values may use `${VAR}`).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// How long a trigger keeps the alert firing without a reminder (default 24h).
    #[serde(default, deserialize_with = "super::duration::optional")]
    pub firing_for: Option<Duration>,
    /// Per-request timeout (default 10s).
    #[serde(default, deserialize_with = "super::duration::optional")]
    pub timeout: Option<Duration>,
}

/// A built Alertmanager channel.
pub struct AlertmanagerChannel {
    name: String,
    endpoint: Url,
    alertname: String,
    severity: String,
    labels: BTreeMap<String, String>,
    headers: reqwest::header::HeaderMap,
    firing_for: chrono::Duration,
    client: Client,
}

impl AlertmanagerChannel {
    /// Builds the channel, expanding `${VAR}` references with `lookup`.
    pub fn new(
        name: &str,
        config: &AlertmanagerConfig,
        lookup: Lookup<'_>,
    ) -> Result<Self, ChannelConfigError> {
        let base = expand(name, "url", &config.url, lookup)?;
        let base = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
        let endpoint = http::parse_url(name, "url", &base)?;
        let alertname = config.alertname.as_deref().unwrap_or(DEFAULT_ALERTNAME);
        if alertname.trim().is_empty() {
            return Err(ChannelConfigError::invalid(name, "alertname", "is empty"));
        }
        let mut labels = BTreeMap::new();
        for (key, value) in &config.labels {
            let field = format!("labels.{key}");
            if !label_name_ok(key) {
                return Err(ChannelConfigError::invalid(
                    name,
                    &field,
                    "label names are letters, digits and _, not starting with a digit",
                ));
            }
            if ["alertname", "site", "group", "severity"].contains(&key.as_str()) {
                return Err(ChannelConfigError::invalid(
                    name,
                    &field,
                    "is set by sitewatch (use `alertname`/`severity` to change those)",
                ));
            }
            labels.insert(key.clone(), expand(name, &field, value, lookup)?);
        }
        let firing_for = config.firing_for.unwrap_or(DEFAULT_FIRING_FOR);
        let firing_for = chrono::Duration::from_std(firing_for)
            .map_err(|_| ChannelConfigError::invalid(name, "firing_for", "is too long"))?;
        Ok(Self {
            name: name.to_string(),
            endpoint,
            alertname: alertname.to_string(),
            severity: config.severity.clone().unwrap_or_else(|| "critical".into()),
            labels,
            headers: http::headers(name, &config.headers, lookup)?,
            firing_for,
            client: http::client(name, config.timeout.unwrap_or(http::DEFAULT_TIMEOUT))?,
        })
    }

    /// The one-element list Alertmanager receives.
    fn alerts(&self, n: &Notification) -> serde_json::Value {
        let mut labels = self.labels.clone();
        let alertname = match n.kind {
            // A test must not touch a real alert of the same site.
            NotificationKind::Test => TEST_ALERTNAME,
            _ => self.alertname.as_str(),
        };
        labels.insert("alertname".into(), alertname.to_string());
        labels.insert("site".into(), n.site.clone());
        labels.insert("severity".into(), self.severity.clone());
        if let Some(group) = &n.group {
            labels.insert("group".into(), group.clone());
        }
        let mut annotations = BTreeMap::new();
        annotations.insert("summary", text::headline(n));
        if let Some(e) = &n.first_error {
            annotations.insert("first_error", e.clone());
        }
        if !n.locations.is_empty() {
            annotations.insert("locations", n.locations.join(", "));
        }
        if let Some(url) = &n.url {
            annotations.insert("url", url.clone());
        }
        let ends_at: DateTime<Utc> = match n.kind {
            NotificationKind::Resolve => n.resolved_at.unwrap_or(n.created_at),
            NotificationKind::Test => {
                Utc::now() + chrono::Duration::from_std(TEST_FIRING_FOR).unwrap_or_default()
            }
            _ => Utc::now() + self.firing_for,
        };
        let mut alert = json!({
            "labels": labels,
            "annotations": annotations,
            "endsAt": ends_at.to_rfc3339(),
        });
        let starts_at = n.started_at.filter(|s| *s <= ends_at);
        if let Some(s) = starts_at {
            alert["startsAt"] = s.to_rfc3339().into();
        }
        if let Some(url) = &n.url {
            alert["generatorURL"] = url.clone().into();
        }
        json!([alert])
    }

    async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let request = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .json(&self.alerts(n));
        http::send(request).await
    }
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn label_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Channel for AlertmanagerChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(self.send(n))
    }
}
