//! The dispatcher's periodic pass, one transaction at the database's clock (every sink
//! runs it; idempotency keys make a second run write nothing):
//!
//! - flapping sites that kept their verdict for a whole window are stable again;
//! - an open incident with no trigger for a channel its site is routed to (it was
//!   suppressed when it opened: silence, maintenance, flapping) gets its trigger once
//!   nothing suppresses it any more;
//! - with `reminder_every`, each open incident gets reminder number
//!   `floor((now - opened_at) / reminder_every)` on each channel that had its trigger
//!   (a sink that was down does not send the ones it missed, only the latest);
//! - maintenance windows are recorded per covered site in `maintenance_periods`, from a
//!   day back (a sink stopped for less catches up) to [`MAINTENANCE_AHEAD`] ahead, so the
//!   web role (which only reads the database) can show scheduled maintenance. The config is
//!   the truth for what has not ended: a row that has not begun and is no longer an
//!   occurrence of a configured window covering its site (window removed, moved, or the
//!   site no longer covered) is deleted; one in progress is ended now; a changed duration
//!   moves the end of rows that have not ended. Ended rows are history and never change.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::file::Alerts;
use super::notification::NotificationKind;
use super::outbox::{self, incident_notice, key, load_sites, suppressed, triggered, Outgoing};
use crate::verdicts::Incident;

/// How far back maintenance windows are recorded (a sink stopped for less catches up).
const MAINTENANCE_LOOKBACK: chrono::Duration = chrono::Duration::days(1);

/// How far ahead maintenance windows are recorded (shown as scheduled on the pages).
pub const MAINTENANCE_AHEAD: chrono::Duration = chrono::Duration::days(7);

/// What one pass wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Triggers written late (after their suppression ended).
    pub triggers: u64,
    /// Reminders written.
    pub reminders: u64,
    /// Sites stable again after flapping.
    pub stable: u64,
    /// Maintenance periods recorded (new, or their end moved).
    pub maintenance: u64,
    /// Maintenance periods that are no longer configured: not begun (deleted) or in
    /// progress (ended now).
    pub maintenance_dropped: u64,
}

/// Runs one pass.
pub async fn pass(client: &mut Client, alerts: &Alerts) -> Result<Pass, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let now: DateTime<Utc> = tx.query_one("SELECT now()", &[]).await?.get(0);
    let mut done = Pass::default();
    if let Some(f) = alerts.policy.flapping {
        let window = chrono::Duration::from_std(f.window).unwrap_or(chrono::Duration::MAX);
        done.stable = tx
            .execute(
                "DELETE FROM flapping_sites WHERE last_change_at <= $1",
                &[&now
                    .checked_sub_signed(window)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC)],
            )
            .await?;
    }
    let open = tx
        .query(
            &format!(
                "SELECT {} FROM incidents WHERE resolved_at IS NULL ORDER BY id",
                Incident::OPEN_COLUMNS
            ),
            &[],
        )
        .await?;
    let ids: Vec<i32> = open.iter().map(|r| r.get(1)).collect();
    let sites = if alerts.policy.routes.is_empty() {
        Vec::new()
    } else {
        load_sites(&tx, &ids).await?
    };
    let mut out: Vec<Outgoing> = Vec::new();
    for row in &open {
        let site_id: i32 = row.get(1);
        let Some(site) = sites.iter().find(|s| s.id == site_id) else {
            continue;
        };
        let incident = Incident::open_from_row(row);
        if suppressed(&tx, alerts, site, now).await?.is_some() {
            continue;
        }
        let notified = triggered(&tx, incident.id).await?;
        let routed = alerts
            .policy
            .channels_for(&site.name, &site.tags, site.group.as_deref());
        let down_for = sitewatch_checks::ops::units::format_duration(
            (now - incident.started_at)
                .to_std()
                .map(|d| std::time::Duration::from_secs(d.as_secs()))
                .unwrap_or_default(),
        );
        for channel in &routed {
            if notified.iter().any(|n| n.as_str() == *channel) {
                continue;
            }
            let summary = format!("{} is down (since {down_for} ago)", site.name);
            let k = key(&incident, "trigger", channel);
            out.push(incident_notice(
                site,
                &incident,
                NotificationKind::Trigger,
                channel,
                &k,
                summary,
                now,
            ));
            done.triggers += 1;
        }
        let Some(every) = alerts.policy.reminder_every else {
            continue;
        };
        let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        let n = (now - incident.opened_at).num_milliseconds() / every.num_milliseconds().max(1);
        if n < 1 {
            continue;
        }
        for channel in routed
            .iter()
            .filter(|c| notified.iter().any(|n| n.as_str() == **c))
        {
            let summary = format!("{} is still down ({down_for})", site.name);
            let k = key(&incident, &format!("reminder-{n}"), channel);
            out.push(incident_notice(
                site,
                &incident,
                NotificationKind::Reminder,
                channel,
                &k,
                summary,
                now,
            ));
        }
    }
    let written = outbox::insert(&tx, &out).await?;
    done.reminders = written.saturating_sub(done.triggers);
    (done.maintenance, done.maintenance_dropped) = record_maintenance(&tx, alerts, now).await?;
    tx.commit().await?;
    Ok(done)
}

