//! The one place the web role reads maintenance: `maintenance_periods` (schema version 5),
//! which the sink's alerting pass fills from its config's windows a day back and a week
//! ahead (so scheduled maintenance can be shown by a role that only reads the database).

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::model::{Maintenance, MaintenanceState};

/// Most periods one answer lists (90 days of a daily window over 100 sites is 9,000; the
/// sink records a week ahead, so what is cut off first is old).
pub const LIMIT: i64 = 20_000;

/// Maintenance periods of the sites `site_ids` (all sites when `None`) that end after
/// `since`, by start, the latest [`LIMIT`]; their state as of `now`.
pub async fn periods(
    client: &Client,
    site_ids: Option<&[i32]>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Maintenance>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT s.name, m.window_name, m.starts_at, m.ends_at
             FROM maintenance_periods m JOIN sites s ON s.id = m.site_id
             WHERE m.ends_at > $1 AND ($2::int[] IS NULL OR m.site_id = ANY($2))
             ORDER BY m.starts_at DESC, s.name DESC, m.window_name DESC
             LIMIT $3",
            &[&since, &site_ids, &LIMIT],
        )
        .await?;
    Ok(rows
        .iter()
        .rev()
        .map(|r| {
            let (starts_at, ends_at): (DateTime<Utc>, DateTime<Utc>) = (r.get(2), r.get(3));
            Maintenance {
                site: r.get(0),
                window: r.get(1),
                starts_at,
                ends_at,
                duration_seconds: (ends_at - starts_at).num_seconds().max(0),
                state: state_at(starts_at, ends_at, now),
            }
        })
        .collect())
}

/// Ended, active or scheduled at `now` (start included, end excluded).
pub fn state_at(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> MaintenanceState {
    if ends_at <= now {
        MaintenanceState::Ended
    } else if starts_at <= now {
        MaintenanceState::Active
    } else {
        MaintenanceState::Scheduled
    }
}

/// The period of `site` in progress at `now`, if any (the one ending last).
pub fn active<'a>(periods: &'a [Maintenance], site: &str) -> Option<&'a Maintenance> {
    periods
        .iter()
        .filter(|m| m.site == site && m.state == MaintenanceState::Active)
        .max_by_key(|m| m.ends_at)
}

/// The window each site is in now (the one ending last), by site name.
pub async fn active_now(
    client: &Client,
) -> Result<std::collections::HashMap<String, String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (s.name) s.name, m.window_name
             FROM maintenance_periods m JOIN sites s ON s.id = m.site_id
             WHERE m.ends_at > now() AND m.starts_at <= now()
             ORDER BY s.name, m.ends_at DESC",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
