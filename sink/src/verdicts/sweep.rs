//! The sweep: sites no result arrives for are judged at the database's clock, so a
//! location (or every location) that stopped reporting leaves the vote and raises its
//! `location_silent` event, and the verdict follows. The consume loop runs it only for the
//! results partitions this sink owns and has consumed to their end (a sink that is behind
//! would take its own backlog for silence); the sites are locked as the batch transaction
//! locks them, and judged again under the lock, so two sinks cannot both act.

use tokio_postgres::Client;

use super::site::SILENT_AFTER_INTERVALS;
use super::{load, save, Saved, VerdictError};

/// Sites whose latest results came from one of `partitions` and that have a location not
/// yet silent whose latest counted check is more than three intervals old.
pub async fn sweep_candidates(
    client: &Client,
    partitions: &[i32],
) -> Result<Vec<i32>, VerdictError> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT DISTINCT v.site_id
             FROM site_verdicts v
             JOIN sites s ON s.id = v.site_id
             LEFT JOIN site_catalog c ON c.site = s.name
             JOIN location_states ls ON ls.site_id = v.site_id
             WHERE v.kafka_partition = ANY($1)
               AND ls.silent_since IS NULL
               AND ls.last_applied_at < now() - $2::float8 * coalesce(c.interval_ms, v.interval_ms)
                                               * interval '1 millisecond'
             ORDER BY v.site_id",
            &[&partitions, &(SILENT_AFTER_INTERVALS as f64)],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Judges `sites` at the database's clock in one transaction; returns what was written.
pub async fn sweep(client: &mut Client, sites: &[i32]) -> Result<Saved, VerdictError> {
    sweep_with(client, sites, None).await
}

/// As [`sweep`], also writing the notifications the changes cause under `alerts`.
pub async fn sweep_with(
    client: &mut Client,
    sites: &[i32],
    alerts: Option<&crate::alerts::Alerts>,
) -> Result<Saved, VerdictError> {
    if sites.is_empty() {
        return Ok(Saved::default());
    }
    let tx = client.transaction().await?;
    // In id order, as the batch transaction locks them.
    tx.query(
        "SELECT id FROM sites WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&sites],
    )
    .await?;
    let now: chrono::DateTime<chrono::Utc> = tx.query_one("SELECT now()", &[]).await?.get(0);
    let mut judged: Vec<_> = load(&tx, sites)
        .await?
        .into_values()
        .filter_map(|mut site| site.sweep(now).then_some(site))
        .collect();
    let saved = save(&tx, &mut judged).await?;
    if let Some(alerts) = alerts {
        crate::alerts::outbox::write(&tx, alerts, &saved).await?;
    }
    tx.commit().await?;
    Ok(saved)
}
