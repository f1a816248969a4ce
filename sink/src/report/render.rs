//! The report as an aligned terminal table plus each site's recent events.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::model::Report;

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
        "OUTCOME",
        "SINCE",
        "UPTIME",
        "CHECKS",
        "P50 ms",
        "P95 ms",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 8]> = report
        .sites
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.outcome.clone(),
                time(s.since),
                s.uptime_pct.map_or("-".into(), |u| format!("{u:.1}%")),
                s.checks.to_string(),
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
    if report.sites.iter().any(|s| !s.events.is_empty()) {
        out.push_str("\nrecent changes:\n");
        for s in &report.sites {
            for e in &s.events {
                let _ = write!(
                    out,
                    "  {}  {:<w$}  {} -> {}",
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
