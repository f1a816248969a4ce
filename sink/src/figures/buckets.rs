//! One site's figures bucket by bucket, per location or with every location added up, from
//! a rollup table: what daily bars and latency charts draw.

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use super::source::Source;
use super::window::uptime_pct;
use crate::rollups::{Resolution, Sketch};

/// The location of rows that add up every location of the site.
pub const ALL_LOCATIONS: &str = "all";

/// One rollup row of a site: a location's (or every location's) checks in one hour or day.
#[derive(Debug, Clone)]
pub struct BucketFigures {
    /// Where the checks came from ([`ALL_LOCATIONS`]: everywhere).
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

/// Whose checks a row adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// One location's: a row per location and bucket.
    Location,
    /// The site's, every location added up: a row per bucket (location [`ALL_LOCATIONS`]),
    /// read from the per-site table where the source has one.
    Site,
}

/// The rollup rows of site `site_id` with `since <= bucket < until`, `per` location (by
/// location then bucket) or site (by bucket). A row whose sketch does not decode keeps its
/// counts and loses its latencies (logged).
pub async fn by_bucket<C: GenericClient>(
    client: &C,
    source: Source,
    per: Per,
    site_id: i32,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<BucketFigures>, tokio_postgres::Error> {
    let resolution = match per {
        Per::Location => source.resolution(),
        Per::Site => source.site_resolution(),
    };
    let Some(resolution) = resolution else {
        return Ok(Vec::new());
    };
    let rows = read(client, resolution, site_id, since, until).await?;
    if per == Per::Site && resolution.per_location() {
        return Ok(add_up(rows));
    }
    Ok(rows)
}

/// Per-location rows added up into one row per bucket.
fn add_up(mut rows: Vec<BucketFigures>) -> Vec<BucketFigures> {
    let mut sum: Vec<BucketFigures> = Vec::new();
    rows.sort_by_key(|r| r.bucket);
    for row in rows {
        match sum.last_mut() {
            Some(s) if s.bucket == row.bucket => {
                s.up += row.up;
                s.degraded += row.degraded;
                s.down += row.down;
                s.down_ms += row.down_ms;
                s.degraded_ms += row.degraded_ms;
                s.latency.merge(&row.latency);
            }
            _ => sum.push(BucketFigures {
                location: ALL_LOCATIONS.into(),
                ..row
            }),
        }
    }
    sum
}

async fn read<C: GenericClient>(
    client: &C,
    resolution: Resolution,
    site_id: i32,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<BucketFigures>, tokio_postgres::Error> {
    let table = resolution.table();
    let (location, join) = if resolution.per_location() {
        (
            "l.name".to_string(),
            "JOIN locations l ON l.id = r.location_id",
        )
    } else {
        (format!("'{ALL_LOCATIONS}'::text"), "")
    };
    let rows = client
        .query(
            &format!(
                "SELECT {location}, r.bucket, r.up, r.degraded, r.down, r.down_ms,
                        r.degraded_ms, r.latency
                 FROM {table} r {join}
                 WHERE r.site_id = $1 AND r.bucket >= $2 AND r.bucket < $3
                 ORDER BY 1, r.bucket"
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
