//! `/sites/{name}`: the site's verdict and locations, 90 daily bars per location, latency
//! over the chosen range, incidents, maintenance (in the range and scheduled), and the last
//! failed checks with their phase timings.

use chrono::{DateTime, TimeDelta, Utc};
use maud::{html, Markup};

use super::charts::{daily_bars, latency_chart, line_colour};
use super::format::{duration, ms, pct, segment, site_href, time, time_s};
use super::layout::{page, Nav};
use crate::figures::Source;
use crate::web::load::{RangeFigures, BAR_DAYS};
use crate::web::model::{FailedCheck, Incident, LocationSeries, Maintenance, SiteState};
use crate::web::range;

/// Everything the site page shows.
pub struct SitePage {
    /// The site.
    pub site: SiteState,
    /// The chosen range.
    pub range: TimeDelta,
    /// Figures over it.
    pub figures: RangeFigures,
    /// First day of the bars.
    pub bars_since: DateTime<Utc>,
    /// Daily bars per location.
    pub bars: Vec<LocationSeries>,
    /// Latency per location over the range, and its source.
    pub latency: (Source, Vec<LocationSeries>),
    /// Incidents in the range.
    pub incidents: Vec<Incident>,
    /// Last failed checks.
    pub failed: Vec<FailedCheck>,
    /// Maintenance periods of the site ending after the first bar's day or the range's
    /// start (the earlier), by start; the bars mark them, the table lists those in the range
    /// and the scheduled ones.
    pub maintenance: Vec<Maintenance>,
    /// Seconds between reloads.
    pub refresh_seconds: u64,
}

/// The page.
pub fn site_page(p: &SitePage) -> Markup {
    let s = &p.site;
    let step = match p.latency.0 {
        Source::DailyRollups => TimeDelta::days(1),
        _ => TimeDelta::hours(1),
    };
    let here = site_href(&s.name);
    page(
        &format!("{} – sitewatch", s.name),
        Nav::Internal,
        p.refresh_seconds,
        html! {
            h1 #site-name { (s.name) " " span class=(format!("pill verdict {}", s.verdict.as_str())) { (s.verdict.as_str()) } }
            p.muted {
                code #url { (s.url) }
                @if let Some(since) = s.verdict_since { " · " (s.verdict.as_str()) " since " (time(since)) }
                @if let Some(reason) = &s.verdict_reason { " · " span #reason { (reason) } }
                " · last check " (time_s(s.last_check_at))
                @if let Some(g) = &s.group { " · group " a href=(format!("/?group={}", segment(g))) { (g) } }
                @for t in &s.tags { " " a.tag href=(format!("/?tag={}", segment(t))) { "#" (t) } }
            }
            h2 { "Locations" }
            table #locations {
                thead { tr { th { "Location" } th { "State" } th { "Last check" } th { "Error" } } }
                tbody {
                    @for l in &s.locations {
                        tr data-location=(l.name) {
                            td { (l.name) }
                            td { span class=(format!("pill {}", l.state.as_str())) { (l.state.as_str()) } }
                            td { (time_s(l.last_check_at)) }
                            td.err { (l.error.as_deref().unwrap_or("")) }
                        }
                    }
                    @if s.locations.is_empty() { tr { td colspan="4" .muted { "no location has reported recently" } } }
                }
            }
            h2 { "Last " (BAR_DAYS) " days" }
            div #daily {
                @for series in &p.bars {
                    div.location-bars data-location=(series.location) {
                        div { (series.location) }
                        (daily_bars(series, p.bars_since, BAR_DAYS, &p.maintenance))
                    }
                }
                @if p.bars.is_empty() { p.muted { "no daily figures yet" } }
            }
            h2 { "Response time" }
            p.range #range {
                @for choice in range::CHOICES {
                    @let on = range::parse(choice).ok() == Some(p.range);
                    a href=(format!("{here}?range={choice}")) class=[on.then_some("on")] { (choice) } " "
                }
                span.muted {
                    " over " (range::label(p.range)) ": uptime " strong #range-uptime { (pct(p.figures.uptime_pct)) }
                    ", " (p.figures.figures.checks) " checks, p50 " (ms(p.figures.figures.p50_ms))
                    ", p95 " (ms(p.figures.figures.p95_ms)) ", p99 " (ms(p.figures.figures.p99_ms))
                    " (from " (p.figures.source.describe()) ")"
                }
            }
            (latency_chart(&p.latency.1, p.figures.until - p.range, p.figures.until, step))
            p.legend {
                @for (i, series) in p.latency.1.iter().enumerate() {
                    span style=(format!("color:{}", line_colour(i))) { "■ " (series.location) }
                }
                span.muted { "solid p50, dashed p95, by the " (if step == TimeDelta::days(1) { "day" } else { "hour" }) }
            }
            h2 { "Incidents" }
            (incident_table(&p.incidents, true))
            h2 { "Maintenance" }
            (maintenance_table(
                p.maintenance.iter().filter(|m| m.ends_at > p.figures.until - p.range),
                false,
            ))
            h2 { "Last failed checks" }
            table #failed {
                thead { tr {
                    th { "Started" } th { "Location" } th { "Agent" } th { "Outcome" } th { "Error" }
                    th.num { "HTTP" } th.num { "DNS" } th.num { "Connect" } th.num { "TLS" }
                    th.num { "TTFB" } th.num { "Total" }
                } }
                tbody {
                    @for f in &p.failed {
                        tr.failed-check {
                            td { (time_s(f.started_at)) }
                            td { (f.location) }
                            td { (f.agent) }
                            td { span class=(format!("pill {}", f.outcome.as_str())) { (f.outcome.as_str()) } }
                            td.err {
                                @if let Some(k) = &f.error_kind { strong { (k) } ": " }
                                (f.error.as_deref().unwrap_or(""))
                            }
                            td.num { (f.http_status.map(|s| s.to_string()).unwrap_or_default()) }
                            td.num { (ms(f.dns_ms)) }
                            td.num { (ms(f.connect_ms)) }
                            td.num { (ms(f.tls_ms)) }
                            td.num { (ms(f.ttfb_ms)) }
                            td.num { (ms(Some(f.total_ms))) }
                        }
                    }
                    @if p.failed.is_empty() { tr { td colspan="11" .muted { "no failed checks stored" } } }
                }
            }
        },
    )
}

