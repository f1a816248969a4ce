//! Writing the outbox inside the caller's transaction: what notifications an incident
//! opened or resolved (and a site's verdict changes, for flapping) cause, by the rules:
//!
//! - An incident opened: a `trigger` for each channel its site is routed to, unless the
//!   site is *suppressed*: a silence matches it now, a maintenance window covers it at the
//!   time the incident opened, or it is flapping. Suppressed notices are not written; the
//!   periodic pass (`periodic`) writes the trigger once nothing suppresses it any more and
//!   the incident is still open.
//! - An incident resolved: a `resolve` for each channel a trigger was written for (so no
//!   receiver is left with an open alert, and none hears of an incident it never saw),
//!   when `send_on_resolved`.
//! - More than `flapping.changes` verdict changes within `flapping.window`: one `flapping`
//!   notice per routed channel, then none of any kind for the site until it has kept
//!   its verdict for a whole window.
//!
//! Every row has an idempotency key stable per (incident, kind, channel); inserts are
//! `ON CONFLICT DO NOTHING`, so a redelivered batch, a second sink or a repeated pass
//! writes one row.

use chrono::{DateTime, Utc};
use tokio_postgres::types::Json;
use tokio_postgres::GenericClient;

use super::file::Alerts;
use super::notification::{Notification, NotificationKind};
use crate::verdicts::{Incident, IncidentChange, Saved};

/// A site as routing and payloads need it.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    /// `sites.id`.
    pub id: i32,
    /// `sites.name`.
    pub name: String,
    /// Its URL.
    pub url: Option<String>,
    /// Its tags (from the catalog).
    pub tags: Vec<String>,
    /// Its group (from the catalog).
    pub group: Option<String>,
}

/// A notification to insert.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `sites.id`.
    pub site_id: i32,
    /// The notification (its key, kind and channel included).
    pub notification: Notification,
}

/// Writes the notifications `saved` causes; returns the rows written.
pub async fn write<C: GenericClient>(
    client: &C,
    alerts: &Alerts,
    saved: &Saved,
) -> Result<u64, tokio_postgres::Error> {
    if alerts.policy.routes.is_empty() {
        return Ok(0);
    }
    let mut ids: Vec<i32> = saved.changes.iter().map(|c| c.site_id).collect();
    ids.extend(saved.verdict_changes.iter().map(|c| c.site_id));
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(0);
    }
    let sites = load_sites(client, &ids).await?;
    let mut out = Vec::new();
    let mut written = 0;
    for site in &sites {
        flapping(client, alerts, site, saved, &mut out).await?;
    }
    for change in &saved.changes {
        let Some(site) = sites.iter().find(|s| s.id == change.site_id) else {
            continue;
        };
        let channels = alerts
            .policy
            .channels_for(&site.name, &site.tags, site.group.as_deref());
        if change.opened {
            let at = change.incident.opened_at;
            if suppressed(client, alerts, site, at).await?.is_none() {
                for channel in channels {
                    out.push(outgoing(
                        site,
                        change,
                        NotificationKind::Trigger,
                        channel,
                        at,
                    ));
                }
            }
        } else if alerts.policy.send_on_resolved {
            // Triggers written earlier in this transaction count too.
            written += insert(client, &std::mem::take(&mut out)).await?;
            let notified = triggered(client, change.incident.id).await?;
            let at = change
                .incident
                .resolved_at
                .unwrap_or(change.incident.opened_at);
            // Every channel that heard of it, routed there still or not.
            for channel in notified.iter().map(String::as_str) {
                out.push(outgoing(
                    site,
                    change,
                    NotificationKind::Resolve,
                    channel,
                    at,
                ));
            }
        }
    }
    Ok(written + insert(client, &out).await?)
}

