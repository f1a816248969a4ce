//! The `plugins:` block: WebAssembly check components declared once, used by name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One declared plugin component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDecl {
    /// Path to the component `.wasm` file (relative paths are relative to the config file).
    pub path: PathBuf,
    /// Default key/value config; a site's own config for the plugin overrides keys.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Deadline per call (default 100ms).
    #[serde(default, with = "humantime_serde_opt")]
    pub timeout: Option<std::time::Duration>,
    /// Memory cap per call: bytes, or `64MiB`-style text (default 64 MiB).
    #[serde(default, deserialize_with = "bytes_opt")]
    pub max_memory: Option<u64>,
    /// Config file and line of `path`, for errors found when the component is loaded.
    #[serde(skip)]
    pub declared_at: Option<(PathBuf, usize)>,
}

pub(super) fn bytes_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<super::raw::ByteSize>::deserialize(d)?
        .map(|b| b.bytes().map_err(serde::de::Error::custom))
        .transpose()
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
