//! One site's figures bucket by bucket and location, from a rollup table: what daily bars
//! and latency charts draw.

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use super::source::Source;
use super::window::uptime_pct;
use crate::rollups::Sketch;

/// One rollup row of a site: a location's checks in one hour or day.
#[derive(Debug, Clone)]
pub struct BucketFigures {
    /// Where the checks came from.
    pub location: String,
    /// Start of the hour or day.
    pub bucket: DateTime<Utc>,
    /// Checks that were `up`.
    pub up: i64,
    /// Checks that were `degraded`.
    pub degraded: i64,
    /// Checks that were `down`.
    pub down: i64,
    /// Time covered by `down` checks, ms.
    pub down_ms: i64,
    /// Time covered by `degraded` checks, ms.
    pub degraded_ms: i64,
    /// Latency histogram of the bucket's checks.
    pub latency: Sketch,
}

impl BucketFigures {
    /// Checks in the bucket.
    pub fn checks(&self) -> i64 {
        self.up + self.degraded + self.down
    }

    /// Share of the checks that were not `down`, in percent.
    pub fn uptime_pct(&self) -> Option<f64> {
        uptime_pct(self.checks(), self.down)
    }

    /// A percentile of total response time, ms.
    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        self.latency.quantile(q).map(|us| us / 1000.0)
    }
}

/// The rollup rows of site `site_id` with `since <= bucket < until`, by location then bucket.
/// A row whose sketch does not decode keeps its counts and loses its latencies (logged).
pub async fn by_bucket<C: GenericClient>(
    client: &C,
    source: Source,
    site_id: i32,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<BucketFigures>, tokio_postgres::Error> {
    let Some(table) = source.rollup_table() else {
        return Ok(Vec::new());
    };
    let rows = client
        .query(
            &format!(
                "SELECT l.name, r.bucket, r.up, r.degraded, r.down, r.down_ms, r.degraded_ms,
                        r.latency
                 FROM {table} r JOIN locations l ON l.id = r.location_id
                 WHERE r.site_id = $1 AND r.bucket >= $2 AND r.bucket < $3
                 ORDER BY l.name, r.bucket"
            ),
            &[&site_id, &since, &until],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let bucket: DateTime<Utc> = r.get(1);
            let latency = Sketch::decode(r.get(7)).unwrap_or_else(|e| {
                tracing::warn!(site_id, %bucket, error = %e, "a rollup's latency sketch is unreadable; its latencies are left out");
                Sketch::default()
            });
            BucketFigures {
                location: r.get(0),
                bucket,
                up: i64::from(r.get::<_, i32>(2)),
                degraded: i64::from(r.get::<_, i32>(3)),
                down: i64::from(r.get::<_, i32>(4)),
                down_ms: r.get(5),
                degraded_ms: r.get(6),
                latency,
            }
        })
        .collect())
}
