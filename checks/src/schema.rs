//! The result message published for every check (Kafka value, JSON).
//!
//! Versioned by `schema`. Changes are additive: new optional fields get
//! `#[serde(default)]` so a sink decodes every version it has ever been sent.
//! Bump `SCHEMA_VERSION` only for changes an older sink would misread.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version written into every message's `schema` field (and a Kafka header).
pub const SCHEMA_VERSION: u32 = 1;

/// Longest site name, in bytes: names are database keys, and index entries are bounded.
pub const MAX_SITE_NAME: usize = 200;

/// One check of one site, as published by an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Schema version of this message.
    pub schema: u32,
    /// UUID v7 of this check; the idempotency key downstream.
    pub check_id: Uuid,
    /// Site name (unique id from the site list); also the Kafka key.
    pub site: String,
    /// URL that was checked.
    pub url: String,
    /// Name of the agent that ran the check.
    pub agent: String,
    /// Location label of that agent (e.g. a region), if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// When the check started (RFC 3339, millisecond precision, UTC).
    #[serde(with = "rfc3339_millis")]
    pub started_at: DateTime<Utc>,
    /// Overall verdict.
    pub outcome: Outcome,
    /// Why the site is down or degraded; absent when up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CheckError>,
    /// HTTP response facts; absent when no response was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    /// Phase timings in milliseconds.
    #[serde(default)]
    pub timings_ms: Timings,
    /// Server certificate facts for https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// The `regex` (must match) check, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<RegexInfo>,
    /// The `regex_absent` (must not match) check, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_absent: Option<RegexInfo>,
    /// Results of the site's WebAssembly check plugins, in configured order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginResult>,
    /// How late the check started against its scheduled slot, in ms (waiting for a
    /// concurrency slot or for CPU), when 10 ms or more: the agent was behind. Added in
    /// schema 1 without a version change (older messages lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_lag_ms: Option<f64>,
    /// Time during the check when the agent itself could not run it (its CPU was taken),
    /// in ms, when 10 ms or more. It is part of `timings_ms` and was added to the check's
    /// deadline; `degraded_after` is judged without it. Added like `agent_lag_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_stall_ms: Option<f64>,
}

/// Overall verdict of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything expected held.
    Up,
    /// Reachable and correct, but slow or a plugin warned / failed to run.
    Degraded,
    /// Unreachable or wrong.
    Down,
}

impl Outcome {
    /// The lowercase wire name (`up`, `degraded`, `down`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Up => "up",
            Outcome::Degraded => "degraded",
            Outcome::Down => "down",
        }
    }
}

/// Why a check is not `up`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckError {
    /// Machine-readable category.
    pub kind: ErrorKind,
    /// What happened, in words an operator can act on.
    pub message: String,
}

/// Categories of check failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Name resolution failed.
    Dns,
    /// TCP connection refused, reset or unreachable.
    Connect,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The whole check exceeded its timeout.
    Timeout,
    /// The status code was not in `expect_status` (or redirects exceeded).
    HttpStatus,
    /// The response could not be read (reset mid-body, protocol error).
    Body,
    /// `regex` did not match or `regex_absent` matched.
    Regex,
    /// A plugin failed the check or could not run.
    Plugin,
    /// Total time over `degraded_after`.
    Slow,
    /// The check could not be judged because the agent itself was overloaded (stalled
    /// for longer than the check's timeout, or out of file descriptors): the site's state
    /// is unknown, and the outcome (`degraded`) must not count against it.
    AgentOverloaded,
    /// A kind this build does not know, sent by a newer agent: still a result to store
    /// (the sink keeps the name as sent), never a reason to reject the message.
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Body => "body",
            ErrorKind::Regex => "regex",
            ErrorKind::Plugin => "plugin",
            ErrorKind::Slow => "slow",
            ErrorKind::AgentOverloaded => "agent_overloaded",
            ErrorKind::Other => "other",
        }
    }
}

/// HTTP response facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpInfo {
    /// Final status code (after redirects, if followed).
    pub status: u16,
    /// HTTP version, e.g. `HTTP/1.1`.
    pub version: String,
    /// Body bytes read (at most `max_body_bytes`).
    pub body_bytes: u64,
    /// True when the body was longer than `max_body_bytes` and reading stopped there.
    #[serde(default)]
    pub body_truncated: bool,
    /// Redirects followed to reach the final response.
    #[serde(default)]
    pub redirects: u32,
}

