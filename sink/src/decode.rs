//! Kafka message bytes → a [`CheckResult`], or the reason it is rejected.

use sitewatch_checks::{CheckResult, SCHEMA_VERSION};

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

/// Just the version of a message; other fields are skipped.
#[derive(serde::Deserialize)]
struct Version {
    schema: Option<u64>,
}

/// Decodes one message value.
pub fn decode(payload: Option<&[u8]>) -> Result<CheckResult, Rejection> {
    let payload = payload.filter(|p| !p.is_empty()).ok_or(Rejection::Empty)?;
    // Look at the version first (without building a JSON tree): a future message may not
    // fit today's shape at all.
    let version: Version =
        serde_json::from_slice(payload).map_err(|e| Rejection::Malformed(e.to_string()))?;
    match version.schema {
        Some(v) if v > u64::from(SCHEMA_VERSION) => {
            return Err(Rejection::FutureSchema(
                u32::try_from(v).unwrap_or(u32::MAX),
            ))
        }
        Some(0) => return Err(Rejection::Invalid("schema version 0".into())),
        _ => {}
    }
    let result: CheckResult =
        serde_json::from_slice(payload).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if result.site.trim().is_empty() {
        return Err(Rejection::Invalid("empty site name".into()));
    }
    Ok(result)
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
    }
}