/// Records the maintenance windows' occurrences from [`MAINTENANCE_LOOKBACK`] back to
/// [`MAINTENANCE_AHEAD`] ahead, per covered site, and drops the rows not ended that the
/// config no longer gives (see the module doc). Returns (recorded, dropped).
async fn record_maintenance(
    tx: &tokio_postgres::Transaction<'_>,
    alerts: &Alerts,
    now: DateTime<Utc>,
) -> Result<(u64, u64), tokio_postgres::Error> {
    let (mut site, mut name, mut starts, mut ends) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    if !alerts.policy.maintenance.is_empty() {
        let all: Vec<i32> = tx
            .query("SELECT id FROM sites", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let sites = load_sites(tx, &all).await?;
        for w in &alerts.policy.maintenance {
            let occurrences = w.occurrences(now - MAINTENANCE_LOOKBACK, now + MAINTENANCE_AHEAD);
            for s in sites
                .iter()
                .filter(|s| w.covers(&s.name, &s.tags, s.group.as_deref()))
            {
                for (from, to) in &occurrences {
                    site.push(s.id);
                    name.push(w.name.clone());
                    starts.push(*from);
                    ends.push(*to);
                }
            }
        }
    }
    // Rows not ended that are not among the occurrences: deleted before they begin, ended
    // now while in progress (the notifications already follow the config).
    let stale = "NOT EXISTS (SELECT 1 FROM UNNEST($2::int[], $3::text[], $4::timestamptz[]) AS o(site_id, window_name, starts_at)
                  WHERE o.site_id = m.site_id AND o.window_name = m.window_name AND o.starts_at = m.starts_at)";
    let deleted = tx
        .execute(
            &format!("DELETE FROM maintenance_periods m WHERE m.starts_at >= $1 AND {stale}"),
            &[&now, &site, &name, &starts],
        )
        .await?;
    let ended = tx
        .execute(
            &format!(
                "UPDATE maintenance_periods m SET ends_at = $1
                 WHERE m.starts_at < $1 AND m.ends_at > $1 AND {stale}"
            ),
            &[&now, &site, &name, &starts],
        )
        .await?;
    if site.is_empty() {
        return Ok((0, deleted + ended));
    }
    // DO NOTHING, then an UPDATE of only the ends that changed: a pass that changes
    // nothing locks no row (several sinks run it).
    let inserted = tx
        .execute(
            "INSERT INTO maintenance_periods (site_id, window_name, starts_at, ends_at)
             SELECT * FROM UNNEST($1::int[], $2::text[], $3::timestamptz[], $4::timestamptz[])
             ON CONFLICT DO NOTHING",
            &[&site, &name, &starts, &ends],
        )
        .await?;
    let moved = tx
        .execute(
            "UPDATE maintenance_periods m SET ends_at = o.ends_at
             FROM UNNEST($1::int[], $2::text[], $3::timestamptz[], $4::timestamptz[])
                  AS o(site_id, window_name, starts_at, ends_at)
             WHERE o.site_id = m.site_id AND o.window_name = m.window_name
               AND o.starts_at = m.starts_at AND m.ends_at > $5 AND m.ends_at <> o.ends_at",
            &[&site, &name, &starts, &ends, &now],
        )
        .await?;
    Ok((inserted + moved, deleted + ended))
}
