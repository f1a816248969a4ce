//! The site catalog: each agent publishes the sites it checks, as resolved from its YAML,
//! to a compacted Kafka topic (key = site name, value = a [`SiteDefinition`] as JSON; a
//! tombstone, a null value, when a site is removed). The sink keeps them in PostgreSQL, so
//! it and every reader know each site's interval, thresholds, quorum, tags, group and
//! public flag without reading YAML. Versioned like the result message: fields are only
//! ever added (with a default), so a sink reads every version it has been sent.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::schema::rfc3339_millis;

/// Version written into every definition's `schema` field.
pub const CATALOG_SCHEMA_VERSION: u32 = 1;

/// Default catalog topic.
pub const DEFAULT_CATALOG_TOPIC: &str = "sitewatch.sites";

/// Default `failure_threshold`: bad checks in a row before a location counts as failing.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 2;

/// Default `success_threshold`: good checks in a row before a failing location passes again.
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 1;

/// One site as an agent defines it (the catalog topic's value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteDefinition {
    /// Schema version of this message.
    pub schema: u32,
    /// Site name (also the Kafka key).
    pub site: String,
    /// URL checked.
    pub url: String,
    /// Time between checks, in milliseconds.
    pub interval_ms: u64,
    /// Deadline of one check, in milliseconds.
    pub timeout_ms: u64,
    /// Bad checks in a row before a location is failing.
    pub failure_threshold: u32,
    /// Good checks in a row before a failing location passes again.
    pub success_threshold: u32,
    /// How many active locations must fail for the site to be down.
    pub quorum: Quorum,
    /// Free labels, e.g. `team-shop`, `tier-1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The group a site is listed under on status pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Whether the site may appear on the public status page.
    #[serde(default)]
    pub public: bool,
    /// The agent that published this definition.
    pub agent: String,
    /// That agent's location label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// When the agent published it: of two definitions of a site, the later one wins.
    #[serde(with = "rfc3339_millis")]
    pub published_at: DateTime<Utc>,
}

impl SiteDefinition {
    /// Whether `other` defines the site differently (who published it, and when, aside).
    pub fn differs_from(&self, other: &SiteDefinition) -> bool {
        (
            &self.url,
            self.interval_ms,
            self.timeout_ms,
            self.failure_threshold,
            self.success_threshold,
            self.quorum,
            &self.tags,
            &self.group,
            self.public,
        ) != (
            &other.url,
            other.interval_ms,
            other.timeout_ms,
            other.failure_threshold,
            other.success_threshold,
            other.quorum,
            &other.tags,
            &other.group,
            other.public,
        )
    }
}

/// How many of a site's active locations must be failing for it to be `down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// More than half of the active locations (the default).
    #[default]
    Majority,
    /// One failing location is enough.
    Any,
    /// Every active location must be failing.
    All,
    /// At least this many locations. With fewer active locations than that the site is
    /// `degraded` at worst.
    AtLeast(NonZeroU32),
}

impl Quorum {
    /// Failing locations needed for `down` when `active` locations take part (at least 1).
    pub fn required(self, active: usize) -> usize {
        match self {
            Quorum::Majority => active / 2 + 1,
            Quorum::Any => 1,
            Quorum::All => active.max(1),
            Quorum::AtLeast(n) => usize::try_from(n.get()).unwrap_or(usize::MAX),
        }
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::Majority => f.write_str("majority"),
            Quorum::Any => f.write_str("any"),
            Quorum::All => f.write_str("all"),
            Quorum::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for Quorum {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "majority" => Ok(Quorum::Majority),
            "any" => Ok(Quorum::Any),
            "all" => Ok(Quorum::All),
            t => t
                .parse::<u32>()
                .ok()
                .and_then(NonZeroU32::new)
                .map(Quorum::AtLeast)
                .ok_or_else(|| {
                    format!("`{text}` is not a quorum: use majority, any, all or a number of locations (at least 1)")
                }),
        }
    }
}

/// Written as `"majority"`, `"any"`, `"all"` or a number.
impl Serialize for Quorum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Quorum::AtLeast(n) => s.serialize_u32(n.get()),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(i64),
            Text(String),
        }
        let text = match Written::deserialize(d)? {
            Written::Number(n) => n.to_string(),
            Written::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_reads_words_and_numbers_and_counts_locations() {
        for (text, quorum) in [
            ("\"majority\"", Quorum::Majority),
            ("\"any\"", Quorum::Any),
            ("\"all\"", Quorum::All),
            ("2", Quorum::AtLeast(NonZeroU32::new(2).unwrap())),
            ("\"3\"", Quorum::AtLeast(NonZeroU32::new(3).unwrap())),
        ] {
            let q: Quorum = serde_json::from_str(text).unwrap();
            assert_eq!(q, quorum, "{text}");
            let back: Quorum = serde_json::from_value(serde_json::to_value(q).unwrap()).unwrap();
            assert_eq!(back, q);
        }
        for bad in ["0", "\"most\"", "-1", "\"\""] {
            let e = serde_json::from_str::<Quorum>(bad).unwrap_err().to_string();
            assert!(e.contains("majority, any, all"), "{bad}: {e}");
        }
        assert_eq!(
            [1, 2, 3, 4].map(|n| Quorum::Majority.required(n)),
            [1, 2, 2, 3]
        );
        assert_eq!(Quorum::Any.required(3), 1);
        assert_eq!(Quorum::All.required(3), 3);
        assert_eq!(Quorum::AtLeast(NonZeroU32::new(2).unwrap()).required(1), 2);
    }

    #[test]
    fn a_definition_round_trips_and_compares_without_publisher() {
        let d = SiteDefinition {
            schema: CATALOG_SCHEMA_VERSION,
            site: "shop".into(),
            url: "https://shop.example/".into(),
            interval_ms: 30_000,
            timeout_ms: 5_000,
            failure_threshold: 3,
            success_threshold: 2,
            quorum: Quorum::Majority,
            tags: vec!["tier-1".into()],
            group: Some("shop".into()),
            public: true,
            agent: "eu-1".into(),
            location: Some("eu".into()),
            published_at: "2026-01-02T03:04:05.678Z".parse().unwrap(),
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["quorum"], "majority");
        assert_eq!(json["published_at"], "2026-01-02T03:04:05.678Z");
        let back: SiteDefinition = serde_json::from_value(json).unwrap();
        assert_eq!(back, d);
        let mut other = d.clone();
        other.agent = "us-1".into();
        other.published_at = Utc::now();
        assert!(!d.differs_from(&other));
        other.failure_threshold = 1;
        assert!(d.differs_from(&other));
    }
}
