//! The [`Prober`]: runs one check of one site end to end — connection per
//! request, redirects, the whole-check timeout with the phase it hit — and
//! assembles the [`CheckResult`].
//!
//! With redirects followed, `timings_ms.{dns,connect,tls,ttfb}`, `tls` and
//! `http` describe the final request; `timings_ms.total` covers every hop.
//! Plugins run after the timeout-bounded part (they have their own deadline)
//! and are not counted in `total`.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use http::header::{AUTHORIZATION, COOKIE, HOST, LOCATION};
use http::{HeaderMap, Method, StatusCode};
use url::Url;
use uuid::Uuid;

use super::connect;
use super::evaluate::{self, PluginInput, Verdict};
use super::exchange;
use super::resolver::{Resolve, SystemResolver};
use super::stall::{self, Bounded, NoStall, StallClock};
use super::trace::{human, ms, Trace};
use crate::schema::{CheckError, CheckResult, ErrorKind, HttpInfo, SCHEMA_VERSION};
use crate::spec::CheckSpec;

/// Runs checks; cheap to share (`Arc<Prober>`) across concurrent checks.
pub struct Prober {
    agent: String,
    location: Option<String>,
    resolver: Arc<dyn Resolve>,
    stall: Arc<dyn StallClock>,
}

/// A stall shorter than this is not reported (timer granularity and ordinary scheduling).
const STALL_REPORTED: std::time::Duration = std::time::Duration::from_millis(10);

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("agent", &self.agent)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The final response of a check.
struct Fetched {
    url: Url,
    status: u16,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    truncated: bool,
    redirects: u32,
}

impl Prober {
    /// A prober that stamps results with this agent name and location and
    /// resolves names with the system resolver.
    pub fn new(agent: String, location: Option<String>) -> Self {
        Prober {
            agent,
            location,
            resolver: Arc::new(SystemResolver),
            stall: Arc::new(NoStall),
        }
    }

    /// Extends each check's deadline by the time `clock` says the agent could not run it,
    /// and judges `degraded_after` without that time (see [`StallClock`]).
    pub fn with_stall_clock(mut self, clock: Arc<dyn StallClock>) -> Self {
        self.stall = clock;
        self
    }

    /// Uses `resolver` for host names instead of the system resolver.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Checks one site. A site being down is a result, never an error.
    pub async fn check(&self, spec: &CheckSpec) -> CheckResult {
        let started_at = Utc::now();
        let start = Instant::now();
        let trace = Trace::default();
        let bounded = stall::bounded(
            fetch(spec, &*self.resolver, &trace),
            spec.timeout,
            &*self.stall,
        )
        .await;
        let elapsed = start.elapsed();
        let total = ms(elapsed);
        let state = trace.take();
        let (fetched, stalled) = match bounded {
            Bounded::Done(fetched, stalled) => (Some(fetched), stalled),
            Bounded::TimedOut(stalled) => (None, stalled),
        };

        let mut timings = state.timings;
        timings.total = total;
        let mut result = CheckResult {
            schema: SCHEMA_VERSION,
            check_id: Uuid::now_v7(),
            site: spec.name.clone(),
            url: spec.url.to_string(),
            agent: self.agent.clone(),
            location: self.location.clone(),
            started_at,
            outcome: crate::schema::Outcome::Down,
            error: None,
            http: state.http,
            timings_ms: timings,
            tls: state.tls,
            regex: None,
            regex_absent: None,
            plugins: Vec::new(),
            agent_lag_ms: None,
            agent_stall_ms: (stalled >= STALL_REPORTED).then(|| ms(stalled)),
        };

        let fetched = match fetched {
            None => {
                let after = match state.redirects {
                    0 => String::new(),
                    n => format!(" (after {n} redirects)"),
                };
                let phase = state.phase.describe();
                // The site got its whole timeout of time the agent could run it: its fault.
                if elapsed.saturating_sub(stalled) + STALL_REPORTED >= spec.timeout {
                    result.error = Some(CheckError {
                        kind: ErrorKind::Timeout,
                        message: format!("timed out after {} {phase}{after}", human(spec.timeout)),
                    });
                } else {
                    result.outcome = crate::schema::Outcome::Degraded;
                    result.error = Some(CheckError {
                        kind: ErrorKind::AgentOverloaded,
                        message: format!(
                            "not judged: the agent was overloaded (it could not run this check for \
                             {stall:.0} ms of {total:.0} ms) and stopped it {phase}{after}",
                            stall = ms(stalled),
                        ),
                    });
                }
                return result;
            }
            Some(Err(error)) => {
                if error.kind == ErrorKind::AgentOverloaded {
                    result.outcome = crate::schema::Outcome::Degraded;
                }
                result.error = Some(error);
                return result;
            }
            Some(Ok(fetched)) => fetched,
        };

        let mut verdict = Verdict::default();
        evaluate::judge_status(spec, fetched.status, &mut verdict);
        let (regex, regex_absent) =
            evaluate::judge_regexes(spec, &fetched.body, fetched.truncated, &mut verdict);
        result.regex = regex;
        result.regex_absent = regex_absent;
        result.http = Some(HttpInfo {
            status: fetched.status,
            version: fetched.version.clone(),
            body_bytes: fetched.body.len() as u64,
            body_truncated: fetched.truncated,
            redirects: fetched.redirects,
        });
        if !spec.plugins.is_empty() {
            let input = PluginInput {
                url: fetched.url.to_string(),
                status: fetched.status,
                version: fetched.version,
                headers: fetched.headers,
                body: fetched.body,
                timings: result.timings_ms.clone(),
            };
            result.plugins = evaluate::run_plugins(&spec.plugins, input).await;
            evaluate::judge_plugins(&result.plugins, &mut verdict);
        }
        // Time the agent could not run the check is not the site's slowness.
        evaluate::judge_speed(spec.degraded_after, total - ms(stalled), &mut verdict);
        result.outcome = verdict.outcome;
        result.error = verdict.error;
        result
    }
}

