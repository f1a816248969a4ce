//! The web role's router and server: page, API, badge and metrics handlers over a pool of
//! read-only connections, stopped by the root cancellation token.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::auth::{self, Authenticated};
use super::badge;
use super::config::WebArgs;
pub use super::error::WebError;
use super::load::{self, Filter};
use super::maintenance;
use super::metrics;
use super::pages::{self, SitePage, StatusPage};
use super::range::{self, RangeQuery};
use crate::database::Database;

/// What every handler shares.
pub struct WebState {
    /// Read-only connections.
    pub pool: deadpool_postgres::Pool,
    /// The settings.
    pub args: WebArgs,
}

impl WebState {
    async fn client(&self) -> Result<deadpool_postgres::Object, WebError> {
        Ok(self.pool.get().await?)
    }

    fn refresh(&self) -> u64 {
        self.args.refresh.as_secs()
    }
}

type Shared = State<Arc<WebState>>;

/// Every route, behind the auth middleware.
pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/sites/{name}", get(site))
        .route("/status", get(status_all))
        .route("/status/{group}", get(status_group))
        .route("/badge/{site}/status.svg", get(status_badge))
        .route("/badge/{site}/uptime/{file}", get(uptime_badge))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", super::api::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
        .with_state(state)
}

/// Binds `args.listen` and serves until `token` is cancelled.
pub async fn serve(
    db: &Database,
    args: WebArgs,
    token: CancellationToken,
) -> Result<(), std::io::Error> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    serve_on(listener, db, args, token).await
}

