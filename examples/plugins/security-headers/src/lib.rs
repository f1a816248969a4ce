//! `security-headers`: checks that the response carries the security headers a
//! site should send.
//!
//! Config (all optional):
//! - `require`: comma-separated header names (default:
//!   `strict-transport-security,content-security-policy,x-content-type-options`).
//! - `hsts_min_max_age`: minimum `max-age` (seconds) the HSTS header must carry.
//! - `severity`: `warn` (default) or `fail`: what a missing header makes the check.

wit_bindgen::generate!({ path: "../../../wit", world: "checker" });

use sitewatch::check::types::{Metric, Outcome};

const DEFAULT_REQUIRED: &str =
    "strict-transport-security,content-security-policy,x-content-type-options";

struct SecurityHeaders;

impl Guest for SecurityHeaders {
    fn check(response: Response, config: Vec<(String, String)>) -> Result<Verdict, String> {
        let get = |key: &str| {
            config
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let severity = match get("severity").unwrap_or("warn") {
            "fail" => Outcome::Fail,
            "warn" => Outcome::Warn,
            other => {
                return Err(format!(
                    "config `severity` must be fail or warn, not `{other}`"
                ))
            }
        };
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let mut problems: Vec<String> = Vec::new();
        let required = get("require").unwrap_or(DEFAULT_REQUIRED);
        let mut missing = 0usize;
        for name in required.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if header(name).is_none() {
                missing += 1;
                problems.push(format!("{} missing", name.to_ascii_lowercase()));
            }
        }
        if let Some(min) = get("hsts_min_max_age") {
            let min: u64 = min
                .trim()
                .parse()
                .map_err(|_| format!("config `hsts_min_max_age` is not a number: `{min}`"))?;
            if let Some(hsts) = header("strict-transport-security") {
                let max_age = hsts
                    .split(';')
                    .filter_map(|d| d.trim().strip_prefix("max-age="))
                    .find_map(|v| v.trim_matches('"').parse::<u64>().ok());
                match max_age {
                    Some(age) if age >= min => {}
                    Some(age) => problems.push(format!("HSTS max-age {age} is below {min}")),
                    None => problems.push("HSTS has no max-age".to_string()),
                }
            }
        }
        let metrics = vec![Metric {
            name: "missing_headers".into(),
            value: missing as f64,
        }];
        if problems.is_empty() {
            return Ok(Verdict {
                outcome: Outcome::Pass,
                message: "all required security headers present".into(),
                metrics,
                labels: Vec::new(),
            });
        }
        Ok(Verdict {
            outcome: severity,
            message: problems.join("; "),
            metrics,
            labels: vec![("problems".into(), problems.len().to_string())],
        })
    }
}

export!(SecurityHeaders);
