//! Reading the sink's config file: every problem is reported at once, each with the file,
//! the line and the field (top-level settings, each channel, each route and each
//! maintenance window are decoded on their own so one mistake does not hide the next),
//! then the routes are checked against the channels and every channel is built (its
//! `${VAR}` secrets read from the environment).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_yaml::Value;

use super::channel::{self, Channel};
use super::policy::SinkFile;

/// One problem in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field, e.g. `channels.pager` or `routes[2].channels`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// Every problem found in the config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct FileErrors(pub Vec<FileError>);

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

/// The alerting policy with its channels built.
#[derive(Clone, Default)]
pub struct Alerts {
    /// The policy as written.
    pub policy: SinkFile,
    /// Every channel, by name.
    pub channels: BTreeMap<String, Arc<dyn Channel>>,
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerts")
            .field("policy", &self.policy)
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<Alerts, FileErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FileErrors(vec![FileError {
            file: path.to_path_buf(),
            line: None,
            field: String::new(),
            message: format!("cannot read the config file: {e}"),
        }])
    })?;
    parse(path, &text)
}

/// Checks `text` (the contents of `path`).
pub fn parse(path: &Path, text: &str) -> Result<Alerts, FileErrors> {
    let mut errors = Errors {
        file: path,
        text,
        found: Vec::new(),
    };
    let value: Value = match serde_yaml::from_str(text) {
        Ok(Value::Null) => Value::Mapping(Default::default()),
        Ok(v) => v,
        Err(e) => {
            let line = e.location().map(|l| l.line());
            errors.push(line, "", e.to_string());
            return Err(FileErrors(errors.found));
        }
    };
    let Value::Mapping(top) = &value else {
        errors.push(Some(1), "", "expected a mapping of settings".into());
        return Err(FileErrors(errors.found));
    };
    for (key, v) in top {
        let name = key.as_str().unwrap_or_default();
        let line = errors.key_line(&[name]);
        match (name, v) {
            ("channels" | "routes" | "maintenance", Value::Mapping(_) | Value::Sequence(_)) => {
                errors.entries(name, v)
            }
            _ => {
                let mut one = serde_yaml::Mapping::new();
                one.insert(key.clone(), v.clone());
                if let Err(e) = serde_yaml::from_value::<SinkFile>(Value::Mapping(one)) {
                    errors.push(line, name, e.to_string());
                }
            }
        }
    }
    if !errors.found.is_empty() {
        return Err(FileErrors(errors.found));
    }
    let policy: SinkFile = match serde_yaml::from_value(value) {
        Ok(p) => p,
        Err(e) => {
            errors.push(None, "", e.to_string());
            return Err(FileErrors(errors.found));
        }
    };
    let mut channels = BTreeMap::new();
    for (name, config) in &policy.channels {
        match channel::build(name, config) {
            Ok(c) => {
                channels.insert(name.clone(), c);
            }
            Err(e) => {
                let line = errors.key_line(&["channels", name]);
                errors.push(line, &format!("channels.{name}"), e.to_string());
            }
        }
    }
    for (i, route) in policy.routes.iter().enumerate() {
        let line = errors.item_line("routes", i);
        if route.channels.is_empty() {
            errors.push(
                line,
                &format!("routes[{i}].channels"),
                "names no channel".into(),
            );
        }
        for c in route
            .channels
            .iter()
            .filter(|c| !policy.channels.contains_key(*c))
        {
            errors.push(
                line,
                &format!("routes[{i}].channels"),
                format!("no channel `{c}` under `channels:`"),
            );
        }
    }
    if let Some(f) = &policy.flapping {
        let line = errors.key_line(&["flapping"]);
        if f.changes == 0 {
            errors.push(line, "flapping.changes", "must be at least 1".into());
        }
        if f.window.is_zero() {
            errors.push(line, "flapping.window", "must be longer than 0s".into());
        }
    }
    for (i, w) in policy.maintenance.iter().enumerate() {
        if let Err(problems) = w.validate() {
            let line = errors.item_line("maintenance", i);
            for p in problems {
                errors.push(line, &format!("maintenance[{i}].{}", p.field), p.message);
            }
        }
    }
    if policy.retry_base.is_zero() {
        let line = errors.key_line(&["retry_base"]);
        errors.push(line, "retry_base", "must be longer than 0s".into());
    }
    if policy.reminder_every.is_some_and(|d| d.is_zero()) {
        let line = errors.key_line(&["reminder_every"]);
        errors.push(line, "reminder_every", "must be longer than 0s".into());
    }
    if !errors.found.is_empty() {
        return Err(FileErrors(errors.found));
    }
    Ok(Alerts { policy, channels })
}

struct Errors<'a> {
    file: &'a Path,
    text: &'a str,
    found: Vec<FileError>,
}

