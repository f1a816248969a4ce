//! The notification: one notice about one site for one channel, as stored in the outbox's
//! `payload` (JSON) and handed to a [`Channel`](super::channel::Channel).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of notice this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The site went down (an incident opened).
    Trigger,
    /// The site is back (the incident closed).
    Resolve,
    /// The site is still down.
    Reminder,
    /// The site changes verdict too often; further changes stay quiet until it is stable.
    Flapping,
    /// A test sent by `sitewatch-sink alerts test CHANNEL`.
    Test,
}

impl NotificationKind {
    /// Lower-case name, as in the JSON (`trigger`, `resolve`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Resolve => "resolve",
            Self::Reminder => "reminder",
            Self::Flapping => "flapping",
            Self::Test => "test",
        }
    }
}

impl std::fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification as stored in the outbox's `payload` (JSON) and handed to a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// What kind of notice this is.
    pub kind: NotificationKind,
    /// Stable per (incident, kind, channel) (reminders add their sequence number):
    /// receivers de-duplicate on it.
    pub idempotency_key: String,
    /// Channel name from the config.
    pub channel: String,
    /// Site name.
    pub site: String,
    /// The site's URL, when it has one.
    pub url: Option<String>,
    /// The site's group.
    pub group: Option<String>,
    /// The site's tags.
    pub tags: Vec<String>,
    /// The incident this notice is about.
    pub incident_id: Option<i64>,
    /// Site verdict: `down`, `up`, `degraded`, `unknown`.
    pub verdict: String,
    /// One human line, e.g. "shop is down from eu, us: timed out after 5s".
    pub summary: String,
    /// When the incident started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the incident was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Affected locations.
    pub locations: Vec<String>,
    /// The first error of the incident.
    pub first_error: Option<String>,
    /// When the notification was created (the verdict change that caused it).
    pub created_at: DateTime<Utc>,
}
