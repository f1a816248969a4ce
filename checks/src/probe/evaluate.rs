//! Turning a received response into a verdict: expected status, `regex` /
//! `regex_absent` on the capped body, plugins (run off the async runtime),
//! and the `degraded_after` threshold. The first `down` reason wins; a
//! `degraded` reason applies only while the check is still `up`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::schema::{
    CheckError, ErrorKind, Outcome, PluginOutcome, PluginResult, RegexInfo, Timings,
};
use crate::spec::{CheckSpec, PluginBinding, ResponseView};

use super::trace::{human, ms};

/// Outcome plus the reason for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// Current outcome.
    pub(crate) outcome: Outcome,
    /// Why it is not `up`.
    pub(crate) error: Option<CheckError>,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict {
            outcome: Outcome::Up,
            error: None,
        }
    }
}

impl Verdict {
    /// Marks the check down unless it already is.
    pub(crate) fn down(&mut self, kind: ErrorKind, message: String) {
        if self.outcome != Outcome::Down {
            self.outcome = Outcome::Down;
            self.error = Some(CheckError { kind, message });
        }
    }

    /// Marks the check degraded if it is still up.
    pub(crate) fn degrade(&mut self, kind: ErrorKind, message: String) {
        if self.outcome == Outcome::Up {
            self.outcome = Outcome::Degraded;
            self.error = Some(CheckError { kind, message });
        }
    }
}

/// Down with `http_status` when `status` is not expected.
pub(crate) fn judge_status(spec: &CheckSpec, status: u16, verdict: &mut Verdict) {
    if !spec.expect_status.contains(status) {
        verdict.down(
            ErrorKind::HttpStatus,
            format!("expected {}, got {status}", spec.expect_status),
        );
    }
}

/// Applies `regex` and `regex_absent` to the body; returns what each found.
pub(crate) fn judge_regexes(
    spec: &CheckSpec,
    body: &[u8],
    truncated: bool,
    verdict: &mut Verdict,
) -> (Option<RegexInfo>, Option<RegexInfo>) {
    if spec.regex.is_none() && spec.regex_absent.is_none() {
        return (None, None);
    }
    let text = String::from_utf8_lossy(body);
    let scope = if truncated {
        format!(" (first {} bytes checked)", body.len())
    } else {
        String::new()
    };
    let present = spec.regex.as_ref().map(|re| {
        let matched = re.is_match(&text);
        if !matched {
            verdict.down(
                ErrorKind::Regex,
                format!("body does not match `{}`{scope}", re.as_str()),
            );
        }
        RegexInfo {
            pattern: re.as_str().to_string(),
            matched,
        }
    });
    let absent = spec.regex_absent.as_ref().map(|re| {
        let matched = re.is_match(&text);
        if matched {
            verdict.down(
                ErrorKind::Regex,
                format!("body matches `{}`, which must be absent", re.as_str()),
            );
        }
        RegexInfo {
            pattern: re.as_str().to_string(),
            matched,
        }
    });
    (present, absent)
}

/// The response handed to plugins, owned so it can cross into a blocking task.
#[derive(Debug)]
pub(crate) struct PluginInput {
    pub(crate) url: String,
    pub(crate) status: u16,
    pub(crate) version: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) timings: Timings,
}

/// Runs every plugin in order on a blocking thread; a panic becomes outcome `error`.
pub(crate) async fn run_plugins(
    bindings: &[PluginBinding],
    input: PluginInput,
) -> Vec<PluginResult> {
    let input = Arc::new(input);
    let mut out = Vec::with_capacity(bindings.len());
    for binding in bindings {
        let b = binding.clone();
        let inp = input.clone();
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let view = ResponseView {
                url: &inp.url,
                status: inp.status,
                version: &inp.version,
                headers: &inp.headers,
                body: &inp.body,
                timings: &inp.timings,
            };
            b.plugin.check(&b.name, &view, &b.config)
        })
        .await;
        out.push(joined.unwrap_or_else(|e| PluginResult {
            name: binding.name.clone(),
            outcome: PluginOutcome::Error,
            message: format!("plugin crashed: {e}"),
            metrics: Vec::new(),
            labels: Vec::new(),
            duration_ms: ms(started.elapsed()),
        }));
    }
    out
}

/// Fail → down; warn or error → degraded.
pub(crate) fn judge_plugins(results: &[PluginResult], verdict: &mut Verdict) {
    for r in results {
        match r.outcome {
            PluginOutcome::Pass => {}
            PluginOutcome::Fail => verdict.down(
                ErrorKind::Plugin,
                format!("plugin `{}` failed: {}", r.name, r.message),
            ),
            PluginOutcome::Warn => verdict.degrade(
                ErrorKind::Plugin,
                format!("plugin `{}` warned: {}", r.name, r.message),
            ),
            PluginOutcome::Error => verdict.degrade(
                ErrorKind::Plugin,
                format!("plugin `{}` could not run: {}", r.name, r.message),
            ),
        }
    }
}

/// Degraded with `slow` when `total_ms` is over the site's threshold.
pub(crate) fn judge_speed(threshold: Option<Duration>, total_ms: f64, verdict: &mut Verdict) {
    if let Some(limit) = threshold {
        if total_ms > ms(limit) {
            verdict.degrade(
                ErrorKind::Slow,
                format!(
                    "took {total_ms:.0} ms, over the degraded_after threshold of {}",
                    human(limit)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_down_wins_and_degrade_only_when_up() {
        let mut v = Verdict::default();
        v.degrade(ErrorKind::Slow, "slow".into());
        assert_eq!(v.outcome, Outcome::Degraded);
        v.degrade(ErrorKind::Plugin, "warn".into());
        assert_eq!(v.error.as_ref().map(|e| e.kind), Some(ErrorKind::Slow));
        v.down(ErrorKind::Regex, "regex".into());
        v.down(ErrorKind::Plugin, "fail".into());
        assert_eq!(v.outcome, Outcome::Down);
        assert_eq!(v.error.map(|e| e.kind), Some(ErrorKind::Regex));
    }

    #[test]
    fn slow_threshold() {
        let mut v = Verdict::default();
        judge_speed(Some(Duration::from_millis(100)), 99.0, &mut v);
        assert_eq!(v.outcome, Outcome::Up);
        judge_speed(Some(Duration::from_millis(100)), 101.0, &mut v);
        assert_eq!(v.outcome, Outcome::Degraded);
        let msg = v.error.map(|e| e.message).unwrap_or_default();
        assert!(msg.contains("101 ms") && msg.contains("100ms"), "{msg}");
    }
}
