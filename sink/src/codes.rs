//! How result values are encoded in the database's compact rows: outcomes as small codes
//! (the `outcomes` table holds the same numbers), HTTP versions as `10 * major + minor`,
//! timings as whole microseconds, sizes saturated to the column's type. Migration 0002
//! converts version-1 rows with the same rules (tested against each other).

use chrono::{DateTime, Utc};
use sitewatch_checks::Outcome;

/// `outcomes.id` of `up`.
pub const UP: i16 = 0;
/// `outcomes.id` of `degraded`.
pub const DEGRADED: i16 = 1;
/// `outcomes.id` of `down`.
pub const DOWN: i16 = 2;

/// An outcome's code.
pub fn outcome(o: Outcome) -> i16 {
    match o {
        Outcome::Up => UP,
        Outcome::Degraded => DEGRADED,
        Outcome::Down => DOWN,
    }
}

/// The outcome a code stands for (`None` for a code this build does not know).
pub fn outcome_of(code: i16) -> Option<Outcome> {
    match code {
        UP => Some(Outcome::Up),
        DEGRADED => Some(Outcome::Degraded),
        DOWN => Some(Outcome::Down),
        _ => None,
    }
}

/// Milliseconds (fractional) as whole microseconds within `0..=i32::MAX` (about 35
/// minutes, far beyond any check's timeout), rounded half to even as PostgreSQL's
/// `round(double precision)` does, so migration 0002 converts old rows identically.
pub fn micros(ms: f64) -> i32 {
    // `as` saturates (and maps NaN to 0), which is the clamping wanted.
    (ms * 1000.0).round_ties_even().max(0.0) as i32
}

/// The instant PostgreSQL stores for `at` (`timestamptz` keeps whole microseconds; results
/// carry milliseconds, values made in memory may carry nanoseconds).
pub fn as_stored(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// `HTTP/1.1` → 11, `HTTP/2.0` or `HTTP/2` → 20; anything else → `None`.
pub fn http_version(text: &str) -> Option<i16> {
    let version = text.strip_prefix("HTTP/")?;
    let (major, minor) = match version.split_once('.') {
        Some((major, minor)) => (major, minor),
        None => (version, "0"),
    };
    let digit = |s: &str| match s.as_bytes() {
        [d @ b'0'..=b'9'] => Some(i16::from(d - b'0')),
        _ => None,
    };
    Some(digit(major)? * 10 + digit(minor)?)
}

/// Saturating conversion to `integer`.
pub fn int4(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Saturating conversion to `smallint`.
pub fn int2(v: i64) -> i16 {
    i16::try_from(v).unwrap_or(if v < 0 { i16::MIN } else { i16::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(micros(1.0), 1000);
        assert_eq!(micros(0.0004), 0);
        assert_eq!(micros(12.3456), 12346);
        assert_eq!(micros(0.0005), 0, "half to even");
        assert_eq!(micros(0.0015), 2, "half to even");
        assert_eq!(micros(-1.0), 0);
        assert_eq!(micros(1e12), i32::MAX);
        assert_eq!(http_version("HTTP/1.1"), Some(11));
        assert_eq!(http_version("HTTP/2.0"), Some(20));
        assert_eq!(http_version("HTTP/2"), Some(20));
        assert_eq!(http_version("HTTP/0.9"), Some(9));
        assert_eq!(http_version("HTTP/11.1"), None);
        assert_eq!(http_version("SPDY"), None);
        assert_eq!(int4(u64::MAX), i32::MAX);
        assert_eq!(int2(-100_000), i16::MIN);
        for o in [Outcome::Up, Outcome::Degraded, Outcome::Down] {
            assert_eq!(outcome_of(outcome(o)), Some(o));
        }
    }
}
