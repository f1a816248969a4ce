//! The site-list file as written: serde structs with every field optional, so that
//! `defaults:` and each site can be merged before anything is validated.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

/// One YAML file. Sections stay untyped here so each is decoded (and its errors
/// reported) on its own, without one bad entry hiding the others.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// Agent identity and limits (at most one file).
    #[serde(default)]
    pub agent: Option<Value>,
    /// Kafka output (at most one file).
    #[serde(default)]
    pub kafka: Option<Value>,
    /// Plugin declarations, by name.
    #[serde(default)]
    pub plugins: Option<BTreeMap<String, Value>>,
    /// Settings every site of this file gets unless it overrides them.
    #[serde(default)]
    pub defaults: Option<Value>,
    /// The sites.
    #[serde(default)]
    pub sites: Option<Vec<Value>>,
}

/// The `agent:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// Agent name in every result (default: the host name).
    pub name: Option<String>,
    /// Location label in every result (e.g. a region).
    pub location: Option<String>,
    /// Checks running at once across all sites (default 256).
    pub max_concurrency: Option<usize>,
    /// Time in-flight checks get to finish at shutdown (default 10s).
    pub shutdown_grace: Option<String>,
    /// Address for `/healthz` and `/metrics`, e.g. `127.0.0.1:9464` (default: not served).
    pub listen: Option<String>,
    /// Directory for compiled plugin code so restarts skip compiling; `off` disables
    /// (default: `$CACHE_DIRECTORY`, else `$XDG_CACHE_HOME/sitewatch`, else `~/.cache/sitewatch`).
    pub plugin_cache: Option<String>,
    /// Reload the site lists when a config file changes (checked every 2 s; SIGHUP always
    /// reloads) (default false).
    pub watch_config: Option<bool>,
    /// Memory all plugin calls running at once may use together: the sum of their
    /// plugins' `max_memory`; more calls wait (default 1GiB, at least 1MiB).
    pub plugin_memory_total: Option<ByteSize>,
}

/// A site entry, or the `defaults:` block (where `name`, `url` and `body` are not allowed).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    /// Unique site name: its id in results, Kafka keys and the database.
    pub name: Option<String>,
    /// URL to check (http or https).
    pub url: Option<String>,
    /// Time between checks, e.g. `30s`, `5m` (default 60s).
    pub interval: Option<String>,
    /// Deadline for the whole check: connect, TLS, redirects and body (default 10s).
    pub timeout: Option<String>,
    /// HTTP method (default GET).
    pub method: Option<String>,
    /// Request headers; a site's headers are added to (and override) the defaults'.
    pub headers: Option<BTreeMap<String, String>>,
    /// Request body.
    pub body: Option<String>,
    /// Accepted status codes: `200`, `"200-299"`, or a list of those (default 200-399).
    pub expect_status: Option<StatusList>,
    /// Pattern the body must match; `null` or `""` clears the default's.
    #[serde(default, deserialize_with = "explicit")]
    pub regex: Option<Option<String>>,
    /// Pattern the body must not match; `null` or `""` clears the default's.
    #[serde(default, deserialize_with = "explicit")]
    pub regex_absent: Option<Option<String>>,
    /// Total time above which an otherwise good check is `degraded`, e.g. `2s`.
    #[serde(default, deserialize_with = "explicit")]
    pub degraded_after: Option<Option<String>>,
    /// Body bytes read at most: a number or `512KiB`, `1MiB`, `1MB` (default 1MiB).
    pub max_body_bytes: Option<ByteSize>,
    /// Redirects to follow (default 0: a 3xx is judged as it is).
    pub follow_redirects: Option<u32>,
    /// Extra CA certificate (PEM file, relative to this file) trusted for https.
    pub tls_ca: Option<PathBuf>,
    /// Plugins run on the response: names, or `{name, config}` to give this site's config.
    pub plugins: Option<Vec<PluginRef>>,
    /// Bad checks in a row before a location counts as failing (default 2).
    pub failure_threshold: Option<u32>,
    /// Good checks in a row before a failing location passes again (default 1).
    pub success_threshold: Option<u32>,
    /// Failing locations that make the site `down`: `majority` (default), `any`, `all`,
    /// or a number of locations.
    pub quorum: Option<QuorumText>,
    /// Labels for grouping and filtering, e.g. `[tier-1, team-shop]`.
    pub tags: Option<Vec<String>>,
    /// The group the site is listed under on status pages.
    pub group: Option<String>,
    /// Whether the site may appear on the public status page (default false).
    pub public: Option<bool>,
}

/// `quorum` as written: a word or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum QuorumText {
    /// `2`
    Number(i64),
    /// `majority`, `any`, `all`
    Text(String),
}

impl QuorumText {
    /// The value as text, for [`sitewatch_checks::catalog::Quorum`]'s parser.
    pub fn as_text(&self) -> String {
        match self {
            QuorumText::Number(n) => n.to_string(),
            QuorumText::Text(t) => t.clone(),
        }
    }
}

/// `Some(None)` for an explicit `null`, so a site can clear a default.
fn explicit<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `expect_status` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusList {
    /// `200`
    Code(u16),
    /// `"200-299, 304"`
    Text(String),
    /// `[200, "300-308"]`
    List(Vec<StatusItem>),
}

/// One element of an `expect_status` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusItem {
    /// `200`
    Code(u16),
    /// `"300-308"`
    Text(String),
}

impl StatusList {
    /// The list as `StatusSet::parse` text.
    pub fn to_spec_text(&self) -> String {
        let item = |i: &StatusItem| match i {
            StatusItem::Code(c) => c.to_string(),
            StatusItem::Text(t) => t.clone(),
        };
        match self {
            StatusList::Code(c) => c.to_string(),
            StatusList::Text(t) => t.clone(),
            StatusList::List(items) => items.iter().map(item).collect::<Vec<_>>().join(","),
        }
    }
}

/// A byte count: a number, or a string with a unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    /// Plain bytes.
    Bytes(u64),
    /// `512KiB`, `1MiB`, `1MB`, `100B`.
    Text(String),
}

impl ByteSize {
    /// Bytes, or why the text is not a size.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            ByteSize::Bytes(b) => Ok(*b),
            ByteSize::Text(t) => sitewatch_checks::ops::units::parse_bytes(t),
        }
    }
}

/// A plugin named by a site.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PluginRef {
    /// Just the name: the declaration's config applies.
    Name(String),
    /// Name plus this site's config (overrides the declaration's keys).
    WithConfig(PluginRefConfig),
}

/// `{name, config}` form of [`PluginRef`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRefConfig {
    /// Declared plugin name.
    pub name: String,
    /// This site's key/value config for the plugin (numbers and booleans as text).
    #[serde(default, deserialize_with = "super::plugin::config_map")]
    pub config: BTreeMap<String, String>,
}

impl PluginRef {
    /// The referenced plugin's name.
    pub fn name(&self) -> &str {
        match self {
            PluginRef::Name(n) => n,
            PluginRef::WithConfig(c) => &c.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_differs_from_absent() {
        let s: RawSite = serde_yaml::from_str("regex: null").unwrap();
        assert!(matches!(s.regex, Some(None)));
        let s: RawSite = serde_yaml::from_str("url: x").unwrap();
        assert!(s.regex.is_none());
    }
}
