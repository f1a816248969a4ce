//! Inline SVG: a row of daily bars coloured by uptime (a day with maintenance gets a
//! marker above its bar and the maintenance in its hover text), and a latency chart (p50 solid, p95
//! dashed, one colour per location). Numbers are computed here; every text (location
//! names, figures on hover) goes through maud's escaping.

use chrono::{DateTime, TimeDelta, Utc};
use maud::{html, Markup};

use super::format::{duration, ms, pct, uptime_class, uptime_fill};
use crate::web::model::{BucketPoint, LocationSeries, Maintenance};

/// Width of one day's bar and the gap after it, px.
const BAR_W: i64 = 6;
const BAR_GAP: i64 = 2;
const BAR_H: i64 = 28;
/// Height of the maintenance marker above a bar, px.
const MARK_H: i64 = 4;

/// Colours of the locations' lines, in order.
const LINE_COLOURS: [&str; 6] = [
    "#1f5fbf", "#c2410c", "#7e22ce", "#047857", "#be185d", "#4b5563",
];

/// The colour of the `i`th location.
pub fn line_colour(i: usize) -> &'static str {
    LINE_COLOURS[i % LINE_COLOURS.len()]
}

/// What hovering a day shows.
fn day_tip(day: DateTime<Utc>, p: Option<&BucketPoint>) -> String {
    let date = day.format("%Y-%m-%d");
    match p {
        None => format!("{date}: no checks"),
        Some(p) => format!(
            "{date}: {} up\n{} checks, {} down, {} degraded\np50 {}, p95 {}",
            pct(p.uptime_pct),
            p.checks,
            p.down,
            p.degraded,
            ms(p.p50_ms),
            ms(p.p95_ms)
        ),
    }
}

