//! `/api/v1/...`: the pages' data as JSON (the same structs, serialised), for scripts and
//! other dashboards. Errors are JSON too: `{"error": "..."}` with the status.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{ApiError, WebError};
use super::load::{self, Filter};
use super::maintenance as periods;
use super::model::{FailedCheck, Incident, LocationSeries, Maintenance, SiteSummary};
use super::range::RangeQuery;
use super::server::WebState;

type Shared = State<Arc<WebState>>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// The API's routes (nested under `/api/v1`).
pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/sites", get(sites))
        .route("/sites/{name}", get(site))
        .route("/sites/{name}/uptime", get(uptime))
        .route("/sites/{name}/daily", get(daily))
        .route("/sites/{name}/latency", get(latency))
        .route("/sites/{name}/failures", get(failures))
        .route("/incidents", get(incidents))
        .route("/maintenance", get(maintenance))
        .fallback(|| async { ApiError(WebError::NotFound("no such API endpoint".into())) })
}

#[derive(Serialize)]
struct SiteList {
    generated_at: DateTime<Utc>,
    sites: Vec<SiteSummary>,
}

async fn sites(State(state): Shared, Query(filter): Query<Filter>) -> ApiResult<SiteList> {
    Ok(Json(SiteList {
        generated_at: Utc::now(),
        sites: load::summaries(&state.pool, &filter).await?,
    }))
}

async fn site(
    State(state): Shared,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Value> {
    let range = q.get()?;
    let client = state.pool.get().await?;
    let site = load::site(&client, &name).await?;
    let figures = load::range_figures(&client, &site, range).await?;
    let open = load::incidents(&client, Some(&site.name), range)
        .await?
        .into_iter()
        .find(|i| i.ended_at.is_none());
    let maintenance = periods::periods(
        &client,
        Some(&[site.id]),
        figures.until - range,
        figures.until,
    )
    .await?;
    Ok(Json(json!({
        "site": site,
        "figures": figures,
        "open_incident": open,
        "maintenance": maintenance,
    })))
}

async fn uptime(
    State(state): Shared,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<load::RangeFigures> {
    let range = q.get()?;
    let client = state.pool.get().await?;
    let site = load::site(&client, &name).await?;
    Ok(Json(load::range_figures(&client, &site, range).await?))
}

#[derive(Serialize)]
struct Daily {
    since: DateTime<Utc>,
    days: i64,
    all: LocationSeries,
    locations: Vec<LocationSeries>,
}

async fn daily(State(state): Shared, Path(name): Path<String>) -> ApiResult<Daily> {
    let client = state.pool.get().await?;
    let site = load::site(&client, &name).await?;
    Ok(Json(Daily {
        since: load::bars_since(Utc::now()),
        days: load::BAR_DAYS,
        all: load::daily_bars_all(&client, &site).await?,
        locations: load::daily_bars(&client, &site).await?,
    }))
}

#[derive(Serialize)]
struct Latency {
    source: crate::figures::Source,
    locations: Vec<LocationSeries>,
}

async fn latency(
    State(state): Shared,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Latency> {
    let range = q.get()?;
    let client = state.pool.get().await?;
    let site = load::site(&client, &name).await?;
    let (source, locations) = load::latency_series(&client, &site, range).await?;
    Ok(Json(Latency { source, locations }))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

/// Most failed checks one request returns.
const MAX_FAILURES: i64 = 500;

async fn failures(
    State(state): Shared,
    Path(name): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Vec<FailedCheck>> {
    let limit = q.limit.unwrap_or(load::FAILED_CHECKS);
    if !(1..=MAX_FAILURES).contains(&limit) {
        return Err(WebError::BadRequest(format!("limit must be 1 to {MAX_FAILURES}")).into());
    }
    let client = state.pool.get().await?;
    let site = load::site(&client, &name).await?;
    Ok(Json(load::failed_checks(&client, &site, limit).await?))
}

#[derive(Deserialize)]
struct IncidentQuery {
    range: Option<String>,
    site: Option<String>,
}

async fn incidents(
    State(state): Shared,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<Vec<Incident>> {
    let range = RangeQuery { range: q.range }.get()?;
    let client = state.pool.get().await?;
    if let Some(name) = &q.site {
        load::site(&client, name).await?;
    }
    Ok(Json(
        load::incidents(&client, q.site.as_deref(), range).await?,
    ))
}

/// Maintenance periods of one site (`?site=`) or all, ending within `?range=` back from now
/// or later: ended, active and scheduled.
async fn maintenance(
    State(state): Shared,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<Vec<Maintenance>> {
    let range = RangeQuery { range: q.range }.get()?;
    let client = state.pool.get().await?;
    let ids = match &q.site {
        Some(name) => Some(vec![load::site(&client, name).await?.id]),
        None => None,
    };
    let now = Utc::now();
    Ok(Json(
        periods::periods(&client, ids.as_deref(), now - range, now).await?,
    ))
}
