//! The dispatcher: a task inside the sink that delivers the outbox. Each round claims due
//! rows with `FOR UPDATE SKIP LOCKED` in one transaction (several sinks share the work;
//! a row another sink holds is skipped, so none is sent twice at once), delivers them
//! concurrently through their channels, records each outcome and commits. A sink killed
//! mid-round leaves its rows unmarked and unlocked: they are delivered again (at least
//! once; the idempotency key lets the receiver de-duplicate).
//!
//! A receiver hears of an incident in order: a row is not claimed while an earlier row
//! of its (incident, channel) is still pending (a resolve waits for its trigger's retries).
//!
//! Outcomes: delivered → `delivered_at`; `Retry` → the next attempt after
//! `retry_base * 2^(attempts-1)` (at most 10 minutes), unless that would be later than
//! `retry_for` after the row was written, then `failed_at`; `Permanent` (or a channel the
//! config file no longer has) → `failed_at`. Shutdown lets the round in flight finish.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_postgres::types::Json;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::channel::DeliveryError;
use super::file::Alerts;
use super::metrics::AlertMetrics;
use super::notification::Notification;
use super::periodic;
use crate::database::Database;

/// Most rows claimed per round.
const CLAIM: i64 = 32;
/// How often the dispatcher looks for due rows.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often the periodic pass runs (reminders, late triggers, maintenance).
pub const PASS_EVERY: Duration = Duration::from_secs(5);

/// A claimed row's (id, channel, attempts before, created_at) and its delivery's result.
type Outcome = (i64, String, i32, DateTime<Utc>, Result<(), DeliveryError>);

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Rows claimed.
    pub claimed: usize,
    /// Delivered.
    pub delivered: usize,
    /// Put back for a later attempt.
    pub retried: usize,
    /// Given up.
    pub failed: usize,
}

/// Delivers until `token` is cancelled (the round in flight finishes first).
pub async fn run(
    db: Database,
    alerts: Arc<Alerts>,
    metrics: Arc<AlertMetrics>,
    token: CancellationToken,
) {
    let Some(mut client) = db.connect(&token).await else {
        return;
    };
    let mut last_pass: Option<tokio::time::Instant> = None;
    tracing::info!(
        channels = alerts.channels.len(),
        "notification dispatcher started"
    );
    loop {
        if token.is_cancelled() {
            break;
        }
        if client.is_closed() {
            match db.connect(&token).await {
                Some(c) => client = c,
                None => break,
            }
        }
        if last_pass.is_none_or(|at| at.elapsed() >= PASS_EVERY) {
            last_pass = Some(tokio::time::Instant::now());
            if let Err(e) = periodic::pass(&mut client, &alerts).await {
                tracing::warn!(error = %e, "alerts: periodic pass failed; trying again");
            }
            if let Err(e) = metrics.refresh(&client).await {
                tracing::debug!(error = %e, "alerts: cannot read the outbox's backlog");
            }
        }
        match round(&mut client, &alerts, &metrics).await {
            Ok(r) if r.claimed as i64 == CLAIM => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "alerts: delivery round failed; trying again"),
        }
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(POLL_EVERY) => {}
        }
    }
    tracing::info!("notification dispatcher stopped");
}

/// Claims the due rows, delivers them and records the outcomes, in one transaction.
pub async fn round(
    client: &mut Client,
    alerts: &Alerts,
    metrics: &AlertMetrics,
) -> Result<Round, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "SELECT id, channel, payload, attempts, created_at FROM notifications n
             WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
               AND NOT EXISTS (
                   SELECT 1 FROM notifications e
                   WHERE e.incident_id = n.incident_id AND e.channel = n.channel
                     AND e.id < n.id AND e.delivered_at IS NULL AND e.failed_at IS NULL)
             ORDER BY next_attempt_at, id LIMIT $1
             FOR UPDATE SKIP LOCKED",
            &[&CLAIM],
        )
        .await?;
    let mut done = Round {
        claimed: rows.len(),
        ..Round::default()
    };
    if rows.is_empty() {
        return Ok(done);
    }
    let mut deliveries = JoinSet::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for row in &rows {
        let (id, name, attempts, created): (i64, String, i32, DateTime<Utc>) =
            (row.get(0), row.get(1), row.get(3), row.get(4));
        let payload: Json<serde_json::Value> = row.get(2);
        let notification: Result<Notification, _> = serde_json::from_value(payload.0);
        match (alerts.channels.get(&name), notification) {
            (Some(channel), Ok(n)) => {
                let channel = channel.clone();
                deliveries.spawn(async move {
                    let result = channel.deliver(&n).await;
                    (id, name, attempts, created, result)
                });
            }
            (None, _) => outcomes.push((
                id,
                name.clone(),
                attempts,
                created,
                Err(DeliveryError::Permanent(format!(
                    "no channel `{name}` in the config file"
                ))),
            )),
            (_, Err(e)) => outcomes.push((
                id,
                name,
                attempts,
                created,
                Err(DeliveryError::Permanent(format!("unreadable payload: {e}"))),
            )),
        }
    }
    while let Some(joined) = deliveries.join_next().await {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            // A panicking channel leaves its row locked until commit, then due again.
            Err(e) => tracing::error!(error = %e, "alerts: a delivery task failed"),
        }
    }
    let now: DateTime<Utc> = tx.query_one("SELECT now()", &[]).await?.get(0);
    let retry_for =
        chrono::Duration::from_std(alerts.policy.retry_for).unwrap_or(chrono::Duration::MAX);
    for (id, channel, attempts, created, result) in outcomes {
        let attempts = attempts.saturating_add(1);
        match result {
            Ok(()) => {
                tx.execute(
                    "UPDATE notifications SET attempts = $2, delivered_at = now(), last_error = NULL
                     WHERE id = $1",
                    &[&id, &attempts],
                )
                .await?;
                metrics.sent(&channel);
                done.delivered += 1;
            }
            Err(DeliveryError::Retry(error)) => {
                let delay = alerts.policy.retry_delay(attempts.unsigned_abs());
                let next = chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if next - created > retry_for {
                    tracing::warn!(id, %channel, attempts, %error, "alerts: notification failed; retried for retry_for");
                    fail(
                        &tx,
                        id,
                        attempts,
                        &format!("gave up after {attempts} attempts: {error}"),
                    )
                    .await?;
                    metrics.failed(&channel);
                    done.failed += 1;
                } else {
                    tracing::info!(id, %channel, attempts, %error, retry_in = ?delay, "alerts: delivery failed; will retry");
                    tx.execute(
                        "UPDATE notifications SET attempts = $2, last_error = $3, next_attempt_at = $4
                         WHERE id = $1",
                        &[&id, &attempts, &error, &next],
                    )
                    .await?;
                    done.retried += 1;
                }
            }
            Err(DeliveryError::Permanent(error)) => {
                tracing::warn!(id, %channel, %error, "alerts: notification failed permanently");
                fail(&tx, id, attempts, &error).await?;
                metrics.failed(&channel);
                done.failed += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(done)
}

async fn fail(
    tx: &tokio_postgres::Transaction<'_>,
    id: i64,
    attempts: i32,
    error: &str,
) -> Result<u64, tokio_postgres::Error> {
    tx.execute(
        "UPDATE notifications SET attempts = $2, last_error = $3, failed_at = now() WHERE id = $1",
        &[&id, &attempts, &error],
    )
    .await
}