impl Errors<'_> {
    fn push(&mut self, line: Option<usize>, field: &str, message: String) {
        self.found.push(FileError {
            file: self.file.to_path_buf(),
            line,
            field: field.to_string(),
            message,
        });
    }

    /// Decodes each entry of `section` on its own.
    fn entries(&mut self, section: &str, v: &Value) {
        match v {
            Value::Mapping(m) => {
                for (key, entry) in m {
                    let name = key.as_str().unwrap_or_default();
                    let mut inner = serde_yaml::Mapping::new();
                    inner.insert(key.clone(), entry.clone());
                    let mut one = serde_yaml::Mapping::new();
                    one.insert(Value::from(section), Value::Mapping(inner));
                    if let Err(e) = serde_yaml::from_value::<SinkFile>(Value::Mapping(one)) {
                        let line = self.key_line(&[section, name]);
                        self.push(line, &format!("{section}.{name}"), strip(&e));
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, entry) in items.iter().enumerate() {
                    let mut one = serde_yaml::Mapping::new();
                    one.insert(Value::from(section), Value::Sequence(vec![entry.clone()]));
                    if let Err(e) = serde_yaml::from_value::<SinkFile>(Value::Mapping(one)) {
                        let line = self.item_line(section, i);
                        self.push(line, &format!("{section}[{i}]"), strip(&e));
                    }
                }
            }
            _ => {}
        }
    }

    /// The line of `path` (a top-level key, then a key inside it).
    fn key_line(&self, path: &[&str]) -> Option<usize> {
        let lines: Vec<&str> = self.text.lines().collect();
        let top = lines.iter().position(|l| is_key(l, path[0], 0))?;
        let Some(inner) = path.get(1) else {
            return Some(top + 1);
        };
        let indent = child_indent(&lines[top + 1..])?;
        lines[top + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || indent_of(l) > 0)
            .position(|l| is_key(l, inner, indent))
            .map(|i| top + 2 + i)
    }

    /// The line of item `n` of the top-level sequence `section`.
    fn item_line(&self, section: &str, n: usize) -> Option<usize> {
        let lines: Vec<&str> = self.text.lines().collect();
        let top = lines.iter().position(|l| is_key(l, section, 0))?;
        let indent = child_indent(&lines[top + 1..]).unwrap_or(0);
        lines[top + 1..]
            .iter()
            .enumerate()
            .take_while(|(_, l)| l.trim().is_empty() || indent_of(l) > 0 || l.starts_with('-'))
            .filter(|(_, l)| indent_of(l) == indent && l.trim_start().starts_with('-'))
            .nth(n)
            .map(|(i, _)| top + 2 + i)
    }
}

/// serde_yaml's message without its own (meaningless, per entry) position.
fn strip(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn child_indent(lines: &[&str]) -> Option<usize> {
    lines
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| indent_of(l))
}

fn is_key(line: &str, key: &str, indent: usize) -> bool {
    indent_of(line) == indent
        && line
            .trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("sink.yaml"), text)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_problem_is_reported_at_once_with_file_line_and_field() {
        let found = errors(
            "channels:
  hook:
    type: webhook
    url: http://127.0.0.1:1/x
  pager:
    type: pagerdoody
routes:
  - channels: [hook]
  - tag: critical
    channelz: [hook]
send_on_resolved: maybe
retry_for: soon
colour: blue
",
        );
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(
            found[0].starts_with("sink.yaml:5: channels.pager: unknown variant `pagerdoody`"),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("sink.yaml:9: routes[1]: unknown field `channelz`"),
            "{found:#?}"
        );
        assert!(
            found[2].starts_with("sink.yaml:11: send_on_resolved:"),
            "{found:#?}"
        );
        assert!(
            found[3].starts_with("sink.yaml:12: retry_for: `soon` is not a duration"),
            "{found:#?}"
        );
        assert!(
            found[4].starts_with("sink.yaml:13: colour: unknown field `colour`"),
            "{found:#?}"
        );
    }

    #[test]
    fn routes_must_name_channels_that_exist() {
        let found = errors(
            "channels:
  hook: { type: webhook, url: 'http://127.0.0.1:1/x' }
routes:
  - channels: [hook, pager]
  - site: 'shop-*'
    channels: []
flapping: { changes: 0, window: 10m }
",
        );
        assert_eq!(
            found,
            [
                "sink.yaml:4: routes[0].channels: no channel `pager` under `channels:`",
                "sink.yaml:5: routes[1].channels: names no channel",
                "sink.yaml:7: flapping.changes: must be at least 1",
            ]
        );
    }

    #[test]
    fn the_example_file_is_valid_but_for_its_unset_secrets() {
        let text = include_str!("../../../examples/deploy/sink.yaml");
        let found = match parse(Path::new("sink.yaml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        };
        // Channels with `${VAR}` secrets fail to build only when the variable is unset.
        for e in &found {
            assert!(e.field.starts_with("channels."), "{e}");
            assert!(
                [
                    "SITEWATCH_WEBHOOK_SECRET",
                    "SLACK_WEBHOOK_URL",
                    "PAGERDUTY_ROUTING_KEY"
                ]
                .iter()
                .any(|v| e.message.contains(v)),
                "{e}"
            );
        }
        let policy: SinkFile = serde_yaml::from_str(text).unwrap();
        assert_eq!(policy.routes.len(), 3);
        assert_eq!(policy.maintenance.len(), 2);
        assert!(policy.sink.contains_key("brokers"));
    }

    #[test]
    fn a_good_file_builds_its_channels() {
        let alerts = parse(
            Path::new("sink.yaml"),
            "channels:\n  hook: { type: webhook, url: 'http://127.0.0.1:1/x' }\n\
             routes:\n  - channels: [hook]\nreminder_every: 1h\n",
        )
        .unwrap();
        assert_eq!(alerts.channels.keys().collect::<Vec<_>>(), ["hook"]);
        assert_eq!(
            alerts.policy.reminder_every,
            Some(std::time::Duration::from_secs(3600))
        );
        assert!(parse(Path::new("empty.yaml"), "").is_ok());
    }
}