/// Seconds of `[from, to)` inside any of `periods` (overlapping periods counted once), and
/// the windows' names.
fn maintenance_in(
    periods: &[Maintenance],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (i64, Vec<&str>) {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = periods
        .iter()
        .filter(|m| m.starts_at < to && m.ends_at > from)
        .map(|m| (m.starts_at.max(from), m.ends_at.min(to)))
        .collect();
    spans.sort();
    let (mut total, mut reach) = (0, from);
    for (s, e) in spans {
        let s = s.max(reach);
        if e > s {
            total += (e - s).num_seconds();
            reach = e;
        }
    }
    let mut names: Vec<&str> = periods
        .iter()
        .filter(|m| m.starts_at < to && m.ends_at > from)
        .map(|m| m.window.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    (total, names)
}

/// `days` bars from `first` (midnight UTC), one per day, missing days grey; days with
/// some of `maintenance` (the site's periods) marked.
pub fn daily_bars(
    series: &LocationSeries,
    first: DateTime<Utc>,
    days: i64,
    maintenance: &[Maintenance],
) -> Markup {
    let width = days * (BAR_W + BAR_GAP);
    let height = BAR_H + MARK_H + 1;
    html! {
        svg.bars width=(width) height=(height) viewBox=(format!("0 0 {width} {height}"))
            role="img" aria-label=(format!("daily uptime, {}", series.location))
            data-location=(series.location) {
            @for i in 0..days {
                @let day = first + TimeDelta::days(i);
                @let p = series.points.iter().find(|p| p.bucket == day);
                @let class = uptime_class(p.and_then(|p| p.uptime_pct));
                @let (maint, names) = maintenance_in(maintenance, day, day + TimeDelta::days(1));
                @let tip = if maint > 0 {
                    format!("{}\nmaintenance {} ({})", day_tip(day, p), duration(maint), names.join(", "))
                } else {
                    day_tip(day, p)
                };
                @if maint > 0 {
                    rect.maint-mark x=(i * (BAR_W + BAR_GAP)) y="0" width=(BAR_W) height=(MARK_H)
                        fill="#5b6b8c" data-day=(day.format("%Y-%m-%d").to_string()) data-tip=(tip) {}
                }
                rect class=(format!("bar {class}")) x=(i * (BAR_W + BAR_GAP)) y=(MARK_H + 1)
                    width=(BAR_W) height=(BAR_H) rx="1" fill=(uptime_fill(class))
                    data-day=(day.format("%Y-%m-%d").to_string())
                    data-maintenance-seconds=[(maint > 0).then_some(maint)]
                    data-tip=(tip) {}
            }
        }
    }
}

/// Chart geometry.
const W: f64 = 760.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// p50 (solid) and p95 (dashed) per location from `since` to `until`; buckets `step` apart
/// (a missing bucket breaks the line).
pub fn latency_chart(
    series: &[LocationSeries],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    step: TimeDelta,
) -> Markup {
    let max = series
        .iter()
        .flat_map(|s| &s.points)
        .filter_map(|p| p.p95_ms)
        .fold(0.0_f64, f64::max);
    let top = nice_ceiling(max);
    let span = (until - since).num_milliseconds().max(1) as f64;
    let x = |t: DateTime<Utc>| {
        // A bucket is drawn at its middle.
        let mid = t + step / 2;
        LEFT + (W - LEFT - RIGHT) * ((mid - since).num_milliseconds() as f64 / span).clamp(0.0, 1.0)
    };
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
    html! {
        svg.chart #latency width=(W) height=(H) viewBox=(format!("0 0 {W} {H}")) role="img"
            aria-label="response time, p50 and p95 per location" {
            @for frac in [0.0, 0.5, 1.0] {
                line x1=(LEFT) x2=(W - RIGHT) y1=(y(top * frac)) y2=(y(top * frac)) stroke="#e4e7ec" {}
                text x=(LEFT - 6.0) y=(y(top * frac) + 4.0) text-anchor="end" { (ms(Some(top * frac))) }
            }
            text x=(LEFT) y=(H - 6.0) { (since.format("%Y-%m-%d %H:%M").to_string()) }
            text x=(W - RIGHT) y=(H - 6.0) text-anchor="end" { (until.format("%Y-%m-%d %H:%M").to_string()) }
            @for (i, s) in series.iter().enumerate() {
                g.series data-location=(s.location) {
                    @for (dash, q) in [("", 0.5), ("5 3", 0.95)] {
                        @for run in runs(&s.points, step) {
                            @let pts = polyline(run, q, &x, &y);
                            @if !pts.is_empty() {
                                polyline fill="none" stroke=(line_colour(i)) stroke-width="1.6"
                                    stroke-dasharray=(dash) points=(pts) {}
                            }
                        }
                    }
                    @for p in &s.points {
                        @if let Some(v) = p.p95_ms {
                            circle cx=(x(p.bucket)) cy=(y(v)) r="2.2" fill=(line_colour(i))
                                data-tip=(format!("{} {}: p50 {}, p95 {}, {} checks",
                                    s.location, p.bucket.format("%Y-%m-%d %H:%M"),
                                    ms(p.p50_ms), ms(p.p95_ms), p.checks)) {}
                        }
                    }
                }
            }
        }
    }
}

/// Runs of consecutive buckets.
fn runs(points: &[BucketPoint], step: TimeDelta) -> Vec<&[BucketPoint]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].bucket - points[i - 1].bucket > step {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn polyline(
    run: &[BucketPoint],
    q: f64,
    x: &impl Fn(DateTime<Utc>) -> f64,
    y: &impl Fn(f64) -> f64,
) -> String {
    let value = |p: &BucketPoint| if q < 0.9 { p.p50_ms } else { p.p95_ms };
    let pts: Vec<String> = run
        .iter()
        .filter_map(|p| value(p).map(|v| format!("{:.1},{:.1}", x(p.bucket), y(v))))
        .collect();
    if pts.len() < 2 {
        return String::new();
    }
    pts.join(" ")
}

/// A round number at or above `v` (1, 2 or 5 times a power of ten), at least 1.
fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 1.0 {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_scales_round_up() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(2000.0), 2000.0);
    }
}
