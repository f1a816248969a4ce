//! The alerting policy of the sink's config file (`sitewatch-sink --config sink.yaml`):
//! channels, routes, resolve notices, reminders, flapping, maintenance windows and retries.
//! Defaults live here, in one place; `file.rs` reads and checks the file.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::channel::ChannelConfig;
use super::window::MaintenanceWindowConfig;

/// Default of `retry_for`: a notification is retried for a day before it is recorded failed.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(24 * 3600);
/// Default of `retry_base`: the first retry's delay (each further one doubles it).
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(10);
/// The longest delay between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);

/// The sink's config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkFile {
    /// Sink settings by their flag names (`brokers`, `database_url`, `batch_max_rows`, ...);
    /// a flag or environment variable given for one wins over the file.
    #[serde(default)]
    pub sink: BTreeMap<String, serde_yaml::Value>,
    /// Where notifications go, by a name routes refer to; each has a `type` (webhook,
    /// slack, pagerduty, alertmanager, email). Secrets as `${VAR}` come from the environment.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Which sites notify which channels. Every route that matches a site adds its
    /// channels (each channel is notified once); a site no route matches notifies nobody.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Send a resolve notice when an incident that was notified ends (default true).
    #[serde(default = "yes")]
    pub send_on_resolved: bool,
    /// Remind the channels of an incident still open every so long, e.g. `4h`
    /// (default: no reminders).
    #[serde(default, deserialize_with = "some_duration")]
    pub reminder_every: Option<Duration>,
    /// One flapping notice for a site whose verdict changes too often, then quiet until
    /// it is stable (default: off).
    #[serde(default)]
    pub flapping: Option<Flapping>,
    /// Planned maintenance: while a window covers a site, no trigger, reminder or
    /// flapping notice is sent for it, and the time is marked for uptime figures.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceWindowConfig>,
    /// How long a notification is retried before it is recorded failed (default `24h`).
    #[serde(default = "retry_for", deserialize_with = "duration")]
    pub retry_for: Duration,
    /// Delay before the first retry; each further retry waits twice as long, at most
    /// 10 minutes (default `10s`).
    #[serde(default = "retry_base", deserialize_with = "duration")]
    pub retry_base: Duration,
}

/// One route: sites it matches (every given matcher must match; none given matches every
/// site) and the channels it notifies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Site name pattern: `*` matches any run of characters, e.g. `shop-*`.
    #[serde(default)]
    pub site: Option<String>,
    /// A tag the site must have (the agents' site `tags`).
    #[serde(default)]
    pub tag: Option<String>,
    /// The group the site must be in (the agents' site `group`).
    #[serde(default)]
    pub group: Option<String>,
    /// Names of channels (under `channels:`) to notify.
    pub channels: Vec<String>,
}

/// Flapping detection.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flapping {
    /// More verdict changes than this within `window` make a site flapping.
    pub changes: u32,
    /// The window, e.g. `30m`; a flapping site is stable again after a whole window
    /// without a verdict change.
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
}

impl Route {
    /// Whether the route matches a site with these `tags` and `group`.
    pub fn matches(&self, site: &str, tags: &[String], group: Option<&str>) -> bool {
        self.site.as_deref().is_none_or(|p| glob(p, site))
            && self
                .tag
                .as_deref()
                .is_none_or(|t| tags.iter().any(|x| x == t))
            && self.group.as_deref().is_none_or(|g| group == Some(g))
    }
}

impl Default for SinkFile {
    /// No channels, so nothing is notified.
    fn default() -> Self {
        SinkFile {
            sink: BTreeMap::new(),
            channels: BTreeMap::new(),
            routes: Vec::new(),
            send_on_resolved: yes(),
            reminder_every: None,
            flapping: None,
            maintenance: Vec::new(),
            retry_for: retry_for(),
            retry_base: retry_base(),
        }
    }
}

impl SinkFile {
    /// The channels routed to for a site, each once, in route order.
    pub fn channels_for(&self, site: &str, tags: &[String], group: Option<&str>) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for route in self.routes.iter().filter(|r| r.matches(site, tags, group)) {
            for c in &route.channels {
                if !out.contains(&c.as_str()) {
                    out.push(c);
                }
            }
        }
        out
    }

    /// The delay before attempt `attempts + 1` after `attempts` failed ones.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.retry_base
            .saturating_mul(factor)
            .min(MAX_RETRY_DELAY.max(self.retry_base))
    }
}

/// `*` matches any run of characters (also none); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn yes() -> bool {
    true
}

fn retry_for() -> Duration {
    DEFAULT_RETRY_FOR
}

fn retry_base() -> Duration {
    DEFAULT_RETRY_BASE
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    sitewatch_checks::ops::units::parse_duration(&text).map_err(serde::de::Error::custom)
}

fn some_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("shop-*", "shop-eu"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXbY"));
        assert!(glob("shop", "shop"));
        assert!(!glob("shop", "shops"));
        assert!(!glob("*-eu", "shop-us"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn routes_add_up_and_retries_double_up_to_a_cap() {
        let file: SinkFile = serde_yaml::from_str(
            "routes:
  - { tag: critical, channels: [pager, chat] }
  - { site: 'shop-*', channels: [chat, mail] }
  - { group: internal, channels: [ops] }
retry_base: 1s",
        )
        .unwrap();
        let tags = vec!["critical".to_string()];
        assert_eq!(
            file.channels_for("shop-eu", &tags, None),
            ["pager", "chat", "mail"]
        );
        assert_eq!(file.channels_for("blog", &[], Some("internal")), ["ops"]);
        assert!(file.channels_for("blog", &[], None).is_empty());
        assert!(file.send_on_resolved);
        assert_eq!(file.retry_for, DEFAULT_RETRY_FOR);
        let delays: Vec<u64> = (1..=12).map(|a| file.retry_delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
    }
}
