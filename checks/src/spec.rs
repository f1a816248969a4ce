//! What to check: a fully resolved, validated site definition.
//!
//! Built once at config load (regexes compiled, URL parsed, plugins loaded)
//! and shared read-only by the scheduler and the probe.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use crate::schema::{PluginResult, Timings};

/// Default cap on body bytes read per check (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// A resolved site: everything the probe needs, nothing left to parse.
#[derive(Clone)]
pub struct CheckSpec {
    /// Unique site name.
    pub name: String,
    /// URL to request (http or https).
    pub url: url::Url,
    /// Request method.
    pub method: http::Method,
    /// Extra request headers.
    pub headers: http::HeaderMap,
    /// Optional request body.
    pub body: Option<bytes::Bytes>,
    /// Time between check starts.
    pub interval: Duration,
    /// Deadline for the whole check (all phases, redirects, body read).
    pub timeout: Duration,
    /// Status codes that count as success.
    pub expect_status: StatusSet,
    /// Pattern that must match the body. Shared: sites with the same pattern use one
    /// compiled regex (each copy of a `Regex` would carry its own caches).
    pub regex: Option<Arc<regex::Regex>>,
    /// Pattern that must not match the body.
    pub regex_absent: Option<Arc<regex::Regex>>,
    /// Total time above which an otherwise good check is `degraded`.
    pub degraded_after: Option<Duration>,
    /// Body bytes read at most; the rest is not read.
    pub max_body_bytes: usize,
    /// Redirects to follow (0 = report the 3xx as is).
    pub follow_redirects: u32,
    /// TLS configuration for this site's https: `None` for the system roots, else the
    /// system roots plus its `tls_ca` (shared with every site trusting the same CA).
    pub tls: Option<crate::probe::TlsClient>,
    /// WebAssembly plugins run on the response, in order.
    pub plugins: Vec<PluginBinding>,
}

impl fmt::Debug for CheckSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckSpec")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A set of accepted HTTP status codes, e.g. `200-299, 304`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<RangeInclusive<u16>>);

impl Default for StatusSet {
    /// 200-399: success and redirects.
    fn default() -> Self {
        StatusSet(vec![200..=399])
    }
}

impl StatusSet {
    /// Builds a set from ranges (inclusive).
    pub fn from_ranges(ranges: Vec<RangeInclusive<u16>>) -> Self {
        StatusSet(ranges)
    }

    /// Parses `"200"`, `"200-299"`, or a comma-separated list of those.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let parse = |x: &str| -> Result<u16, String> {
                x.parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| format!("`{x}` is not an HTTP status code (100-599)"))
            };
            let (lo, hi) = (parse(lo)?, parse(hi)?);
            if lo > hi {
                return Err(format!("range `{part}` is empty"));
            }
            out.push(lo..=hi);
        }
        if out.is_empty() {
            return Err("no status codes given".into());
        }
        Ok(StatusSet(out))
    }

    /// Whether `code` is accepted.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|r| r.contains(&code))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

/// The response as shown to a plugin.
#[derive(Debug)]
pub struct ResponseView<'a> {
    /// Final URL.
    pub url: &'a str,
    /// Status code.
    pub status: u16,
    /// HTTP version, e.g. `HTTP/1.1`.
    pub version: &'a str,
    /// Response headers (lowercase names, lossy UTF-8 values).
    pub headers: &'a [(String, String)],
    /// Body, capped at the site's `max_body_bytes`.
    pub body: &'a [u8],
    /// Timings so far.
    pub timings: &'a Timings,
}

/// A check that runs on a received response (implemented by the WASM host).
///
/// Implementations must never panic and must bound their own run time:
/// every failure is reported as a `PluginResult` with outcome `error`.
pub trait ResponsePlugin: Send + Sync {
    /// Evaluates one response with the site's config for this plugin.
    /// `name` is the plugin's declared name, to be put in the result.
    fn check(
        &self,
        name: &str,
        response: &ResponseView<'_>,
        config: &[(String, String)],
    ) -> PluginResult;
}

/// A plugin attached to a site with that site's config for it.
#[derive(Clone)]
pub struct PluginBinding {
    /// Declared plugin name.
    pub name: String,
    /// The loaded plugin.
    pub plugin: Arc<dyn ResponsePlugin>,
    /// The site's key/value config for it.
    pub config: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_set_parses_codes_and_ranges() {
        let s = StatusSet::parse("200-204, 301,404").unwrap();
        assert!(s.contains(200) && s.contains(204) && s.contains(301) && s.contains(404));
        assert!(!s.contains(205) && !s.contains(500));
        assert_eq!(s.to_string(), "200-204,301,404");
        assert!(StatusSet::parse("299-200").is_err());
        assert!(StatusSet::parse("abc").is_err());
        assert!(StatusSet::parse("700").is_err());
        assert!(StatusSet::default().contains(302));
    }
}
