//! Each site's figures over a window: from raw results (a day or less; exact percentiles),
//! or summed from rollup rows, per site where the source has them (percentiles from the
//! added-up latency sketches); and, for pages that show several windows at once, each site's
//! counts over several windows of one rollup table in a single pass.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::GenericClient;

use super::source::Source;
use crate::codes;
use crate::rollups::{Resolution, Totals};

/// A site's figures over a window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Checks in the window.
    pub checks: i64,
    /// Checks that were `down`.
    pub down: i64,
    /// Checks that were `degraded`.
    pub degraded: i64,
    /// Time covered by `down` checks, seconds (from rollups only).
    pub down_seconds: Option<f64>,
    /// Time covered by `degraded` checks, seconds (from rollups only).
    pub degraded_seconds: Option<f64>,
    /// Median total response time, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile total response time, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile total response time, ms.
    pub p99_ms: Option<f64>,
}

impl Figures {
    /// Share of the checks that were not `down`, in percent.
    pub fn uptime_pct(&self) -> Option<f64> {
        uptime_pct(self.checks, self.down)
    }
}

/// Uptime as every reader states it: the share of checks that were not `down`, in percent
/// (`None` without checks).
pub fn uptime_pct(checks: i64, down: i64) -> Option<f64> {
    (checks > 0).then(|| 100.0 * (checks - down) as f64 / checks as f64)
}

/// Figures by site id (every site, or only `site`), for results since `since` (as
/// `source_for` aligned it).
pub async fn by_site<C: GenericClient>(
    client: &C,
    source: Source,
    since: DateTime<Utc>,
    site: Option<i32>,
) -> Result<HashMap<i32, Figures>, tokio_postgres::Error> {
    match source.site_resolution() {
        None => from_results(client, since, site).await,
        Some(resolution) => from_rollups(client, resolution, since, site).await,
    }
}

async fn from_results<C: GenericClient>(
    client: &C,
    since: DateTime<Utc>,
    site: Option<i32>,
) -> Result<HashMap<i32, Figures>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT site_id, count(*),
                    count(*) FILTER (WHERE outcome = $2),
                    count(*) FILTER (WHERE outcome = $3),
                    percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY total_us)
             FROM results WHERE started_at >= $1 AND ($4::int IS NULL OR site_id = $4)
             GROUP BY site_id",
            &[&since, &codes::DOWN, &codes::DEGRADED, &site],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let p: Vec<f64> = r.get(4);
            let ms = |i: usize| p.get(i).map(|us| us / 1000.0);
            let figures = Figures {
                checks: r.get(1),
                down: r.get(2),
                degraded: r.get(3),
                p50_ms: ms(0),
                p95_ms: ms(1),
                p99_ms: ms(2),
                ..Figures::default()
            };
            (r.get(0), figures)
        })
        .collect())
}

async fn from_rollups<C: GenericClient>(
    client: &C,
    resolution: Resolution,
    since: DateTime<Utc>,
    site: Option<i32>,
) -> Result<HashMap<i32, Figures>, tokio_postgres::Error> {
    let table = resolution.table();
    let (locations, location) = if resolution.per_location() {
        ("CROSS JOIN locations l", "AND location_id = l.id")
    } else {
        ("", "")
    };
    let rows = client
        .query(
            &format!(
                // Each site's (or (site, location)'s) rows are an index range from `since`
                // on: rows before it are never read, however long the table's history.
                // (`OFFSET 0` keeps the planner from flattening the lookup into a scan of
                // every row of the table's current partition.)
                "SELECT s.id, sum(r.up), sum(r.degraded), sum(r.down),
                        sum(r.degraded_ms)::bigint, sum(r.down_ms)::bigint, array_agg(r.latency)
                 FROM sites s
                 {locations}
                 CROSS JOIN LATERAL (
                     SELECT up, degraded, down, degraded_ms, down_ms, latency FROM {table}
                     WHERE site_id = s.id {location} AND bucket >= $1
                     OFFSET 0
                 ) r
                 WHERE $2::int IS NULL OR s.id = $2
                 GROUP BY s.id"
            ),
            &[&since, &site],
        )
        .await?;
    let mut figures = HashMap::with_capacity(rows.len());
    for r in &rows {
        let site: i32 = r.get(0);
        let (up, degraded, down): (i64, i64, i64) = (r.get(1), r.get(2), r.get(3));
        let mut totals = Totals::default();
        for sketch in r.get::<_, Vec<&[u8]>>(6) {
            if let Err(e) = totals.add_encoded(sketch) {
                tracing::warn!(site, error = %e, "a rollup's latency sketch is unreadable; its latencies are left out");
            }
        }
        let sketch = totals.sketch();
        let ms = |q: f64| sketch.quantile(q).map(|us| us / 1000.0);
        let seconds = |ms: i64| Some(ms as f64 / 1000.0);
        figures.insert(
            site,
            Figures {
                checks: up + degraded + down,
                down,
                degraded,
                degraded_seconds: seconds(r.get(4)),
                down_seconds: seconds(r.get(5)),
                p50_ms: ms(0.5),
                p95_ms: ms(0.95),
                p99_ms: ms(0.99),
            },
        );
    }
    Ok(figures)
}

/// Each site's (checks, down) over several windows of one rollup table, in one pass over the
/// longest: `starts[i]` begins window `i`; the result holds one pair per start, in order.
pub async fn counts_by_site<C: GenericClient>(
    client: &C,
    source: Source,
    starts: &[DateTime<Utc>],
) -> Result<HashMap<i32, Vec<(i64, i64)>>, tokio_postgres::Error> {
    let (Some(resolution), Some(earliest)) = (source.site_resolution(), starts.iter().min()) else {
        return Ok(HashMap::new());
    };
    let table = resolution.table();
    let mut columns = String::new();
    for i in 0..starts.len() {
        let p = i + 2;
        columns.push_str(&format!(
            ", coalesce(sum(up + degraded + down) FILTER (WHERE bucket >= ${p}), 0)::bigint,
               coalesce(sum(down) FILTER (WHERE bucket >= ${p}), 0)::bigint"
        ));
    }
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![earliest];
    for start in starts {
        params.push(start);
    }
    let rows = client
        .query(
            &format!("SELECT site_id{columns} FROM {table} WHERE bucket >= $1 GROUP BY site_id"),
            &params,
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let counts = (0..starts.len())
                .map(|i| (r.get(1 + 2 * i), r.get(2 + 2 * i)))
                .collect();
            (r.get(0), counts)
        })
        .collect())
}