/// Maintenance periods as a table (`#maintenance`); `with_site` adds the site's name.
pub fn maintenance_table<'a>(
    periods: impl Iterator<Item = &'a Maintenance>,
    with_site: bool,
) -> Markup {
    let mut periods = periods.peekable();
    let empty = periods.peek().is_none();
    html! {
        table #maintenance {
            thead { tr {
                @if with_site { th { "Site" } }
                th { "Window" } th { "Starts" } th { "Ends" } th.num { "Duration" } th { "State" }
            } }
            tbody {
                @for m in periods {
                    tr.maintenance data-site=(m.site) data-window=(m.window) data-state=(m.state.as_str()) {
                        @if with_site { td { (m.site) } }
                        td { (m.window) }
                        td { (time(m.starts_at)) }
                        td { (time(m.ends_at)) }
                        td.num { (duration(m.duration_seconds)) }
                        td { span class=(format!("pill maint-{}", m.state.as_str())) { (m.state.as_str()) } }
                    }
                }
                @if empty { tr { td colspan="6" .muted { "no maintenance in this range or scheduled" } } }
            }
        }
    }
}

/// Incidents as a table; `details` adds first errors and locations.
pub fn incident_table(incidents: &[Incident], details: bool) -> Markup {
    html! {
        table #incidents {
            thead { tr {
                th { "Site" } th { "Started" } th { "Ended" } th.num { "Duration" }
                @if details { th { "First error" } th { "Locations" } }
            } }
            tbody {
                @for i in incidents {
                    tr.incident data-site=(i.site) data-open=(i.ended_at.is_none()) {
                        td { (i.site) }
                        td { (time(i.started_at)) }
                        td { @match i.ended_at { Some(t) => (time(t)), None => span.pill.down { "ongoing" } } }
                        td.num.duration { (duration(i.duration_seconds)) }
                        @if details {
                            td.err { (i.first_error.as_deref().unwrap_or("")) }
                            td { (i.locations.join(", ")) }
                        }
                    }
                }
                @if incidents.is_empty() { tr { td colspan="6" .muted { "no incidents in this range" } } }
            }
        }
    }
}
