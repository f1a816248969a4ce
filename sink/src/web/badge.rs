//! SVG badges for READMEs and wikis: `/badge/{site}/status.svg` (the verdict) and
//! `/badge/{site}/uptime/{range}.svg`, flat style, text escaped like every page.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::model::Verdict;

/// How long a client or proxy may reuse a status badge, seconds.
pub const STATUS_MAX_AGE: u32 = 60;
/// How long for an uptime badge.
pub const UPTIME_MAX_AGE: u32 = 300;

/// Approximate width of `text` in 11px Verdana, px.
fn text_width(text: &str) -> u32 {
    text.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | '|' | '!' | ' ' => 4,
            'm' | 'w' | 'M' | 'W' | '%' => 10,
            c if c.is_ascii_uppercase() || c.is_ascii_digit() => 7,
            _ => 6,
        })
        .sum()
}

/// A two-part badge (`label` grey, `value` on `colour`).
pub fn svg(label: &str, value: &str, colour: &str) -> String {
    let (lw, vw) = (text_width(label) + 12, text_width(value) + 12);
    let w = lw + vw;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height="20" role="img"
            aria-label=(format!("{label}: {value}")) {
            title { (label) ": " (value) }
            rect width=(lw) height="20" fill="#555" {}
            rect x=(lw) width=(vw) height="20" fill=(colour) {}
            g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" {
                text x=(lw / 2) y="14" { (label) }
                text x=(lw + vw / 2) y="14" { (value) }
            }
        }
    }
    .into_string()
}

/// Colour of a verdict.
pub fn verdict_colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Up => "#2f9e5b",
        Verdict::Degraded => "#d99a1e",
        Verdict::Down => "#d64545",
        Verdict::Unknown => "#9aa1ab",
    }
}

/// Colour of an uptime figure.
pub fn uptime_colour(pct: Option<f64>) -> &'static str {
    match pct {
        None => "#9aa1ab",
        Some(p) if p >= 99.9 => "#2f9e5b",
        Some(p) if p >= 99.0 => "#8cc152",
        Some(p) if p >= 95.0 => "#e8a33d",
        Some(_) => "#d64545",
    }
}

/// The badge as a response, cacheable for `max_age` seconds.
pub fn response(svg: String, max_age: u32) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "image/svg+xml; charset=utf-8".to_string(),
            ),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
        svg,
    )
        .into_response()
}
