//! `/metrics` of the web role: one series per site for its verdict, its uptime and its
//! latency, as blackbox_exporter users expect (`sitewatch_site_up{site,group}` is to a site
//! what `probe_success` is to a probe), so Prometheus and Grafana can graph and alert on
//! sitewatch's verdicts.

use sitewatch_checks::ops::MetricsText;

use super::model::{SiteSummary, Verdict};

/// The Prometheus text for `rows`.
pub fn text(rows: &[SiteSummary]) -> String {
    let mut t = MetricsText::new();
    fn labels(r: &SiteSummary) -> Vec<(&'static str, &str)> {
        vec![
            ("site", r.site.name.as_str()),
            ("group", r.site.group.as_deref().unwrap_or("")),
        ]
    }
    let up: Vec<_> = rows
        .iter()
        .filter_map(|r| {
            let value = match r.site.verdict {
                Verdict::Up | Verdict::Degraded => 1.0,
                Verdict::Down => 0.0,
                Verdict::Unknown => return None,
            };
            Some((labels(r), value))
        })
        .collect();
    t.gauge_labelled(
        "sitewatch_site_up",
        "1 when the site's verdict is up or degraded, 0 when down (absent while unknown).",
        &up,
    );
    let mut verdicts = Vec::new();
    for r in rows {
        for v in Verdict::ALL {
            let mut l = labels(r);
            l.push(("verdict", v.as_str()));
            verdicts.push((l, if r.site.verdict == v { 1.0 } else { 0.0 }));
        }
    }
    t.gauge_labelled(
        "sitewatch_site_verdict",
        "1 for the site's current verdict (up, degraded, down, unknown), 0 for the others.",
        &verdicts,
    );
    let mut uptime = Vec::new();
    for r in rows {
        let u = &r.uptime;
        for (window, pct) in [
            ("24h", u.pct_24h),
            ("7d", u.pct_7d),
            ("30d", u.pct_30d),
            ("90d", u.pct_90d),
        ] {
            if let Some(pct) = pct {
                let mut l = labels(r);
                l.push(("window", window));
                uptime.push((l, pct / 100.0));
            }
        }
    }
    t.gauge_labelled(
        "sitewatch_site_uptime_ratio",
        "Share of checks that were not down over the window (24h from the hour, longer from midnight UTC).",
        &uptime,
    );
    let p95: Vec<_> = rows
        .iter()
        .filter_map(|r| Some((labels(r), r.uptime.p95_ms_24h? / 1000.0)))
        .collect();
    t.gauge_labelled(
        "sitewatch_site_response_p95_seconds",
        "95th percentile of total response time over the last 24 hours.",
        &p95,
    );
    let open: Vec<_> = rows
        .iter()
        .map(|r| (labels(r), if r.open_incident.is_some() { 1.0 } else { 0.0 }))
        .collect();
    t.gauge_labelled(
        "sitewatch_site_incident_open",
        "1 while the site has an open incident.",
        &open,
    );
    let maintenance: Vec<_> = rows
        .iter()
        .map(|r| (labels(r), if r.maintenance.is_some() { 1.0 } else { 0.0 }))
        .collect();
    t.gauge_labelled(
        "sitewatch_site_maintenance",
        "1 while the site is in a maintenance window of the sink's config (to inhibit alerts).",
        &maintenance,
    );
    let mut locations = Vec::new();
    for r in rows {
        for l in &r.site.locations {
            let value = match l.state {
                Verdict::Up | Verdict::Degraded => 1.0,
                Verdict::Down => 0.0,
                Verdict::Unknown => continue,
            };
            locations.push((
                vec![
                    ("site", r.site.name.as_str()),
                    ("location", l.name.as_str()),
                ],
                value,
            ));
        }
    }
    t.gauge_labelled(
        "sitewatch_location_up",
        "1 when the location's latest state of the site is up or degraded, 0 when down.",
        &locations,
    );
    t.gauge(
        "sitewatch_sites",
        "Sites known to sitewatch.",
        rows.len() as f64,
    );
    t.finish()
}
