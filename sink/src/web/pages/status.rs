//! `/status` and `/status/{group}`: the public status page. Only sites the catalog marks
//! `public`, grouped, under an overall banner, with recent incidents; no URLs, error texts,
//! locations or agent names unless the operator turned public details on.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::charts::daily_bars;
use super::format::{pct, segment};
use super::layout::{page, Nav};
use super::maintenance::maintenance_table;
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
    /// Maintenance of these sites: in progress and scheduled.
    pub maintenance: Vec<crate::web::maintenance::Maintenance>,
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
            h2 { "Scheduled maintenance" }
            (maintenance_table(&p.maintenance, Utc::now(), "no maintenance scheduled"))
            h2 { "Incidents" }
            (incident_table(&p.incidents, p.details))
        },
    )
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
            maintenance: vec![crate::web::maintenance::Maintenance {
                site: "<b>cart</b>".into(),
                window: "db <upgrade>".into(),
                starts_at: Utc::now() + chrono::Duration::hours(1),
                ends_at: Utc::now() + chrono::Duration::hours(2),
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
        assert!(html.contains("Scheduled maintenance") && html.contains("db &lt;upgrade&gt;"));
        assert!(html.contains("data-state=\"scheduled\""), "{html}");
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
            banner(&s.iter().collect::<Vec<_>>()).1
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
    }
}
