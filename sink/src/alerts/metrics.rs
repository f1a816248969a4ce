//! What the dispatcher counts for the sink's `/metrics`: notifications sent and failed by
//! this sink, per channel, and the outbox's backlog (every sink's: read from the table on
//! each periodic pass), per channel.

use std::collections::BTreeMap;
use std::sync::Mutex;

use sitewatch_checks::ops::MetricsText;
use tokio_postgres::Client;

/// Per-channel counts and the backlog.
#[derive(Debug, Default)]
pub struct AlertMetrics {
    sent: Mutex<BTreeMap<String, u64>>,
    failed: Mutex<BTreeMap<String, u64>>,
    /// (channel, pending rows, age of the oldest in seconds).
    backlog: Mutex<Vec<(String, i64, f64)>>,
}

impl AlertMetrics {
    /// A notification was delivered through `channel`.
    pub fn sent(&self, channel: &str) {
        bump(&self.sent, channel);
    }

    /// A notification through `channel` was given up.
    pub fn failed(&self, channel: &str) {
        bump(&self.failed, channel);
    }

    /// Reads the backlog from the outbox.
    pub async fn refresh(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        let rows = client
            .query(
                "SELECT channel, count(*),
                        extract(epoch FROM now() - min(created_at))::float8
                 FROM notifications WHERE delivered_at IS NULL AND failed_at IS NULL
                 GROUP BY channel ORDER BY channel",
                &[],
            )
            .await?;
        if let Ok(mut backlog) = self.backlog.lock() {
            *backlog = rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
        }
        Ok(())
    }

    /// Adds the series to `t`.
    pub fn write(&self, t: &mut MetricsText) {
        let counts =
            |m: &Mutex<BTreeMap<String, u64>>| m.lock().map(|m| m.clone()).unwrap_or_default();
        let sent = counts(&self.sent);
        let failed = counts(&self.failed);
        let series = |m: &BTreeMap<String, u64>| -> Vec<(String, u64)> {
            m.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        let (sent, failed) = (series(&sent), series(&failed));
        t.counter(
            "sitewatch_notifications_sent_total",
            "Notifications this sink delivered, by channel.",
            Some("channel"),
            &refs(&sent),
        );
        t.counter(
            "sitewatch_notifications_failed_total",
            "Notifications this sink gave up on (permanent error or retried for retry_for), by channel.",
            Some("channel"),
            &refs(&failed),
        );
        let backlog = self.backlog.lock().map(|b| b.clone()).unwrap_or_default();
        let pending: Vec<(Vec<(&str, &str)>, f64)> = backlog
            .iter()
            .map(|(c, n, _)| (vec![("channel", c.as_str())], *n as f64))
            .collect();
        let oldest: Vec<(Vec<(&str, &str)>, f64)> = backlog
            .iter()
            .map(|(c, _, age)| (vec![("channel", c.as_str())], *age))
            .collect();
        t.gauge_labelled(
            "sitewatch_notifications_pending",
            "Notifications in the outbox not yet delivered or given up, by channel.",
            &pending,
        );
        t.gauge_labelled(
            "sitewatch_notifications_oldest_pending_age_seconds",
            "Age of the oldest pending notification, by channel.",
            &oldest,
        );
    }
}

fn refs(v: &[(String, u64)]) -> Vec<(&str, u64)> {
    v.iter().map(|(k, n)| (k.as_str(), *n)).collect()
}

fn bump(m: &Mutex<BTreeMap<String, u64>>, channel: &str) {
    if let Ok(mut m) = m.lock() {
        *m.entry(channel.to_string()).or_default() += 1;
    }
}
