//! Kafka message bytes → a [`CheckResult`] PostgreSQL will take, or the reason it is
//! rejected. Anything decoded here must store: one row the database refuses would hold up
//! its whole batch, and everything behind it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sitewatch_checks::catalog::{SiteDefinition, CATALOG_SCHEMA_VERSION};
use sitewatch_checks::schema::PluginResult;
use sitewatch_checks::{CheckResult, ErrorKind, MAX_SITE_NAME, SCHEMA_VERSION};

use crate::pipeline::{CatalogEntry, Row};

/// Results claiming to start before this are a broken clock or a forged message.
const EARLIEST: i64 = 946_684_800; // 2000-01-01T00:00:00Z
/// How far ahead of the sink's clock a result may claim to have started.
const CLOCK_SKEW: Duration = Duration::days(1);

/// Why a message cannot be stored as a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The message had no value.
    #[error("empty message")]
    Empty,
    /// Not JSON, or not a result of a known shape.
    #[error("not a check result: {0}")]
    Malformed(String),
    /// Written by a newer agent than this sink understands.
    #[error("unknown future schema version {0} (this sink reads up to {SCHEMA_VERSION})")]
    FutureSchema(u32),
    /// Decoded but unusable.
    #[error("invalid check result: {0}")]
    Invalid(String),
}

/// Decodes one message value into a row to store, keeping the name of an error kind this
/// build does not know.
pub fn decode_row(payload: Option<&[u8]>, partition: i32, offset: i64) -> Result<Row, Rejection> {
    let mut row = Row::new(partition, offset, decode(payload)?);
    if matches!(&row.result.error, Some(e) if e.kind == ErrorKind::Other) {
        row.unknown_error_kind = payload.and_then(error_kind_name);
    }
    Ok(row)
}

/// Just the version of a message; other fields are skipped.
#[derive(serde::Deserialize)]
struct Version {
    schema: Option<u64>,
}

/// Decodes one message value.
pub fn decode(payload: Option<&[u8]>) -> Result<CheckResult, Rejection> {
    let payload = payload.filter(|p| !p.is_empty()).ok_or(Rejection::Empty)?;
    // One pass for what nearly every message is, a result of a shape this build knows. Only
    // when that fails is the version looked at alone: a future message may not fit today's
    // shape at all, and is then refused as from the future, not as malformed.
    let mut result: CheckResult = match serde_json::from_slice::<CheckResult>(payload) {
        Ok(result) => {
            known_version(Some(u64::from(result.schema)))?;
            result
        }
        Err(e) => {
            let version: Version = serde_json::from_slice(payload)
                .map_err(|e| Rejection::Malformed(clean(e.to_string())))?;
            known_version(version.schema)?;
            return Err(Rejection::Malformed(clean(e.to_string())));
        }
    };
    if result.site.trim().is_empty() {
        return Err(Rejection::Invalid("empty site name".into()));
    }
    if result.site.len() > MAX_SITE_NAME {
        return Err(Rejection::Invalid(format!(
            "site name of {} bytes (at most {MAX_SITE_NAME})",
            result.site.len()
        )));
    }
    let earliest: DateTime<Utc> = Utc.timestamp_opt(EARLIEST, 0).single().unwrap_or_default();
    if result.started_at < earliest || result.started_at > Utc::now() + CLOCK_SKEW {
        return Err(Rejection::Invalid(format!(
            "started_at {} is not a plausible time (the agent's clock?)",
            result.started_at.to_rfc3339()
        )));
    }
    strip_nul(&mut result);
    Ok(result)
}

/// Refuses a schema version this build cannot read (newer, or 0).
fn known_version(schema: Option<u64>) -> Result<(), Rejection> {
    match schema {
        Some(v) if v > u64::from(SCHEMA_VERSION) => Err(Rejection::FutureSchema(
            u32::try_from(v).unwrap_or(u32::MAX),
        )),
        Some(0) => Err(Rejection::Invalid("schema version 0".into())),
        _ => Ok(()),
    }
}

