//! The `agent:` block: identity, limits and where the agent serves and caches things,
//! with the defaults that apply when a setting (or the whole block) is absent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sitewatch_checks::ops::units::{format_bytes, parse_duration};

use super::locate::{Outline, Span};
use super::raw::RawAgent;
use super::report::Report;
use super::AgentSettings;

/// Default for `agent.max_concurrency`.
pub const DEFAULT_MAX_CONCURRENCY: usize = 256;
/// Default for `agent.shutdown_grace`.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default for `agent.plugin_memory_total`: 16 calls at the default `max_memory`
/// (256 at once could otherwise be allowed 16 GiB).
pub const DEFAULT_PLUGIN_MEMORY_TOTAL: u64 = 1 << 30;

impl AgentSettings {
    /// The settings of a config without an `agent:` block.
    pub fn defaults() -> Self {
        AgentSettings {
            name: host_name(),
            location: None,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            listen: None,
            plugin_cache: default_plugin_cache(),
            watch_config: false,
            plugin_memory_total: DEFAULT_PLUGIN_MEMORY_TOTAL,
        }
    }
}

/// Validates the `agent:` block; `None` (with every problem reported) when it has any.
pub(super) fn agent_settings(
    a: RawAgent,
    file: &Path,
    outline: &Outline<'_>,
    span: Span,
    report: &mut Report,
) -> Option<AgentSettings> {
    let before = report.len();
    let shutdown_grace = match a.shutdown_grace.as_deref().map(parse_duration) {
        None => DEFAULT_SHUTDOWN_GRACE,
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            report.push(
                file,
                Some(outline.key(span, "shutdown_grace")),
                "agent.shutdown_grace",
                e,
            );
            DEFAULT_SHUTDOWN_GRACE
        }
    };
    let listen = a
        .listen
        .as_deref()
        .and_then(|text| match text.trim().parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                report.push(
                    file,
                    Some(outline.key(span, "listen")),
                    "agent.listen",
                    format!("`{text}` is not an address like 127.0.0.1:9464"),
                );
                None
            }
        });
    let max_concurrency = a.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 {
        report.push(
            file,
            Some(outline.key(span, "max_concurrency")),
            "agent.max_concurrency",
            "must be at least 1",
        );
    }
    let smallest = *sitewatch_checks::plugin_limits::MAX_MEMORY_RANGE.start() as u64;
    let plugin_memory_total = match a.plugin_memory_total.as_ref().map(|b| b.bytes()) {
        None => DEFAULT_PLUGIN_MEMORY_TOTAL,
        Some(Ok(total)) if total >= smallest => total,
        Some(result) => {
            let problem = match result {
                Ok(_) => format!(
                    "must be at least {} (the smallest max_memory a plugin can have)",
                    format_bytes(smallest)
                ),
                Err(e) => e,
            };
            report.push(
                file,
                Some(outline.key(span, "plugin_memory_total")),
                "agent.plugin_memory_total",
                problem,
            );
            DEFAULT_PLUGIN_MEMORY_TOTAL
        }
    };
    let plugin_cache = match a.plugin_cache.as_deref().map(str::trim) {
        None => default_plugin_cache(),
        Some("off") | Some("") => None,
        Some(dir) => Some(file.parent().unwrap_or(Path::new(".")).join(dir)),
    };
    (report.len() == before).then(|| AgentSettings {
        name: a
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(host_name),
        location: a.location,
        max_concurrency,
        shutdown_grace,
        listen,
        plugin_cache,
        watch_config: a.watch_config.unwrap_or(false),
        plugin_memory_total,
    })
}

/// `agent.plugin_cache` when not set: systemd's `CacheDirectory=`, else the XDG cache.
fn default_plugin_cache() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("CACHE_DIRECTORY")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("sitewatch")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("sitewatch")))
        .filter(|d| d.is_absolute())
}

/// The machine's host name, for the default agent name.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sitewatch-agent".to_string())
}
