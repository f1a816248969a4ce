//! How a notification reads to a person (Slack, email, PagerDuty summaries): a headline
//! and labelled detail lines, the same words everywhere.

use chrono::{DateTime, Utc};

use crate::alerts::notification::{Notification, NotificationKind};

/// `DOWN`, `RESOLVED`, ... as the first word of a subject or message.
pub fn status_word(n: &Notification) -> &'static str {
    match n.kind {
        NotificationKind::Trigger if n.verdict == "degraded" => "DEGRADED",
        NotificationKind::Trigger => "DOWN",
        NotificationKind::Resolve => "RESOLVED",
        NotificationKind::Reminder => "STILL DOWN",
        NotificationKind::Flapping => "FLAPPING",
        NotificationKind::Test => "TEST",
    }
}

/// One line: `DOWN shop: shop is down from eu, us: timed out after 5s`.
pub fn headline(n: &Notification) -> String {
    format!("{} {}: {}", status_word(n), n.site, n.summary)
}

/// Labelled details worth showing under the headline, in a fixed order.
pub fn details(n: &Notification) -> Vec<(&'static str, String)> {
    let mut out = vec![("Site", n.site.clone())];
    if let Some(url) = &n.url {
        out.push(("URL", url.clone()));
    }
    out.push(("Verdict", n.verdict.clone()));
    if !n.locations.is_empty() {
        out.push(("Locations", n.locations.join(", ")));
    }
    if let Some(group) = &n.group {
        out.push(("Group", group.clone()));
    }
    if !n.tags.is_empty() {
        out.push(("Tags", n.tags.join(", ")));
    }
    if let Some(e) = &n.first_error {
        out.push(("First error", e.clone()));
    }
    if let Some(t) = n.started_at {
        out.push(("Started", time(t)));
    }
    if let Some(t) = n.resolved_at {
        out.push(("Resolved", time(t)));
    }
    if let (Some(start), Some(end)) = (n.started_at, n.resolved_at) {
        let secs = (end - start).num_seconds().max(0) as u64;
        out.push((
            "Duration",
            sitewatch_checks::ops::units::format_duration(std::time::Duration::from_secs(secs)),
        ));
    }
    if let Some(id) = n.incident_id {
        out.push(("Incident", id.to_string()));
    }
    out
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