/// One flapping notice per routed channel when the site's verdict changed more than
/// `changes` times within the window; a site already flapping only moves its last change.
async fn flapping<C: GenericClient>(
    client: &C,
    alerts: &Alerts,
    site: &SiteInfo,
    saved: &Saved,
    out: &mut Vec<Outgoing>,
) -> Result<(), tokio_postgres::Error> {
    let Some(policy) = alerts.policy.flapping else {
        return Ok(());
    };
    let Some(last) = saved
        .verdict_changes
        .iter()
        .filter(|c| c.site_id == site.id)
        .map(|c| c.at)
        .max()
    else {
        return Ok(());
    };
    let moved = client
        .execute(
            "UPDATE flapping_sites SET last_change_at = greatest(last_change_at, $2)
             WHERE site_id = $1",
            &[&site.id, &last],
        )
        .await?;
    if moved > 0 {
        return Ok(());
    }
    let window = chrono::Duration::from_std(policy.window).unwrap_or(chrono::Duration::MAX);
    let changes: i64 = client
        .query_one(
            "SELECT count(*) FROM site_events
             WHERE site = $1 AND kind = 'verdict' AND at > $2 AND at <= $3",
            &[
                &site.name,
                &last
                    .checked_sub_signed(window)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                &last,
            ],
        )
        .await?
        .get(0);
    if changes <= i64::from(policy.changes) {
        return Ok(());
    }
    client
        .execute(
            "INSERT INTO flapping_sites (site_id, since, last_change_at) VALUES ($1, $2, $2)
             ON CONFLICT (site_id) DO NOTHING",
            &[&site.id, &last],
        )
        .await?;
    if silenced(client, site).await? || in_maintenance(alerts, site, last) {
        return Ok(());
    }
    let summary = format!(
        "{} changed verdict {changes} times within {}; quiet until it is stable",
        site.name,
        sitewatch_checks::ops::units::format_duration(policy.window)
    );
    for channel in alerts
        .policy
        .channels_for(&site.name, &site.tags, site.group.as_deref())
    {
        let key = format!(
            "sitewatch:site-{}:flapping-{}:{channel}",
            site.id,
            last.timestamp_micros()
        );
        out.push(Outgoing {
            site_id: site.id,
            notification: Notification {
                kind: NotificationKind::Flapping,
                idempotency_key: key,
                channel: channel.to_string(),
                site: site.name.clone(),
                url: site.url.clone(),
                group: site.group.clone(),
                tags: site.tags.clone(),
                incident_id: None,
                verdict: String::new(),
                summary: summary.clone(),
                started_at: None,
                resolved_at: None,
                locations: Vec::new(),
                first_error: None,
                created_at: last,
            },
        });
    }
    Ok(())
}

/// Why notices for `site` are not sent now (an incident event at `at`): a silence, a
/// maintenance window or flapping; `None` if nothing suppresses them.
pub async fn suppressed<C: GenericClient>(
    client: &C,
    alerts: &Alerts,
    site: &SiteInfo,
    at: DateTime<Utc>,
) -> Result<Option<&'static str>, tokio_postgres::Error> {
    if in_maintenance(alerts, site, at) {
        return Ok(Some("maintenance"));
    }
    if silenced(client, site).await? {
        return Ok(Some("silence"));
    }
    let flapping = client
        .query_opt(
            "SELECT 1 FROM flapping_sites WHERE site_id = $1",
            &[&site.id],
        )
        .await?;
    Ok(flapping.map(|_| "flapping"))
}

fn in_maintenance(alerts: &Alerts, site: &SiteInfo, at: DateTime<Utc>) -> bool {
    alerts
        .policy
        .maintenance
        .iter()
        .any(|w| w.covers(&site.name, &site.tags, site.group.as_deref()) && w.active_at(at))
}

/// Whether an active silence matches the site (by name or one of its tags).
async fn silenced<C: GenericClient>(
    client: &C,
    site: &SiteInfo,
) -> Result<bool, tokio_postgres::Error> {
    let tags: Vec<String> = site.tags.iter().map(|t| format!("tag:{t}")).collect();
    let row = client
        .query_opt(
            "SELECT 1 FROM silences
             WHERE expired_at IS NULL AND ends_at > now() AND (matcher = $1 OR matcher = ANY($2))
             LIMIT 1",
            &[&site.name, &tags],
        )
        .await?;
    Ok(row.is_some())
}

