//! Gathers what a page or API answer shows: verdicts and catalog (through `verdicts`),
//! figures from the rollups (through `crate::figures`, shared with `report`), raw results
//! only for the last failed checks.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::Client;

use super::error::WebError;
use super::model::{
    BucketPoint, FailedCheck, Incident, LocationSeries, SiteState, SiteSummary, Uptimes, Verdict,
};
use super::verdicts;
use crate::figures::{self, BucketFigures, Figures, Per, Source};

/// Days of daily bars on site and status pages.
pub const BAR_DAYS: i64 = 90;
/// Failed checks listed on a site page.
pub const FAILED_CHECKS: i64 = 20;
/// Incidents listed on a page.
pub const INCIDENTS: i64 = 50;
/// Ranges up to this long are charted by the hour, longer ones by the day.
const HOURLY_UP_TO: TimeDelta = TimeDelta::days(7);

/// Which sites a dashboard or API list shows.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    /// Only sites with this tag.
    pub tag: Option<String>,
    /// Only sites in this group.
    pub group: Option<String>,
}

impl Filter {
    /// Whether `site` passes.
    pub fn keeps(&self, site: &SiteState) -> bool {
        self.tag.as_ref().is_none_or(|t| site.tags.contains(t))
            && self
                .group
                .as_ref()
                .is_none_or(|g| site.group.as_ref() == Some(g))
    }
}

fn midnight_days_ago(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    let t = now - TimeDelta::days(days);
    t.duration_trunc(TimeDelta::days(1)).unwrap_or(t)
}

/// Every site (as `filter` keeps), worst verdict first, with uptime over 24 h / 7 d / 30 d /
/// 90 d, p95 over 24 h, its open incident and the maintenance window it is in. Figures come from the rollups: 24 h from the
/// hourly rows since the hour a day ago, the rest from the daily rows since midnight UTC.
/// The three independent reads run at once, each on a connection of its own.
pub async fn summaries(pool: &Pool, filter: &Filter) -> Result<Vec<SiteSummary>, WebError> {
    let now = Utc::now();
    let day_ago = now - TimeDelta::hours(24);
    let hour = day_ago
        .duration_trunc(TimeDelta::hours(1))
        .unwrap_or(day_ago);
    let starts = [7, 30, 90].map(|d| midnight_days_ago(now, d));
    let (a, b, c) = (pool.get().await?, pool.get().await?, pool.get().await?);
    let ((sites, mut open, mut maintenance), mut last_day, mut long) = tokio::try_join!(
        async {
            let sites = verdicts::sites(&a).await?;
            let open = verdicts::open_incidents(&a).await?;
            Ok::<_, WebError>((sites, open, super::maintenance::active_now(&a).await?))
        },
        async { Ok(figures::by_site(&**b, Source::HourlyRollups, hour, None).await?) },
        async { Ok(figures::counts_by_site(&**c, Source::DailyRollups, &starts).await?) },
    )?;
    let mut rows: Vec<SiteSummary> = sites
        .into_iter()
        .filter(|s| filter.keeps(s))
        .map(|site| {
            let day = last_day.remove(&site.id).unwrap_or_default();
            let counts = long.remove(&site.id).unwrap_or_default();
            let pct = |i: usize| {
                counts
                    .get(i)
                    .and_then(|&(checks, down)| figures::uptime_pct(checks, down))
            };
            SiteSummary {
                uptime: Uptimes {
                    pct_24h: day.uptime_pct(),
                    pct_7d: pct(0),
                    pct_30d: pct(1),
                    pct_90d: pct(2),
                    p95_ms_24h: day.p95_ms,
                },
                open_incident: open.remove(&site.name),
                maintenance: maintenance.remove(&site.name),
                site,
            }
        })
        .collect();
    rows.sort_by(|a, b| (a.site.verdict, &a.site.name).cmp(&(b.site.verdict, &b.site.name)));
    Ok(rows)
}

/// One site's state, or 404.
pub async fn site(client: &Client, name: &str) -> Result<SiteState, WebError> {
    verdicts::site(client, name)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no site named `{name}`")))
}