/// Decodes one message of the site catalog topic: a definition, or (no value) a tombstone.
/// `timestamp_ms` is the message's Kafka timestamp.
pub fn decode_catalog(
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    timestamp_ms: Option<i64>,
) -> Result<CatalogEntry, Rejection> {
    let site = key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.trim().is_empty() && k.len() <= MAX_SITE_NAME && !k.contains('\0'))
        .ok_or_else(|| {
            Rejection::Invalid("catalog entry without a usable site name as key".into())
        })?
        .to_string();
    let timestamp = timestamp_ms
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now);
    let Some(payload) = payload.filter(|p| !p.is_empty()) else {
        return Ok(CatalogEntry {
            site,
            definition: None,
            timestamp,
        });
    };
    let version: Version =
        serde_json::from_slice(payload).map_err(|e| Rejection::Malformed(clean(e.to_string())))?;
    if let Some(v) = version
        .schema
        .filter(|v| *v > u64::from(CATALOG_SCHEMA_VERSION))
    {
        return Err(Rejection::FutureSchema(
            u32::try_from(v).unwrap_or(u32::MAX),
        ));
    }
    let mut d: SiteDefinition =
        serde_json::from_slice(payload).map_err(|e| Rejection::Malformed(clean(e.to_string())))?;
    if d.site != site {
        return Err(Rejection::Invalid(format!(
            "catalog entry for `{}` under the key `{site}`",
            clean(d.site)
        )));
    }
    let limit = |v: u64| i64::try_from(v).is_ok();
    if d.interval_ms == 0 || !limit(d.interval_ms) || !limit(d.timeout_ms) {
        return Err(Rejection::Invalid(format!(
            "`{site}`: interval_ms or timeout_ms out of range"
        )));
    }
    let threshold = |t: u32| (1..=i32::MAX as u32).contains(&t);
    if !threshold(d.failure_threshold) || !threshold(d.success_threshold) {
        return Err(Rejection::Invalid(format!(
            "`{site}`: thresholds must be at least 1"
        )));
    }
    for text in [&mut d.url, &mut d.agent]
        .into_iter()
        .chain(d.location.as_mut())
        .chain(d.group.as_mut())
        .chain(d.tags.iter_mut())
    {
        clean_in_place(text);
    }
    Ok(CatalogEntry {
        site,
        definition: Some(d),
        timestamp,
    })
}

/// The `error.kind` name as sent, for a kind this build does not know (decoded as
/// `ErrorKind::Other`); looked up only then, so the common path parses once. Only a
/// plausible name (lowercase letters, digits, `_`; at most 40) is kept: each distinct name
/// becomes a row in `error_kinds`, so garbage is stored as `other` instead.
pub fn error_kind_name(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: String,
    }
    #[derive(serde::Deserialize)]
    struct WithError {
        error: Kind,
    }
    let with: WithError = serde_json::from_slice(payload).ok()?;
    let name = with.error.kind;
    let plausible = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plausible.then_some(name)
}