/// Requests `spec.url`, following up to `spec.follow_redirects` redirects.
async fn fetch(
    spec: &CheckSpec,
    resolver: &dyn Resolve,
    trace: &Trace,
) -> Result<Fetched, CheckError> {
    let mut url = spec.url.clone();
    let mut method = spec.method.clone();
    let mut body = spec.body.clone();
    let mut headers = spec.headers.clone();
    let mut redirects = 0u32;
    loop {
        let sends_body = body.as_ref().is_some_and(|b| !b.is_empty());
        let io = connect::open(&url, spec.tls.as_ref(), resolver, trace, sends_body).await?;
        let req = exchange::build_request(&url, &method, &headers, body.clone())?;
        let ex = exchange::send(io, req, trace).await?;
        let status = ex.head.status;
        let location = ex
            .head
            .headers
            .get(LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());

        if let (true, true, Some(location)) =
            (spec.follow_redirects > 0, is_redirect(status), location)
        {
            if redirects >= spec.follow_redirects {
                return Err(CheckError {
                    kind: ErrorKind::HttpStatus,
                    message: format!(
                        "more than {} redirects (the last, {}, points to {location})",
                        spec.follow_redirects,
                        status.as_u16()
                    ),
                });
            }
            let next = next_url(&url, &location)?;
            drop(ex);
            redirects += 1;
            trace.lock().redirects = redirects;
            if status == StatusCode::SEE_OTHER
                || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                    && method == Method::POST)
            {
                method = Method::GET;
                body = None;
            }
            if next.origin() != url.origin() {
                strip_credentials(&mut headers);
            }
            url = next;
            continue;
        }

        let headers = ex
            .head
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let version = format!("{:?}", ex.head.version);
        let read = exchange::read_body(ex, spec.max_body_bytes, trace).await?;
        return Ok(Fetched {
            url,
            status: status.as_u16(),
            version,
            headers,
            body: read.bytes,
            truncated: read.truncated,
            redirects,
        });
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `location` resolved against `current`; only http(s) targets are followed.
fn next_url(current: &Url, location: &str) -> Result<Url, CheckError> {
    let bad = |why: String| CheckError {
        kind: ErrorKind::HttpStatus,
        message: format!("cannot follow redirect to `{location}`: {why}"),
    };
    let next = current.join(location).map_err(|e| bad(e.to_string()))?;
    match next.scheme() {
        "http" | "https" => Ok(next),
        other => Err(bad(format!("unsupported scheme `{other}`"))),
    }
}

/// Credentials and a pinned Host are not carried to another origin.
fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
    headers.remove(COOKIE);
    headers.remove(HOST);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_locations() {
        let base = Url::parse("http://a.example/x/y?q=1").unwrap();
        assert_eq!(
            next_url(&base, "z").unwrap().as_str(),
            "http://a.example/x/z"
        );
        assert_eq!(
            next_url(&base, "/r").unwrap().as_str(),
            "http://a.example/r"
        );
        assert_eq!(
            next_url(&base, "https://b.example/").unwrap().as_str(),
            "https://b.example/"
        );
        let err = next_url(&base, "ftp://c.example/").unwrap_err();
        assert_eq!(err.kind, ErrorKind::HttpStatus);
    }
}
