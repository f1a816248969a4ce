//! `/`: every site with its verdict, each location's state, uptime over 24 h / 7 d / 30 d /
//! 90 d, p95 and open incidents; filters by tag and group.

use std::collections::BTreeSet;

use maud::{html, Markup};

use super::format::{duration, ms, pct, segment, site_href, time};
use super::layout::{page, Nav};
use crate::web::load::Filter;
use crate::web::model::{SiteSummary, Verdict};

/// The dashboard for `rows` (already filtered); `all_tags`/`all_groups` list the choices.
pub fn dashboard(
    rows: &[SiteSummary],
    filter: &Filter,
    all_tags: &BTreeSet<String>,
    all_groups: &BTreeSet<String>,
    refresh_seconds: u64,
) -> Markup {
    let count = |v: Verdict| rows.iter().filter(|r| r.site.verdict == v).count();
    let filtered = filter.tag.is_some() || filter.group.is_some();
    page(
        "sitewatch",
        Nav::Internal,
        refresh_seconds,
        html! {
            h1 { "Sites" }
            p.counts #counts {
                span { strong { (rows.len()) } " sites" }
                @for v in Verdict::ALL {
                    span class=(format!("count-{}", v.as_str())) {
                        span class=(format!("pill {}", v.as_str())) { (count(v)) } " " (v.as_str())
                    }
                }
            }
            @if !all_tags.is_empty() || !all_groups.is_empty() || filtered {
                p.filters #filters {
                    a href="/" class=[(!filtered).then_some("on")] { "all" }
                    @for g in all_groups {
                        a href=(format!("/?group={}", segment(g)))
                          class=[(filter.group.as_ref() == Some(g)).then_some("on")] { "group: " (g) }
                    }
                    @for t in all_tags {
                        a href=(format!("/?tag={}", segment(t)))
                          class=[(filter.tag.as_ref() == Some(t)).then_some("on")] { "#" (t) }
                    }
                }
            }
            @if rows.is_empty() {
                p.muted #empty { "No sites yet: results appear here once the sink has stored some." }
            } @else {
                table #sites {
                    thead { tr {
                        th { "Site" } th { "Verdict" } th { "Locations" }
                        th.num { "24 h" } th.num { "7 d" } th.num { "30 d" } th.num { "90 d" }
                        th.num { "p95 (24 h)" } th { "Open incident" }
                    } }
                    tbody {
                        @for r in rows { (row(r)) }
                    }
                }
            }
        },
    )
}

fn row(r: &SiteSummary) -> Markup {
    let s = &r.site;
    let u = &r.uptime;
    html! {
        tr.site data-site=(s.name) data-verdict=(s.verdict.as_str()) {
            td {
                a.name href=(site_href(&s.name)) { (s.name) }
                @if let Some(g) = &s.group { br; span.muted { (g) } }
                @for t in &s.tags { " " span.muted.tag { "#" (t) } }
            }
            td { span class=(format!("pill verdict {}", s.verdict.as_str()))
                    data-tip=[s.verdict_reason.as_deref()] { (s.verdict.as_str()) }
                @if let Some(w) = &r.maintenance {
                    " " span.pill.maintenance data-maintenance=(w) data-tip=(format!("maintenance window {w}")) { "maintenance" }
                }
            }
            td.locations {
                @for l in &s.locations {
                    span class=(format!("loc {}", l.state.as_str())) data-location=(l.name)
                        data-tip=(match &l.error {
                            Some(e) => format!("{}: {} ({})", l.name, l.state.as_str(), e),
                            None => format!("{}: {}", l.name, l.state.as_str()),
                        }) { (l.name) }
                }
                @if s.locations.is_empty() { span.muted { "none recent" } }
            }
            td.num.uptime-24h { (pct(u.pct_24h)) }
            td.num.uptime-7d { (pct(u.pct_7d)) }
            td.num.uptime-30d { (pct(u.pct_30d)) }
            td.num.uptime-90d { (pct(u.pct_90d)) }
            td.num.p95 { (ms(u.p95_ms_24h)) }
            td.incident {
                @if let Some(i) = &r.open_incident {
                    span.pill.down { "open " (duration(i.duration_seconds)) }
                    " " span.muted { "since " (time(i.started_at)) }
                    @if let Some(e) = &i.first_error { br; span.err { (e) } }
                }
            }
        }
    }
}
