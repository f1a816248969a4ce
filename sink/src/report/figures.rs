//! Each site's figures over a window: from raw results (a day or less; exact percentiles),
//! or summed from rollup rows (percentiles from the added-up latency sketches).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::model::{Figures, Source};
use crate::codes;
use crate::rollups::Totals;

/// Figures by site id.
pub(super) async fn load(
    client: &Client,
    source: Source,
    since: DateTime<Utc>,
) -> Result<HashMap<i32, Figures>, tokio_postgres::Error> {
    match source {
        Source::Results => from_results(client, since).await,
        Source::HourlyRollups => from_rollups(client, "rollup_hourly", since).await,
        Source::DailyRollups => from_rollups(client, "rollup_daily", since).await,
    }
}

async fn from_results(
    client: &Client,
    since: DateTime<Utc>,
) -> Result<HashMap<i32, Figures>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT site_id, count(*),
                    count(*) FILTER (WHERE outcome = $2),
                    count(*) FILTER (WHERE outcome = $3),
                    percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY total_us)
             FROM results WHERE started_at >= $1
             GROUP BY site_id",
            &[&since, &codes::DOWN, &codes::DEGRADED],
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

async fn from_rollups(
    client: &Client,
    table: &str,
    since: DateTime<Utc>,
) -> Result<HashMap<i32, Figures>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT site_id, sum(up), sum(degraded), sum(down),
                        sum(degraded_ms)::bigint, sum(down_ms)::bigint, array_agg(latency)
                 FROM {table} WHERE bucket >= $1
                 GROUP BY site_id"
            ),
            &[&since],
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