/// `text` with NUL characters (which PostgreSQL text and jsonb refuse) replaced by U+FFFD.
fn clean(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

fn clean_in_place(text: &mut String) {
    *text = clean(std::mem::take(text));
}

/// Replaces NUL in every text field (JSON allows `\u0000`; PostgreSQL does not).
fn strip_nul(r: &mut CheckResult) {
    for text in [&mut r.site, &mut r.url, &mut r.agent] {
        clean_in_place(text);
    }
    if let Some(location) = r.location.as_mut() {
        clean_in_place(location);
    }
    if let Some(error) = r.error.as_mut() {
        clean_in_place(&mut error.message);
    }
    if let Some(http) = r.http.as_mut() {
        clean_in_place(&mut http.version);
    }
    for regex in [r.regex.as_mut(), r.regex_absent.as_mut()]
        .into_iter()
        .flatten()
    {
        clean_in_place(&mut regex.pattern);
    }
    r.plugins.iter_mut().for_each(strip_nul_plugin);
}

fn strip_nul_plugin(p: &mut PluginResult) {
    clean_in_place(&mut p.name);
    clean_in_place(&mut p.message);
    for m in &mut p.metrics {
        clean_in_place(&mut m.name);
    }
    for l in &mut p.labels {
        clean_in_place(&mut l.key);
        clean_in_place(&mut l.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_wrong_shape_and_future_versions() {
        assert_eq!(decode(None), Err(Rejection::Empty));
        assert!(matches!(
            decode(Some(b"not json")),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(decode(Some(b"{}")), Err(Rejection::Malformed(_))));
        assert_eq!(
            decode(Some(br#"{"schema": 999, "whatever": true}"#)),
            Err(Rejection::FutureSchema(999))
        );
        // Of today's shape but a newer or no version: refused all the same.
        let today =
            br#"{"schema":1,"check_id":"0192f0c1-7c1a-7b3e-9a5e-2f6a1c3d4e5f","site":"shop",
            "url":"https://shop.example/","agent":"a1","started_at":"2026-01-02T03:04:05.678Z",
            "outcome":"up","timings_ms":{"total":5.2}}"#;
        assert!(decode(Some(today)).is_ok());
        let text = String::from_utf8_lossy(today);
        let newer = text.replace(
            r#""schema":1"#,
            &format!(r#""schema":{}"#, SCHEMA_VERSION + 1),
        );
        assert_eq!(
            decode(Some(newer.as_bytes())),
            Err(Rejection::FutureSchema(SCHEMA_VERSION + 1))
        );
        let zero = text.replace(r#""schema":1"#, r#""schema":0"#);
        assert_eq!(
            decode(Some(zero.as_bytes())),
            Err(Rejection::Invalid("schema version 0".into()))
        );
    }

    #[test]
    fn accepts_messages_from_before_and_after_the_overload_marks() {
        // As the first agents sent them: no agent_lag_ms, agent_stall_ms.
        let old = br#"{"schema":1,"check_id":"0192f0c1-7c1a-7b3e-9a5e-2f6a1c3d4e5f","site":"shop",
            "url":"https://shop.example/","agent":"a1","started_at":"2026-01-02T03:04:05.678Z",
            "outcome":"down","error":{"kind":"timeout","message":"timed out after 5s connecting"},
            "timings_ms":{"connect":5000.0,"total":5000.2}}"#;
        let r = decode(Some(old)).unwrap();
        assert_eq!((r.agent_lag_ms, r.agent_stall_ms), (None, None));
        assert_eq!(
            r.error.map(|e| e.kind),
            Some(sitewatch_checks::ErrorKind::Timeout)
        );

        // A check an overloaded agent could not judge, as agents send it now.
        let new = br#"{"schema":1,"check_id":"0192f0c1-7c1a-7b3e-9a5e-2f6a1c3d4e60","site":"shop",
            "url":"https://shop.example/","agent":"a1","started_at":"2026-01-02T03:04:06.678Z",
            "outcome":"degraded","error":{"kind":"agent_overloaded","message":"not judged"},
            "timings_ms":{"connect":900.0,"total":10000.0},"agent_lag_ms":1250.5,"agent_stall_ms":5300.0}"#;
        let r = decode(Some(new)).unwrap();
        assert_eq!(r.agent_lag_ms, Some(1250.5));
        assert_eq!(r.agent_stall_ms, Some(5300.0));
        let kind = r.error.map(|e| e.kind);
        assert_eq!(kind, Some(sitewatch_checks::ErrorKind::AgentOverloaded));
        assert_eq!(kind.map(|k| k.as_str()), Some("agent_overloaded"));
    }

    #[test]
    fn an_unknown_error_kind_is_kept_by_name_when_plausible() {
        let payload = |kind: &str| {
            format!(
                r#"{{"schema":1,"check_id":"0190b5b0-0000-7000-8000-000000000000","site":"s",
                    "url":"http://x/","agent":"a","started_at":"{}","outcome":"down",
                    "error":{{"kind":"{kind}","message":"m"}},"timings_ms":{{"total":1.0}}}}"#,
                Utc::now().to_rfc3339()
            )
        };
        let good = payload("from_a_newer_agent");
        let r = decode_row(Some(good.as_bytes()), 0, 0).unwrap();
        assert_eq!(r.result.error.as_ref().unwrap().kind, ErrorKind::Other);
        assert_eq!(r.error_kind(), Some("from_a_newer_agent"));
        let odd = payload("Robert'); DROP TABLE");
        let r = decode_row(Some(odd.as_bytes()), 0, 0).unwrap();
        assert_eq!(r.error_kind(), Some("other"));
    }
}
