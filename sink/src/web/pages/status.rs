//! `/status` and `/status/{group}`: the public status page. Only sites the catalog marks
//! `public`, grouped, under an overall banner, with recent incidents; no URLs, error texts,
//! locations or agent names unless the operator turned public details on.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::charts::daily_bars;
use super::format::{pct, segment};
use super::layout::{page, Nav};
use super::site::incident_table;
use crate::web::load::BAR_DAYS;
use crate::web::model::{Incident, LocationSeries, SiteState, Verdict};

/// One public site on the page.
pub struct StatusSite {
    /// The site.
    pub site: SiteState,
    /// Its daily bars, every location added up.
    pub bars: LocationSeries,
    /// Uptime over the bars' days.
    pub uptime_pct: Option<f64>,
}

/// Everything the status page shows.
pub struct StatusPage {
    /// Page title.
    pub title: String,
    /// The group shown (`None`: all).
    pub group: Option<String>,
    /// Sites by group (`None` last), each list by name.
    pub groups: Vec<(Option<String>, Vec<StatusSite>)>,
    /// First day of the bars.
    pub bars_since: DateTime<Utc>,
    /// Recent incidents of these sites.
    pub incidents: Vec<Incident>,
    /// Show URLs and error texts.
    pub details: bool,
    /// Seconds between reloads.
    pub refresh_seconds: u64,
}

/// The overall banner: the worst verdict among the sites, and what it says.
pub fn banner(sites: &[&SiteState]) -> (Verdict, &'static str) {
    let count = |v: Verdict| sites.iter().filter(|s| s.verdict == v).count();
    let (down, degraded, unknown) = (
        count(Verdict::Down),
        count(Verdict::Degraded),
        count(Verdict::Unknown),
    );
    if sites.is_empty() {
        (Verdict::Unknown, "No services are listed yet")
    } else if down == sites.len() {
        (Verdict::Down, "Major outage")
    } else if down > 0 {
        (Verdict::Down, "Partial outage")
    } else if degraded > 0 {
        (Verdict::Degraded, "Degraded performance")
    } else if unknown == sites.len() {
        (Verdict::Unknown, "Status unknown")
    } else {
        (Verdict::Up, "All systems operational")
    }
}

fn status_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Up => "Operational",
        Verdict::Degraded => "Degraded performance",
        Verdict::Down => "Outage",
        Verdict::Unknown => "Unknown",
    }
}

/// The page.
pub fn status_page(p: &StatusPage) -> Markup {
    let all: Vec<&SiteState> = p
        .groups
        .iter()
        .flat_map(|(_, sites)| sites.iter().map(|s| &s.site))
        .collect();
    let (verdict, words) = banner(&all);
    let title = match &p.group {
        Some(g) => format!("{} – {g}", p.title),
        None => p.title.clone(),
    };
    page(
        &title,
        Nav::Public,
        p.refresh_seconds,
        html! {
            div #banner class=(format!("banner {}", verdict.as_str())) data-verdict=(verdict.as_str()) { (words) }
            @for (group, sites) in &p.groups {
                section.group data-group=(group.as_deref().unwrap_or("")) {
                    h2 {
                        @match group {
                            Some(g) => a href=(format!("/status/{}", segment(g))) { (g) },
                            None => "Services",
                        }
                    }
                    @for s in sites {
                        div.status-site data-site=(s.site.name) data-verdict=(s.site.verdict.as_str()) {
                            div.row {
                                strong { (s.site.name) }
                                span class=(format!("pill {}", s.site.verdict.as_str())) { (status_text(s.site.verdict)) }
                            }
                            @if p.details { div.muted { code { (s.site.url) } } }
                            (daily_bars(&s.bars, p.bars_since, BAR_DAYS))
                            div.muted { (pct(s.uptime_pct)) " uptime over " (BAR_DAYS) " days" }
                        }
                    }
                }
            }
            h2 { "Incidents" }
            (incident_table(&p.incidents, p.details))
        },
    )
}
