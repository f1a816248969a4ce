//! Maintenance periods for the pages: what `maintenance_periods` holds (written by the
//! sink from its config file's windows: those begun, and the next week's scheduled ones),
//! recent, in progress and upcoming, for a set of sites.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

/// How far back finished maintenance is shown.
const SHOWN_DAYS: i64 = 7;

/// One maintenance period of one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// The site.
    pub site: String,
    /// The window's name in the sink's config file.
    pub window: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
}

impl Maintenance {
    /// `scheduled`, `in progress` or `done` at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if now < self.starts_at {
            "scheduled"
        } else if now < self.ends_at {
            "in progress"
        } else {
            "done"
        }
    }
}

/// The periods of `sites` that ended within the last week or have not ended, by start.
pub async fn load(
    client: &Client,
    sites: &[&str],
) -> Result<Vec<Maintenance>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT s.name, m.window_name, m.starts_at, m.ends_at
             FROM maintenance_periods m JOIN sites s ON s.id = m.site_id
             WHERE s.name = ANY($1) AND m.ends_at > now() - $2::float8 * interval '1 day'
             ORDER BY m.starts_at, s.name",
            &[&sites, &(SHOWN_DAYS as f64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Maintenance {
            site: r.get(0),
            window: r.get(1),
            starts_at: r.get(2),
            ends_at: r.get(3),
        })
        .collect())
}
