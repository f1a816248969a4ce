//! The sink config file's `channels:` map (name -> [`ChannelConfig`], tagged by `type`)
//! and turning one entry into a working [`Channel`].

use std::sync::Arc;

use serde::Deserialize;

use super::secret::{process_env, Lookup};
use super::{
    AlertmanagerChannel, AlertmanagerConfig, Channel, ChannelConfigError, EmailChannel,
    EmailConfig, PagerdutyChannel, PagerdutyConfig, SlackChannel, SlackConfig, WebhookChannel,
    WebhookConfig,
};

/// One channel in the sink config file's `channels:` map (name -> this), tagged by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelConfig {
    /// Generic JSON webhook, HMAC-signed.
    Webhook(WebhookConfig),
    /// Slack incoming webhook.
    Slack(SlackConfig),
    /// PagerDuty Events API v2.
    Pagerduty(PagerdutyConfig),
    /// Prometheus Alertmanager API v2.
    Alertmanager(AlertmanagerConfig),
    /// SMTP email.
    Email(EmailConfig),
}

impl ChannelConfig {
    /// The `type` as written in the config.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Slack(_) => "slack",
            Self::Pagerduty(_) => "pagerduty",
            Self::Alertmanager(_) => "alertmanager",
            Self::Email(_) => "email",
        }
    }
}

/// Builds a channel; secrets written `${VAR}` are read from the environment here (an
/// unset variable is an error naming the variable and the channel).
pub fn build(name: &str, config: &ChannelConfig) -> Result<Arc<dyn Channel>, ChannelConfigError> {
    build_with(name, config, &process_env)
}

/// [`build`] with `${VAR}` references looked up by `lookup` instead of the environment.
pub fn build_with(
    name: &str,
    config: &ChannelConfig,
    lookup: Lookup<'_>,
) -> Result<Arc<dyn Channel>, ChannelConfigError> {
    Ok(match config {
        ChannelConfig::Webhook(c) => Arc::new(WebhookChannel::new(name, c, lookup)?),
        ChannelConfig::Slack(c) => Arc::new(SlackChannel::new(name, c, lookup)?),
        ChannelConfig::Pagerduty(c) => Arc::new(PagerdutyChannel::new(name, c, lookup)?),
        ChannelConfig::Alertmanager(c) => Arc::new(AlertmanagerChannel::new(name, c, lookup)?),
        ChannelConfig::Email(c) => Arc::new(EmailChannel::new(name, c, lookup)?),
    })
}
