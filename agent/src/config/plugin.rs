//! The `plugins:` block: WebAssembly check components declared once, used by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::locate::{Outline, Span};
use super::report::Report;

/// One declared plugin component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDecl {
    /// Path to the component `.wasm` file (relative paths are relative to the config file).
    pub path: PathBuf,
    /// Default key/value config; a site's own config for the plugin overrides keys.
    /// Values are text; numbers and booleans are passed as their text (`max: 50`).
    #[serde(default, deserialize_with = "config_map")]
    pub config: BTreeMap<String, String>,
    /// Deadline per call, 1ms to 60s (default 100ms).
    #[serde(default, with = "humantime_serde_opt")]
    pub timeout: Option<std::time::Duration>,
    /// Memory cap per call, all its linear memories together: bytes, or `64MiB`-style
    /// text, 1 MiB to 1 GiB (default 64 MiB).
    #[serde(default, deserialize_with = "bytes_opt")]
    pub max_memory: Option<u64>,
    /// Config file and line of `path`, for errors found when the component is loaded.
    #[serde(skip)]
    pub declared_at: Option<(PathBuf, usize)>,
    /// Line of `max_memory` (of the declaration when it is not given), for errors
    /// about it found when the component is loaded.
    #[serde(skip)]
    pub max_memory_line: Option<usize>,
}

impl PluginDecl {
    /// The deadline per call, default applied.
    pub fn effective_timeout(&self) -> std::time::Duration {
        self.timeout
            .unwrap_or(sitewatch_checks::plugin_limits::DEFAULT_TIMEOUT)
    }

    /// The memory cap per call in bytes, default applied.
    pub fn effective_max_memory(&self) -> u64 {
        self.max_memory
            .unwrap_or(sitewatch_checks::plugin_limits::DEFAULT_MAX_MEMORY as u64)
    }
}

/// A plugin's `config:` map. Plugins receive text; a number or a boolean is passed
/// as its text (`max: 50` gives "50"; quote a value to keep it exactly as written,
/// e.g. `"1.50"`). Lists, maps and null are refused.
pub(super) fn config_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map: BTreeMap<String, ConfigValue> = BTreeMap::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// One config value as the text a plugin receives.
struct ConfigValue(String);

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ConfigValueVisitor)
    }
}

struct ConfigValueVisitor;

impl serde::de::Visitor<'_> for ConfigValueVisitor {
    type Value = ConfigValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("text, a number or true/false")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }
}

pub(super) fn bytes_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<super::raw::ByteSize>::deserialize(d)?
        .map(|b| b.bytes().map_err(serde::de::Error::custom))
        .transpose()
}

/// Problems a plugin declaration shows before its component is read: a `path` that
/// is not a file, limits outside the range a plugin call can sensibly run with.
pub(super) fn check_declaration(
    name: &str,
    decl: &PluginDecl,
    file: &Path,
    outline: &Outline<'_>,
    span: Span,
    report: &mut Report,
) {
    use sitewatch_checks::ops::units::{format_bytes, format_duration};
    use sitewatch_checks::plugin_limits::{MAX_MEMORY_RANGE, TIMEOUT_RANGE};

    let mut problem = |key: &str, message: String| {
        report.push(
            file,
            Some(outline.key(span, key)),
            format!("plugins.{name}.{key}"),
            message,
        );
    };
    if decl.path.is_dir() {
        problem(
            "path",
            format!(
                "`{}` is a directory; `path` must name a component file (.wasm)",
                decl.path.display()
            ),
        );
    } else if !decl.path.is_file() {
        problem(
            "path",
            format!("component file `{}` does not exist", decl.path.display()),
        );
    }
    if let Some(t) = decl.timeout.filter(|t| !TIMEOUT_RANGE.contains(t)) {
        problem(
            "timeout",
            format!(
                "{} is not allowed: must be between {} and {}",
                format_duration(t),
                format_duration(*TIMEOUT_RANGE.start()),
                format_duration(*TIMEOUT_RANGE.end())
            ),
        );
    }
    let range = (*MAX_MEMORY_RANGE.start() as u64)..=(*MAX_MEMORY_RANGE.end() as u64);
    if let Some(m) = decl.max_memory.filter(|m| !range.contains(m)) {
        problem(
            "max_memory",
            format!(
                "{} is not allowed: must be between {} and {}",
                format_bytes(m),
                format_bytes(*range.start()),
                format_bytes(*range.end())
            ),
        );
    }
}

/// A site's use of a plugin: its name and the merged config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginUse {
    /// Declared plugin name.
    pub name: String,
    /// Config for this site (declaration defaults overlaid by the site's).
    pub config: BTreeMap<String, String>,
}

/// Optional durations (`100ms`, `2s`), written and read the one shared way.
pub(crate) mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&sitewatch_checks::ops::units::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            sitewatch_checks::ops::units::parse_duration(&s).map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