/// Uptime and latency of one site over `range` back from now, and where they came from.
#[derive(Debug, Serialize)]
pub struct RangeFigures {
    /// The site.
    pub site: String,
    /// Start of the window (aligned as its source has it).
    pub since: DateTime<Utc>,
    /// End of the window.
    pub until: DateTime<Utc>,
    /// Where the figures came from.
    pub source: Source,
    /// Uptime in percent.
    pub uptime_pct: Option<f64>,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// See [`RangeFigures`].
pub async fn range_figures(
    client: &Client,
    site: &SiteState,
    range: TimeDelta,
) -> Result<RangeFigures, WebError> {
    let now = Utc::now();
    let (source, since) = figures::choose(client, now - range, now).await?;
    let f = figures::by_site(client, source, since, Some(site.id))
        .await?
        .remove(&site.id)
        .unwrap_or_default();
    Ok(RangeFigures {
        site: site.name.clone(),
        since,
        until: now,
        source,
        uptime_pct: f.uptime_pct(),
        figures: f,
    })
}

/// The last [`BAR_DAYS`] days of a site, per location, from the daily rollups.
pub async fn daily_bars(
    client: &Client,
    site: &SiteState,
) -> Result<Vec<LocationSeries>, WebError> {
    let now = Utc::now();
    let since = midnight_days_ago(now, BAR_DAYS - 1);
    let rows = figures::by_bucket(
        client,
        Source::DailyRollups,
        Per::Location,
        site.id,
        since,
        now,
    )
    .await?;
    Ok(per_location(rows))
}

/// The same bars for the site as a whole: each day's checks from every location added up
/// (the per-site daily rollups).
pub async fn daily_bars_all(client: &Client, site: &SiteState) -> Result<LocationSeries, WebError> {
    let now = Utc::now();
    let since = midnight_days_ago(now, BAR_DAYS - 1);
    let rows =
        figures::by_bucket(client, Source::DailyRollups, Per::Site, site.id, since, now).await?;
    Ok(LocationSeries {
        location: figures::ALL_LOCATIONS.into(),
        points: rows.iter().map(|f| point(f.bucket, f)).collect(),
    })
}

/// The first bar's day.
pub fn bars_since(now: DateTime<Utc>) -> DateTime<Utc> {
    midnight_days_ago(now, BAR_DAYS - 1)
}

/// Latency and uptime of a site per location over `range`, by the hour up to a week, by the
/// day beyond.
pub async fn latency_series(
    client: &Client,
    site: &SiteState,
    range: TimeDelta,
) -> Result<(Source, Vec<LocationSeries>), WebError> {
    let now = Utc::now();
    let (source, step) = if range <= HOURLY_UP_TO {
        (Source::HourlyRollups, TimeDelta::hours(1))
    } else {
        (Source::DailyRollups, TimeDelta::days(1))
    };
    let start = now - range;
    let since = start.duration_trunc(step).unwrap_or(start);
    let rows = figures::by_bucket(client, source, Per::Location, site.id, since, now).await?;
    Ok((source, per_location(rows)))
}

fn point(bucket: DateTime<Utc>, f: &BucketFigures) -> BucketPoint {
    BucketPoint {
        bucket,
        checks: f.checks(),
        down: f.down,
        degraded: f.degraded,
        down_seconds: f.down_ms as f64 / 1000.0,
        uptime_pct: f.uptime_pct(),
        p50_ms: f.percentile_ms(0.5),
        p95_ms: f.percentile_ms(0.95),
    }
}

fn per_location(rows: Vec<BucketFigures>) -> Vec<LocationSeries> {
    let mut series: Vec<LocationSeries> = Vec::new();
    for row in rows {
        let p = point(row.bucket, &row);
        match series.last_mut() {
            Some(s) if s.location == row.location => s.points.push(p),
            _ => series.push(LocationSeries {
                location: row.location,
                points: vec![p],
            }),
        }
    }
    series
}

/// Incidents of a site (or all sites) open at any time in the last `range`, newest first.
pub async fn incidents(
    client: &Client,
    site: Option<&str>,
    range: TimeDelta,
) -> Result<Vec<Incident>, WebError> {
    Ok(verdicts::incidents(client, site, Utc::now() - range, INCIDENTS).await?)
}

/// The last checks of a site that were not `up`, newest first, with their phase timings.
pub async fn failed_checks(
    client: &Client,
    site: &SiteState,
    limit: i64,
) -> Result<Vec<FailedCheck>, WebError> {
    let rows = client
        .query(
            "SELECT r.started_at, l.name, a.name, o.name, k.name, r.error_message, r.http_status,
                    r.dns_us, r.connect_us, r.tls_us, r.ttfb_us, r.total_us
             FROM results r
             JOIN agents a ON a.id = r.agent_id
             JOIN locations l ON l.id = a.location_id
             JOIN outcomes o ON o.id = r.outcome
             LEFT JOIN error_kinds k ON k.id = r.error_kind
             WHERE r.site_id = $1 AND r.outcome <> $2
             ORDER BY r.started_at DESC
             LIMIT $3",
            &[&site.id, &crate::codes::UP, &limit],
        )
        .await?;
    let ms = |us: Option<i32>| us.map(|us| f64::from(us) / 1000.0);
    Ok(rows
        .iter()
        .map(|r| FailedCheck {
            started_at: r.get(0),
            location: r.get(1),
            agent: r.get(2),
            outcome: Verdict::parse(r.get(3)),
            error_kind: r.get(4),
            error: r.get(5),
            http_status: r.get(6),
            dns_ms: ms(r.get(7)),
            connect_ms: ms(r.get(8)),
            tls_ms: ms(r.get(9)),
            ttfb_ms: ms(r.get(10)),
            total_ms: f64::from(r.get::<_, i32>(11)) / 1000.0,
        })
        .collect())
}
