//! Tiered retention: raw results for `raw_days` (daily partitions dropped whole), hourly
//! rollups for `hourly_days` (monthly partitions dropped once wholly older), daily rollups
//! (per location and per site) kept, or for `daily_days`. Rollups are written in the
//! transaction that stores the results they count, so dropping raw results never loses what
//! the rollups say about them.
//! Alert history (finished notifications, ended maintenance periods) is kept as long as the
//! hourly rollups: the pages show at most 90 days of it, and pending notifications are never
//! touched.

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio_postgres::Client;

use crate::partitions::{self, RESULTS, ROLLUP_HOURLY};
use crate::rollups::Resolution;

/// How long each tier is kept, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw results (`results`).
    pub raw_days: u64,
    /// Hourly rollups.
    pub hourly_days: u64,
    /// Daily rollups (`None`: kept).
    pub daily_days: Option<u64>,
}

/// What one pass dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Raw partitions.
    pub raw: Vec<String>,
    /// Hourly rollup partitions.
    pub hourly: Vec<String>,
    /// Daily rollup rows.
    pub daily_rows: u64,
    /// Per-site daily rollup rows.
    pub site_daily_rows: u64,
    /// Notifications delivered or given up on before the hourly cut.
    pub notifications: u64,
    /// Maintenance periods ended before the hourly cut.
    pub maintenance_periods: u64,
}

/// Drops what is past retention as of `today`.
pub async fn apply(
    client: &mut Client,
    retention: &Retention,
    today: NaiveDate,
) -> Result<Dropped, tokio_postgres::Error> {
    let before = |days: u64| today.checked_sub_days(Days::new(days));
    let mut dropped = Dropped::default();
    if let Some(cut) = before(retention.raw_days) {
        dropped.raw = partitions::drop_before(client, &RESULTS, cut).await?;
        if !dropped.raw.is_empty() {
            // A rollup rebuild must not start before what is still there.
            client
                .execute(
                    "UPDATE retention_state
                     SET raw_dropped_before = GREATEST(raw_dropped_before, $1)",
                    &[&cut],
                )
                .await?;
        }
    }
    if let Some(cut) = before(retention.hourly_days) {
        dropped.hourly = partitions::drop_before(client, &ROLLUP_HOURLY, cut).await?;
        let cut = midnight(cut);
        dropped.notifications = client
            .execute(
                "DELETE FROM notifications WHERE COALESCE(delivered_at, failed_at) < $1",
                &[&cut],
            )
            .await?;
        dropped.maintenance_periods = client
            .execute(
                "DELETE FROM maintenance_periods WHERE ends_at < $1",
                &[&cut],
            )
            .await?;
    }
    if let Some(cut) = retention.daily_days.and_then(before) {
        let cut = midnight(cut);
        let delete = |r: Resolution| format!("DELETE FROM {} WHERE bucket < $1", r.table());
        dropped.daily_rows = client.execute(&delete(Resolution::Daily), &[&cut]).await?;
        dropped.site_daily_rows = client
            .execute(&delete(Resolution::SiteDaily), &[&cut])
            .await?;
    }
    Ok(dropped)
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}
