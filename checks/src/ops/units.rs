//! The one way durations and byte sizes are written in settings, for both binaries:
//! YAML fields of the agent and flags of the sink alike.

use std::time::Duration;

/// Parses a duration: `500ms`, `30s`, `5m`, `1h`, `7d`, or combinations (`1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); use e.g. 500ms, 30s, 5m"))
}

/// A duration the way [`parse_duration`] reads it back: `1m 30s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Parses a byte size: `1048576`, `512KiB`, `1MiB`, `2GiB`, `1KB`, `1MB`, `1GB`
/// (units case-insensitive, a space before the unit allowed).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 1048576, 512KiB, 1MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    num.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// A byte size the way [`parse_bytes`] reads it back: `64 MiB`, `1 GiB`, `1500 B`.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 1m30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        let e = parse_duration("soon").unwrap_err();
        assert!(
            e.contains("`soon` is not a duration") && e.contains("30s"),
            "{e}"
        );
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s 500ms");
        assert_eq!(
            parse_duration(&format_duration(Duration::from_secs(3725))),
            Ok(Duration::from_secs(3725))
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("1MB"), Ok(1_000_000));
        assert!(parse_bytes("1XB").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999999999999GiB").is_err());
        for b in [0, 1500, 512 << 10, 64 << 20, 1 << 30, (1 << 30) + 1] {
            assert_eq!(parse_bytes(&format_bytes(b)), Ok(b), "{}", format_bytes(b));
        }
        assert_eq!(format_bytes(64 << 20), "64 MiB");
    }
}
