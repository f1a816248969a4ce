//! The report as an aligned terminal table, then open incidents and each site's recent events.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::model::{Report, SiteReport};

/// Longest error message shown in the table (the JSON form has it whole).
const ERROR_WIDTH: usize = 60;

/// The report as text.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sitewatch report: {} site(s), results since {} (from {})\n",
        report.sites.len(),
        time(report.since),
        report.source.describe()
    );
    if report.sites.is_empty() {
        out.push_str("no results stored yet\n");
        return out;
    }
    let header = [
        "SITE",
        "VERDICT",
        "SINCE",
        "LOCATIONS",
        "UPTIME",
        "CHECKS",
        "MTTR",
        "P50 ms",
        "P95 ms",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 10]> = report
        .sites
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.verdict.clone(),
                s.verdict_since.map_or("-".into(), time),
                locations(s),
                s.uptime_pct.map_or("-".into(), |u| format!("{u:.1}%")),
                s.checks.to_string(),
                s.mttr_seconds.map_or("-".into(), seconds),
                number(s.p50_ms),
                number(s.p95_ms),
                s.last_error.as_deref().map_or("-".into(), |e| {
                    let kind = s.last_error_kind.as_deref().unwrap_or("error");
                    cut(&format!("{kind}: {e}"), ERROR_WIDTH)
                }),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(&header));
    for row in &rows {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    if let Some(mttr) = report.mttr_seconds {
        let _ = writeln!(
            out,
            "\nMTTR over incidents resolved in the window: {}",
            seconds(mttr)
        );
    }
    if report.sites.iter().any(|s| s.open_incident.is_some()) {
        out.push_str("\nopen incidents:\n");
        for s in &report.sites {
            let Some(i) = &s.open_incident else { continue };
            let _ = write!(
                out,
                "  #{}  {:<w$}  down since {} (first failing check {}), locations {}",
                i.id,
                s.name,
                time(i.opened_at),
                time(i.started_at),
                i.locations.join(", "),
                w = widths[0]
            );
            if let Some(error) = &i.first_error {
                let _ = write!(out, "  ({})", cut(error, ERROR_WIDTH));
            }
            out.push('\n');
        }
    }
    if report.sites.iter().any(|s| !s.events.is_empty()) {
        out.push_str("\nrecent changes:\n");
        for s in &report.sites {
            for e in &s.events {
                let what = match (e.kind.as_str(), &e.location) {
                    ("location_silent", Some(l)) => format!("location {l} silent"),
                    ("outcome", _) => "check outcome".to_string(),
                    _ => "verdict".to_string(),
                };
                let _ = write!(
                    out,
                    "  {}  {:<w$}  {what}: {} -> {}",
                    time(e.at),
                    s.name,
                    e.previous.as_deref().unwrap_or("(new)"),
                    e.new,
                    w = widths[0]
                );
                if let Some(reason) = &e.reason {
                    let _ = write!(out, "  ({})", cut(reason, ERROR_WIDTH));
                }
                out.push('\n');
            }
        }
    }
    out
}

/// Each location's state in a few characters: `eu:passing us:failing ap:silent`.
fn locations(s: &SiteReport) -> String {
    if s.locations.is_empty() {
        return "-".into();
    }
    s.locations
        .iter()
        .map(|l| {
            let state = if l.silent_since.is_some() {
                "silent"
            } else {
                l.state.as_str()
            };
            format!("{}:{state}", l.name)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A duration in seconds as `1h 2m`, `3m 4s` or `5s`.
fn seconds(total: f64) -> String {
    let s = total.round().max(0.0) as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn number(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}
