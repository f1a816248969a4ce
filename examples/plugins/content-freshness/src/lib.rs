//! `content-freshness`: finds a timestamp in the page and fails when it is too old,
//! e.g. a weather page's "Last updated today at 14:05".
//!
//! Config:
//! - `pattern` (required): regex whose group `ts`, or else first group, is the timestamp.
//! - `format`: chrono format of the timestamp (default RFC 3339). A format with a time
//!   but no date (`%H:%M`) means today, or yesterday when today's would be in the future.
//! - `utc_offset`: the page's offset for timestamps without one, e.g. `+02:00` (default UTC).
//! - `max_age_minutes` (required): older than this fails.
//! - `warn_age_minutes`: older than this warns.

wit_bindgen::generate!({ path: "../../../wit", world: "checker" });

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, NaiveTime, TimeZone, Utc};
use regex::Regex;
use sitewatch::check::types::{Metric, Outcome};

/// A page time this far in the future still counts as today (clock skew).
const SKEW_MINUTES: i64 = 5;

struct ContentFreshness;

impl Guest for ContentFreshness {
    fn check(response: Response, config: Vec<(String, String)>) -> Result<Verdict, String> {
        let get = |key: &str| {
            config
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let minutes = |key: &str| -> Result<Option<f64>, String> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("config `{key}` is not a number: `{v}`"))
                })
                .transpose()
        };
        let pattern = get("pattern").ok_or("config `pattern` is required")?;
        let re =
            Regex::new(pattern).map_err(|e| format!("config `pattern` is not a regex: {e}"))?;
        let max_age = minutes("max_age_minutes")?.ok_or("config `max_age_minutes` is required")?;
        let warn_age = minutes("warn_age_minutes")?;
        let offset: FixedOffset = match get("utc_offset") {
            Some(o) => o
                .parse()
                .map_err(|_| format!("config `utc_offset` is not like +02:00: `{o}`"))?,
            None => FixedOffset::east_opt(0).ok_or("no UTC offset")?,
        };
        let now = now();

        let body = String::from_utf8_lossy(&response.body);
        let Some(caps) = re.captures(&body) else {
            return Ok(verdict(
                Outcome::Fail,
                format!("no timestamp matching `{pattern}` in the page"),
                None,
            ));
        };
        let Some(text) = caps
            .name("ts")
            .or_else(|| caps.get(1))
            .or_else(|| caps.get(0))
        else {
            return Ok(verdict(
                Outcome::Fail,
                "the pattern matched nothing".into(),
                None,
            ));
        };
        let text = text.as_str().trim();
        let Some(stamp) = parse(text, get("format"), offset, now) else {
            return Ok(verdict(
                Outcome::Fail,
                format!("cannot read `{text}` as a time"),
                None,
            ));
        };
        let age = (now - stamp.with_timezone(&Utc)).num_seconds().max(0) as f64 / 60.0;
        let (outcome, message) = if age > max_age {
            (
                Outcome::Fail,
                format!("content is {age:.0} min old (updated {text}), limit {max_age} min"),
            )
        } else if warn_age.is_some_and(|w| age > w) {
            (
                Outcome::Warn,
                format!("content is {age:.0} min old (updated {text})"),
            )
        } else {
            (Outcome::Pass, format!("content is {age:.0} min old"))
        };
        Ok(verdict(outcome, message, Some(age)))
    }
}

fn parse(
    text: &str,
    format: Option<&str>,
    offset: FixedOffset,
    now: DateTime<Utc>,
) -> Option<DateTime<FixedOffset>> {
    let Some(format) = format else {
        return DateTime::parse_from_rfc3339(text).ok();
    };
    if let Ok(t) = DateTime::parse_from_str(text, format) {
        return Some(t);
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
        return offset.from_local_datetime(&t).single();
    }
    let time = NaiveTime::parse_from_str(text, format).ok()?;
    let today = now.with_timezone(&offset).date_naive().and_time(time);
    let stamp = offset.from_local_datetime(&today).single()?;
    if stamp.with_timezone(&Utc) > now + Duration::minutes(SKEW_MINUTES) {
        Some(stamp - Duration::days(1))
    } else {
        Some(stamp)
    }
}

fn now() -> DateTime<Utc> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    DateTime::from_timestamp(since_epoch.as_secs() as i64, since_epoch.subsec_nanos())
        .unwrap_or_default()
}

fn verdict(outcome: Outcome, message: String, age: Option<f64>) -> Verdict {
    Verdict {
        outcome,
        message,
        metrics: age
            .map(|a| Metric {
                name: "age_minutes".into(),
                value: a,
            })
            .into_iter()
            .collect(),
        labels: Vec::new(),
    }
}

export!(ContentFreshness);