/// Channels a trigger was written for, for `incident`.
pub async fn triggered<C: GenericClient>(
    client: &C,
    incident: Option<i64>,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT channel FROM notifications WHERE incident_id = $1 AND kind = 'trigger'",
            &[&incident],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The sites `ids` with their catalog's URL, tags and group.
pub async fn load_sites<C: GenericClient>(
    client: &C,
    ids: &[i32],
) -> Result<Vec<SiteInfo>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT s.id, s.name, coalesce(c.url, s.url), coalesce(c.tags, '{}'), c.site_group
             FROM sites s LEFT JOIN site_catalog c ON c.site = s.name
             WHERE s.id = ANY($1) ORDER BY s.id",
            &[&ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SiteInfo {
            id: r.get(0),
            name: r.get(1),
            url: r.get(2),
            tags: r.get(3),
            group: r.get(4),
        })
        .collect())
}

/// The notification of `kind` about `change`'s incident for `channel`.
fn outgoing(
    site: &SiteInfo,
    change: &IncidentChange,
    kind: NotificationKind,
    channel: &str,
    at: DateTime<Utc>,
) -> Outgoing {
    let summary = match kind {
        NotificationKind::Resolve if change.verdict == "up" => {
            format!("{} is up again: {}", site.name, change.reason)
        }
        NotificationKind::Resolve => format!(
            "{} is no longer down ({}): {}",
            site.name, change.verdict, change.reason
        ),
        _ => format!("{} is down: {}", site.name, change.reason),
    };
    let mut out = incident_notice(
        site,
        &change.incident,
        kind,
        channel,
        &key(&change.incident, kind.as_str(), channel),
        summary,
        at,
    );
    if kind == NotificationKind::Resolve && !change.verdict.is_empty() {
        // Resolved by `up` or by `degraded` (fewer failing locations than the quorum).
        out.notification.verdict = change.verdict.clone();
    }
    out
}

/// A notification about `incident`.
pub fn incident_notice(
    site: &SiteInfo,
    incident: &Incident,
    kind: NotificationKind,
    channel: &str,
    key: &str,
    summary: String,
    at: DateTime<Utc>,
) -> Outgoing {
    Outgoing {
        site_id: site.id,
        notification: Notification {
            kind,
            idempotency_key: key.to_string(),
            channel: channel.to_string(),
            site: site.name.clone(),
            url: site.url.clone(),
            group: site.group.clone(),
            tags: site.tags.clone(),
            incident_id: incident.id,
            verdict: match kind {
                NotificationKind::Resolve => "up".to_string(),
                _ => "down".to_string(),
            },
            summary,
            started_at: Some(incident.started_at),
            resolved_at: incident.resolved_at,
            locations: incident.locations.iter().cloned().collect(),
            first_error: incident.first_error.clone(),
            created_at: at,
        },
    }
}

/// The idempotency key of (incident, `kind`, channel); `kind` is e.g. `trigger` or
/// `reminder-3`.
pub fn key(incident: &Incident, kind: &str, channel: &str) -> String {
    format!(
        "sitewatch:incident-{}:{kind}:{channel}",
        incident.id.unwrap_or_default()
    )
}

/// Inserts `rows`, skipping keys already written; returns the rows written.
pub async fn insert<C: GenericClient>(
    client: &C,
    rows: &[Outgoing],
) -> Result<u64, tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut incident = Vec::new();
    let mut site = Vec::new();
    let mut kind = Vec::new();
    let mut channel = Vec::new();
    let mut key = Vec::new();
    let mut payload = Vec::new();
    for r in rows {
        let n = &r.notification;
        incident.push(n.incident_id);
        site.push(r.site_id);
        kind.push(n.kind.as_str());
        channel.push(n.channel.as_str());
        key.push(n.idempotency_key.as_str());
        payload.push(Json(n));
    }
    client
        .execute(
            "INSERT INTO notifications (incident_id, site_id, kind, channel, idempotency_key, payload)
             SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[],
                                  $6::jsonb[])
             ON CONFLICT (idempotency_key) DO NOTHING",
            &[&incident, &site, &kind, &channel, &key, &payload],
        )
        .await
}
