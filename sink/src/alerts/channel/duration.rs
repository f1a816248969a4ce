//! Durations in the alert config (`10s`, `30m`, `24h`), read the project's one way
//! ([`sitewatch_checks::ops::units::parse_duration`]).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// `deserialize_with` for a required duration.
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    sitewatch_checks::ops::units::parse_duration(&s).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for an optional duration (use with `#[serde(default)]`).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| sitewatch_checks::ops::units::parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}
