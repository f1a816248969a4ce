//! `json-field`: reads one value out of a JSON body and checks it.
//!
//! Config (all optional except `path`):
//! - `path`: dotted path to the value, array indexes as numbers (`data.items.0.state`).
//! - `equals`: expected value; strings compare as text, anything else as its JSON text.
//! - `min`, `max`: numeric bounds (inclusive) for a number value.
//! - `metric`: name for the value as a metric when it is a number (default: the path).
//! - `severity`: `fail` (default) or `warn`: what a mismatch makes the check.

wit_bindgen::generate!({ path: "../../../wit", world: "checker" });

use serde_json::Value;
use sitewatch::check::types::{Metric, Outcome};

struct JsonField;

impl Guest for JsonField {
    fn check(response: Response, config: Vec<(String, String)>) -> Result<Verdict, String> {
        let get = |key: &str| {
            config
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let path = get("path").ok_or("config `path` is required")?;
        let severity = match get("severity").unwrap_or("fail") {
            "fail" => Outcome::Fail,
            "warn" => Outcome::Warn,
            other => {
                return Err(format!(
                    "config `severity` must be fail or warn, not `{other}`"
                ))
            }
        };
        let bound = |key: &str| -> Result<Option<f64>, String> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("config `{key}` is not a number: `{v}`"))
                })
                .transpose()
        };
        let (min, max) = (bound("min")?, bound("max")?);

        let doc: Value = match serde_json::from_slice(&response.body) {
            Ok(doc) => doc,
            Err(e) => {
                return Ok(verdict(
                    severity,
                    format!("body is not JSON: {e}"),
                    Vec::new(),
                ))
            }
        };
        let Some(value) = lookup(&doc, path) else {
            return Ok(verdict(
                severity,
                format!("`{path}` is not in the body"),
                Vec::new(),
            ));
        };
        let mut metrics = Vec::new();
        if let Some(n) = value.as_f64() {
            metrics.push(Metric {
                name: get("metric").unwrap_or(path).to_string(),
                value: n,
            });
        }
        if let Some(expected) = get("equals") {
            let actual = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if actual != expected {
                return Ok(verdict(
                    severity,
                    format!("`{path}` is `{actual}`, expected `{expected}`"),
                    metrics,
                ));
            }
        }
        if min.is_some() || max.is_some() {
            let Some(n) = value.as_f64() else {
                return Ok(verdict(
                    severity,
                    format!("`{path}` is not a number: {value}"),
                    metrics,
                ));
            };
            if let Some(lo) = min.filter(|lo| n < *lo) {
                return Ok(verdict(
                    severity,
                    format!("`{path}` is {n}, below the minimum {lo}"),
                    metrics,
                ));
            }
            if let Some(hi) = max.filter(|hi| n > *hi) {
                return Ok(verdict(
                    severity,
                    format!("`{path}` is {n}, above the maximum {hi}"),
                    metrics,
                ));
            }
        }
        Ok(verdict(
            Outcome::Pass,
            format!("`{path}` is {value}"),
            metrics,
        ))
    }
}

/// Follows a dotted path through objects and arrays.
fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(doc, |v, part| match v {
            Value::Object(map) => map.get(part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

fn verdict(outcome: Outcome, message: String, metrics: Vec<Metric>) -> Verdict {
    Verdict {
        outcome,
        message,
        metrics,
        labels: Vec::new(),
    }
}

export!(JsonField);
