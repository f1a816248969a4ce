//! `/status` and `/status/{group}`: the public status page. Only sites the catalog marks
//! `public`, grouped, under an overall banner, with recent incidents and scheduled
//! maintenance; no URLs, error texts, locations or agent names unless the operator turned
//! public details on.
//!
//! A site in a maintenance window now shows "Under maintenance" instead of its verdict, and
//! the banner leaves it out: problems during announced maintenance are not an outage. Only
//! if nothing else is wrong does the banner say "Maintenance in progress".

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::charts::daily_bars;
use super::format::{duration, pct, segment, time};
use super::layout::{page, Nav};
use super::site::incident_table;
use crate::web::load::BAR_DAYS;
use crate::web::maintenance;
use crate::web::model::{
    Incident, LocationSeries, Maintenance, MaintenanceState, SiteState, Verdict,
};

/// One public site on the page.
pub struct StatusSite {
    /// The site.
    pub site: SiteState,
    /// Its daily bars, every location added up.
    pub bars: LocationSeries,
    /// Uptime over the bars' days.
    pub uptime_pct: Option<f64>,
    /// Its maintenance periods ending after the first bar's day (bars are marked; an
    /// active one replaces the verdict).
    pub maintenance: Vec<Maintenance>,
}

impl StatusSite {
    /// Its period in progress, if any.
    fn under_maintenance(&self) -> Option<&Maintenance> {
        maintenance::active(&self.maintenance, &self.site.name)
    }
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

/// The overall banner from the sites and whether each is under maintenance: its class (the
/// worst verdict among the sites not under maintenance, or `maintenance`) and what it says.
pub fn banner(sites: &[(&SiteState, bool)]) -> (&'static str, &'static str) {
    let judged: Vec<&SiteState> = sites.iter().filter(|(_, m)| !m).map(|(s, _)| *s).collect();
    let in_maintenance = sites.len() - judged.len();
    let count = |v: Verdict| judged.iter().filter(|s| s.verdict == v).count();
    let (down, degraded, unknown) = (
        count(Verdict::Down),
        count(Verdict::Degraded),
        count(Verdict::Unknown),
    );
    if sites.is_empty() {
        ("unknown", "No services are listed yet")
    } else if down > 0 && down == sites.len() {
        ("down", "Major outage")
    } else if down > 0 {
        ("down", "Partial outage")
    } else if degraded > 0 {
        ("degraded", "Degraded performance")
    } else if in_maintenance > 0 {
        ("maintenance", "Maintenance in progress")
    } else if unknown == judged.len() {
        ("unknown", "Status unknown")
    } else {
        ("up", "All systems operational")
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
    let all: Vec<(&SiteState, bool)> = p
        .groups
        .iter()
        .flat_map(|(_, sites)| {
            sites
                .iter()
                .map(|s| (&s.site, s.under_maintenance().is_some()))
        })
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
            div #banner class=(format!("banner {verdict}")) data-verdict=(verdict) { (words) }
            (scheduled(p))
            @for (group, sites) in &p.groups {
                section.group data-group=(group.as_deref().unwrap_or("")) {
                    h2 {
                        @match group {
                            Some(g) => a href=(format!("/status/{}", segment(g))) { (g) },
                            None => "Services",
                        }
                    }
                    @for s in sites {
                        @let maint = s.under_maintenance();
                        div.status-site data-site=(s.site.name) data-verdict=(s.site.verdict.as_str())
                            data-maintenance=[maint.map(|m| m.window.as_str())] {
                            div.row {
                                strong { (s.site.name) }
                                @match maint {
                                    Some(m) => span {
                                        span.muted { (m.window) " until " (time(m.ends_at)) " " }
                                        span.pill.maintenance { "Under maintenance" }
                                    },
                                    None => span class=(format!("pill {}", s.site.verdict.as_str())) { (status_text(s.site.verdict)) },
                                }
                            }
                            @if p.details { div.muted { code { (s.site.url) } } }
                            (daily_bars(&s.bars, p.bars_since, BAR_DAYS, &s.maintenance))
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

/// Maintenance not yet begun, under the banner (nothing when there is none), one entry per
/// window occurrence with the sites it covers.
fn scheduled(p: &StatusPage) -> Markup {
    let mut entries: Vec<(&Maintenance, Vec<&str>)> = Vec::new();
    let mut upcoming: Vec<&Maintenance> = p
        .groups
        .iter()
        .flat_map(|(_, sites)| sites.iter().flat_map(|s| &s.maintenance))
        .filter(|m| m.state == MaintenanceState::Scheduled)
        .collect();
    upcoming
        .sort_by(|a, b| (a.starts_at, &a.window, &a.site).cmp(&(b.starts_at, &b.window, &b.site)));
    for m in upcoming {
        match entries.last_mut() {
            Some((e, sites))
                if (e.starts_at, e.ends_at, &e.window) == (m.starts_at, m.ends_at, &m.window) =>
            {
                sites.push(&m.site)
            }
            _ => entries.push((m, vec![&m.site])),
        }
    }
    html! {
        @if !entries.is_empty() {
            h2 { "Scheduled maintenance" }
            ul #scheduled {
                @for (m, sites) in &entries {
                    li.scheduled data-window=(m.window) data-starts=(m.starts_at.to_rfc3339()) {
                        strong { (m.window) } ": " (time(m.starts_at)) " – " (time(m.ends_at))
                        " (" (duration(m.duration_seconds)) ") · "
                        @for (i, site) in sites.iter().enumerate() {
                            @if i > 0 { ", " }
                            span.site data-site=(site) { (site) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::model::LocationState;
    use chrono::TimeZone;

    fn site(name: &str, group: Option<&str>, verdict: Verdict) -> StatusSite {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
        StatusSite {
            site: SiteState {
                id: 1,
                name: name.into(),
                url: format!("https://internal.example/{name}"),
                verdict,
                verdict_since: Some(at),
                verdict_reason: Some("secret backend error".into()),
                last_check_at: at,
                locations: vec![LocationState {
                    name: "agent-location-eu".into(),
                    state: verdict,
                    last_check_at: at,
                    error: Some("secret backend error".into()),
                }],
                tags: vec![],
                group: group.map(str::to_string),
                public: true,
            },
            bars: LocationSeries {
                location: "all".into(),
                points: vec![],
            },
            uptime_pct: Some(99.5),
            maintenance: vec![],
        }
    }

    fn page(details: bool) -> String {
        let since = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap();
        status_page(&StatusPage {
            title: "Acme <status>".into(),
            group: None,
            groups: vec![
                (
                    Some("Shop".into()),
                    vec![site("<b>cart</b>", Some("Shop"), Verdict::Down)],
                ),
                (None, vec![site("docs", None, Verdict::Up)]),
            ],
            bars_since: since,
            incidents: vec![Incident {
                site: "<b>cart</b>".into(),
                started_at: since,
                ended_at: None,
                duration_seconds: 60,
                first_error: Some("secret backend error".into()),
                locations: vec!["agent-location-eu".into()],
            }],
            details,
            refresh_seconds: 0,
        })
        .into_string()
    }

    #[test]
    fn the_public_page_hides_internal_detail_unless_configured() {
        let html = page(false);
        assert!(html.contains("Partial outage"), "{html}");
        assert!(html.contains("&lt;b&gt;cart&lt;/b&gt;") && !html.contains("<b>cart"));
        assert!(html.contains("Acme &lt;status&gt;"));
        assert!(html.find("data-group=\"Shop\"").unwrap() < html.find("data-group=\"\"").unwrap());
        assert_eq!(html.matches("class=\"bar ").count(), 2 * BAR_DAYS as usize);
        for hidden in [
            "internal.example",
            "secret backend error",
            "agent-location-eu",
        ] {
            assert!(!html.contains(hidden), "{hidden} shown");
        }
        let html = page(true);
        assert!(html.contains("internal.example") && html.contains("secret backend error"));
    }

    #[test]
    fn the_banner_names_the_worst_state() {
        let sites = |vs: &[Verdict]| -> Vec<SiteState> {
            vs.iter().map(|v| site("s", None, *v).site).collect()
        };
        let banner_of = |vs: &[Verdict]| {
            let s = sites(vs);
            banner(&s.iter().map(|s| (s, false)).collect::<Vec<_>>()).1
        };
        assert_eq!(banner_of(&[]), "No services are listed yet");
        assert_eq!(
            banner_of(&[Verdict::Up, Verdict::Up]),
            "All systems operational"
        );
        assert_eq!(
            banner_of(&[Verdict::Up, Verdict::Degraded]),
            "Degraded performance"
        );
        assert_eq!(banner_of(&[Verdict::Up, Verdict::Down]), "Partial outage");
        assert_eq!(banner_of(&[Verdict::Down, Verdict::Down]), "Major outage");
        assert_eq!(banner_of(&[Verdict::Unknown]), "Status unknown");
        assert_eq!(
            banner_of(&[Verdict::Up, Verdict::Unknown]),
            "All systems operational"
        );
        // A site under maintenance is left out: down during maintenance is no outage.
        let with_maintenance = |vs: &[(Verdict, bool)]| {
            let s: Vec<(SiteState, bool)> = vs
                .iter()
                .map(|(v, m)| (site("s", None, *v).site, *m))
                .collect();
            banner(&s.iter().map(|(s, m)| (s, *m)).collect::<Vec<_>>())
        };
        assert_eq!(
            with_maintenance(&[(Verdict::Down, true)]),
            ("maintenance", "Maintenance in progress")
        );
        assert_eq!(
            with_maintenance(&[(Verdict::Up, false), (Verdict::Down, true)]),
            ("maintenance", "Maintenance in progress")
        );
        assert_eq!(
            with_maintenance(&[(Verdict::Down, false), (Verdict::Down, true)]).1,
            "Partial outage"
        );
        assert_eq!(
            with_maintenance(&[(Verdict::Degraded, false), (Verdict::Up, true)]).1,
            "Degraded performance"
        );
    }
}
