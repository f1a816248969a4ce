//! Slack incoming webhook: a `text` line (shown in notifications) and blocks with the
//! details, POSTed to the webhook URL (which is itself the secret).

use std::time::Duration;

use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::json;

use super::secret::{expand, Lookup};
use super::{http, text, Channel, ChannelConfigError, DeliveryError, DeliveryFuture, Secret};
use crate::alerts::notification::{Notification, NotificationKind};

/// A Slack incoming webhook channel (`type: slack`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook URL (a secret: write it as `${VAR}`).
    pub url: Secret,
    /// Per-request timeout (default 10s).
    #[serde(default, deserialize_with = "super::duration::optional")]
    pub timeout: Option<Duration>,
}

/// A built Slack channel.
pub struct SlackChannel {
    name: String,
    url: Url,
    client: Client,
}

impl SlackChannel {
    /// Builds the channel, expanding `${VAR}` references with `lookup`.
    pub fn new(
        name: &str,
        config: &SlackConfig,
        lookup: Lookup<'_>,
    ) -> Result<Self, ChannelConfigError> {
        let url = expand(name, "url", config.url.expose(), lookup)?;
        Ok(Self {
            name: name.to_string(),
            url: http::parse_url(name, "url", &url)?,
            client: http::client(name, config.timeout.unwrap_or(http::DEFAULT_TIMEOUT))?,
        })
    }

    async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let request = self.client.post(self.url.clone()).json(&message(n));
        http::send(request).await
    }
}

/// The JSON Slack receives.
pub(crate) fn message(n: &Notification) -> serde_json::Value {
    let emoji = match n.kind {
        NotificationKind::Resolve => ":large_green_circle:",
        NotificationKind::Test => ":information_source:",
        NotificationKind::Flapping => ":large_orange_circle:",
        _ if n.verdict == "degraded" => ":large_yellow_circle:",
        _ => ":red_circle:",
    };
    let headline = format!("{emoji} {}", text::headline(n));
    let fields: Vec<_> = text::details(n)
        .into_iter()
        .map(|(label, value)| {
            let text = format!("*{label}*\n{}", escape(&value));
            json!({"type": "mrkdwn", "text": clip(&text, FIELD_MAX)})
        })
        .take(10) // Slack allows at most 10 fields per section.
        .collect();
    json!({
        "text": escape(&headline),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(&escape(&headline), TEXT_MAX)}},
            {"type": "section", "fields": fields},
        ],
    })
}

/// At most this many characters fit a section field (Slack rejects the whole message).
const FIELD_MAX: usize = 2000;
/// At most this many characters fit a section text.
const TEXT_MAX: usize = 3000;

/// `s` cut to `max` characters, marked with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Channel for SlackChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(self.send(n))
    }
}