/// Phase timings in milliseconds (fractional). A phase that did not happen is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Name resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<f64>,
    /// TCP connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<f64>,
    /// TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<f64>,
    /// Request sent until first response byte (status line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb: Option<f64>,
    /// Whole check, start to body read (including redirects).
    pub total: f64,
}

/// Server certificate facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// The leaf certificate's notAfter.
    #[serde(with = "rfc3339_millis")]
    pub cert_not_after: DateTime<Utc>,
    /// Whole days from the check until notAfter (negative once expired).
    pub days_left: i64,
}

/// Result of a regex check on the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegexInfo {
    /// The pattern as configured.
    pub pattern: String,
    /// Whether it matched the (capped, lossy UTF-8) body.
    pub matched: bool,
}

/// What one plugin said about one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginResult {
    /// Plugin name as declared under `plugins:`.
    pub name: String,
    /// The plugin's verdict, or `error` if it could not produce one.
    pub outcome: PluginOutcome,
    /// The plugin's message, or why it errored.
    #[serde(default)]
    pub message: String,
    /// Named numbers the plugin reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// Free-form labels the plugin reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    /// Wall time of the plugin call in milliseconds.
    #[serde(default)]
    pub duration_ms: f64,
}

/// A plugin's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginOutcome {
    /// Check passed.
    Pass,
    /// Passed with a warning: the site becomes `degraded`.
    Warn,
    /// Check failed: the site becomes `down` with `error.kind = plugin`.
    Fail,
    /// The plugin trapped, timed out, ran out of memory or returned `err`.
    Error,
}

/// A named number reported by a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: f64,
}

/// A key/value label reported by a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Label key.
    pub key: String,
    /// Label value.
    pub value: String,
}

/// RFC 3339 with millisecond precision and a `Z` suffix, as the contract requires.
pub(crate) mod rfc3339_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_uses_wire_names() {
        let r = CheckResult {
            schema: SCHEMA_VERSION,
            check_id: Uuid::now_v7(),
            site: "s".into(),
            url: "http://127.0.0.1/".into(),
            agent: "a".into(),
            location: None,
            started_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
                .unwrap()
                .with_timezone(&Utc),
            outcome: Outcome::Down,
            error: Some(CheckError {
                kind: ErrorKind::HttpStatus,
                message: "got 500".into(),
            }),
            http: None,
            timings_ms: Timings {
                total: 1.5,
                ..Default::default()
            },
            tls: None,
            regex: None,
            regex_absent: None,
            plugins: vec![],
            agent_lag_ms: None,
            agent_stall_ms: None,
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["started_at"], "2026-01-02T03:04:05.678Z");
        assert_eq!(json["outcome"], "down");
        assert_eq!(json["error"]["kind"], "http_status");
        assert!(json.get("agent_lag_ms").is_none(), "absent unless set");
        let back: CheckResult = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn overload_marks_round_trip_and_every_kind_has_its_wire_name() {
        let json = serde_json::json!({
            "schema": 1, "check_id": Uuid::now_v7(), "site": "s", "url": "http://x/",
            "agent": "a", "started_at": "2026-01-02T03:04:05.678Z", "outcome": "degraded",
            "error": {"kind": "agent_overloaded", "message": "stalled"},
            "timings_ms": {"total": 6000.0}, "agent_lag_ms": 1250.5, "agent_stall_ms": 5200.0
        });
        let r: CheckResult = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(r.agent_lag_ms, Some(1250.5));
        assert_eq!(r.agent_stall_ms, Some(5200.0));
        assert_eq!(
            r.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::AgentOverloaded)
        );
        assert_eq!(serde_json::to_value(&r).unwrap(), json);
        for kind in [
            ErrorKind::AgentOverloaded,
            ErrorKind::Slow,
            ErrorKind::HttpStatus,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn an_error_kind_from_a_newer_agent_still_decodes() {
        let e: CheckError =
            serde_json::from_str(r#"{"kind": "from_the_future", "message": "m"}"#).unwrap();
        assert_eq!(e.kind, ErrorKind::Other);
    }
}
