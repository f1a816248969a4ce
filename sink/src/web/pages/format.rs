//! How figures are written on pages: percentages, milliseconds, durations, times, links.

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A value as one URL path segment or query value (a site name may hold `/`, `?`, `<`...).
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// The site page's address.
pub fn site_href(name: &str) -> String {
    format!("/sites/{}", segment(name))
}

/// `99.95%`, or `–` without checks. Never rounds a loss up to 100%.
pub fn pct(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v >= 100.0 => "100%".into(),
        Some(v) => format!("{:.2}%", (v * 100.0).floor() / 100.0),
    }
}

/// `123 ms`, `1.23 s`, or `–`.
pub fn ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if v >= 10.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
    }
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

/// `2026-11-29 14:03 UTC`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `2026-11-29 14:03:07 UTC`.
pub fn time_s(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The colour class of a day's bar by its uptime.
pub fn uptime_class(v: Option<f64>) -> &'static str {
    match v {
        None => "nodata",
        Some(v) if v >= 99.9 => "u-full",
        Some(v) if v >= 99.0 => "u-high",
        Some(v) if v >= 95.0 => "u-mid",
        Some(_) => "u-low",
    }
}

/// Fill colour per [`uptime_class`].
pub fn uptime_fill(class: &str) -> &'static str {
    match class {
        "u-full" => "#2f9e5b",
        "u-high" => "#8cc152",
        "u-mid" => "#e8a33d",
        "u-low" => "#d64545",
        _ => "#e3e6ea",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_expect() {
        assert_eq!(pct(Some(99.999)), "99.99%");
        assert_eq!(pct(Some(100.0)), "100%");
        assert_eq!(pct(None), "–");
        assert_eq!(ms(Some(1234.0)), "1.23 s");
        assert_eq!(ms(Some(42.4)), "42 ms");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h 5m");
        assert_eq!(duration(90_000), "1d 1h");
        assert_eq!(
            site_href("<script>alert(1)</script>"),
            "/sites/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"
        );
        assert_eq!(site_href("a b/c"), "/sites/a%20b%2Fc");
    }
}