/// Serves on `listener` until `token` is cancelled.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    db: &Database,
    args: WebArgs,
    token: CancellationToken,
) -> Result<(), std::io::Error> {
    let pool = db
        .read_only_pool(args.db_connections)
        .map_err(std::io::Error::other)?;
    match pool.get().await {
        Ok(client) => {
            if let Err(e) = crate::migrations::check_current(&client).await {
                tracing::warn!(error = %e, "pages will fail until the schema is current");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the database yet; pages answer 503 until it is")
        }
    }
    let addr = listener.local_addr()?;
    if !args.auth_enabled() {
        tracing::info!(
            "no --basic-auth or --bearer-token: every page is open to whoever reaches {addr}"
        );
    }
    tracing::info!(%addr, "web pages on http://{addr}/ (status page http://{addr}/status)");
    let app = router(Arc::new(WebState { pool, args }));
    axum::serve(listener, app)
        .with_graceful_shutdown(token.cancelled_owned())
        .await
}

async fn dashboard(
    State(state): Shared,
    Query(filter): Query<Filter>,
) -> Result<Response, WebError> {
    let all = load::summaries(&state.pool, &Filter::default()).await?;
    let tags: BTreeSet<String> = all
        .iter()
        .flat_map(|r| r.site.tags.iter().cloned())
        .collect();
    let groups: BTreeSet<String> = all.iter().filter_map(|r| r.site.group.clone()).collect();
    let rows: Vec<_> = all.into_iter().filter(|r| filter.keeps(&r.site)).collect();
    Ok(
        Html(pages::dashboard(&rows, &filter, &tags, &groups, state.refresh()).into_string())
            .into_response(),
    )
}

async fn site(
    State(state): Shared,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, WebError> {
    let range = q.get()?;
    let client = state.client().await?;
    let site = load::site(&client, &name).await?;
    let now = Utc::now();
    let page = SitePage {
        maintenance: maintenance::periods(
            &client,
            Some(&[site.id]),
            load::bars_since(now).min(now - range),
            now,
        )
        .await?,
        figures: load::range_figures(&client, &site, range).await?,
        bars_since: load::bars_since(Utc::now()),
        bars: load::daily_bars(&client, &site).await?,
        latency: load::latency_series(&client, &site, range).await?,
        incidents: load::incidents(&client, Some(&site.name), range).await?,
        failed: load::failed_checks(&client, &site, load::FAILED_CHECKS).await?,
        refresh_seconds: state.refresh(),
        range,
        site,
    };
    Ok(Html(pages::site_page(&page).into_string()).into_response())
}

/// Incidents listed on the status page: the last this many days.
const STATUS_INCIDENT_DAYS: i64 = 14;

async fn status_page(state: &WebState, group: Option<String>) -> Result<Response, WebError> {
    let client = state.client().await?;
    let sites = super::verdicts::sites(&client).await?;
    let public: Vec<_> = sites
        .into_iter()
        .filter(|s| s.public && (group.is_none() || s.group == group))
        .collect();
    if let (Some(g), true) = (&group, public.is_empty()) {
        return Err(WebError::NotFound(format!("no public group named `{g}`")));
    }
    let mut groups: Vec<(Option<String>, Vec<pages::StatusSite>)> = Vec::new();
    let mut incidents = Vec::new();
    let now = Utc::now();
    let ids: Vec<i32> = public.iter().map(|s| s.id).collect();
    let mut periods = maintenance::periods(&client, Some(&ids), load::bars_since(now), now).await?;
    let mut sorted = public;
    sorted.sort_by(|a, b| {
        (a.group.is_none(), &a.group, &a.name).cmp(&(b.group.is_none(), &b.group, &b.name))
    });
    for site in sorted {
        let bars = load::daily_bars_all(&client, &site).await?;
        let (checks, down) = bars
            .points
            .iter()
            .fold((0, 0), |(c, d), p| (c + p.checks, d + p.down));
        incidents.extend(
            load::incidents(
                &client,
                Some(&site.name),
                TimeDelta::days(STATUS_INCIDENT_DAYS),
            )
            .await?,
        );
        let (mine, rest) = periods.into_iter().partition(|m| m.site == site.name);
        periods = rest;
        let entry = pages::StatusSite {
            maintenance: mine,
            uptime_pct: crate::figures::uptime_pct(checks, down),
            bars,
            site,
        };
        match groups.last_mut() {
            Some((g, list)) if *g == entry.site.group => list.push(entry),
            _ => groups.push((entry.site.group.clone(), vec![entry])),
        }
    }
    incidents.sort_by_key(|i| std::cmp::Reverse(i.started_at));
    let page = StatusPage {
        title: state.args.title.clone(),
        group,
        groups,
        bars_since: load::bars_since(Utc::now()),
        incidents,
        details: state.args.public_details,
        refresh_seconds: state.refresh(),
    };
    Ok(Html(pages::status_page(&page).into_string()).into_response())
}

async fn status_all(State(state): Shared) -> Result<Response, WebError> {
    status_page(&state, None).await
}

async fn status_group(
    State(state): Shared,
    Path(group): Path<String>,
) -> Result<Response, WebError> {
    status_page(&state, Some(group)).await
}

/// The site a badge is for, if the request may see it: public sites for anyone, others only
/// with a credential (or when no auth is configured).
async fn badge_site(
    state: &WebState,
    client: &tokio_postgres::Client,
    name: &str,
    authenticated: bool,
) -> Result<super::model::SiteState, Response> {
    match load::site(client, name).await {
        Ok(site) if site.public || authenticated => Ok(site),
        Ok(_) => Err(auth::challenge(state)),
        Err(e) => Err(e.into_response()),
    }
}

async fn status_badge(
    State(state): Shared,
    Extension(Authenticated(authenticated)): Extension<Authenticated>,
    Path(name): Path<String>,
) -> Result<Response, Response> {
    let client = state.client().await.map_err(IntoResponse::into_response)?;
    let site = badge_site(&state, &client, &name, authenticated).await?;
    let svg = badge::svg(
        "status",
        site.verdict.as_str(),
        badge::verdict_colour(site.verdict),
    );
    Ok(badge::response(svg, badge::STATUS_MAX_AGE))
}

async fn uptime_badge(
    State(state): Shared,
    Extension(Authenticated(authenticated)): Extension<Authenticated>,
    Path((name, file)): Path<(String, String)>,
) -> Result<Response, Response> {
    let Some(text) = file.strip_suffix(".svg") else {
        return Err(WebError::NotFound("badges end in .svg".into()).into_response());
    };
    let window = range::parse(text).map_err(IntoResponse::into_response)?;
    let client = state.client().await.map_err(IntoResponse::into_response)?;
    let site = badge_site(&state, &client, &name, authenticated).await?;
    let figures = load::range_figures(&client, &site, window)
        .await
        .map_err(IntoResponse::into_response)?;
    let value = figures
        .uptime_pct
        .map_or("no data".to_string(), |p| pages::format_pct(Some(p)));
    let svg = badge::svg(
        &format!("uptime {text}"),
        &value,
        badge::uptime_colour(figures.uptime_pct),
    );
    Ok(badge::response(svg, badge::UPTIME_MAX_AGE))
}

async fn healthz(State(state): Shared) -> Response {
    let ready = match state.client().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    if ready {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no working database connection\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): Shared) -> Result<Response, WebError> {
    let rows = load::summaries(&state.pool, &Filter::default()).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::text(&rows),
    )
        .into_response())
}

async fn not_found() -> WebError {
    WebError::NotFound("no such page".into())
}
