//! Agent configuration: YAML site lists in, validated [`AgentConfig`] out.
//!
//! Loading reports every problem at once, each with file, line and field.

mod interpolate;
pub mod kafka;
mod load;
mod locate;
pub mod plugin;
mod raw;
mod render;
mod report;
mod resolve;
mod settings;
mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use sitewatch_checks::catalog::Quorum;
use sitewatch_checks::spec::CheckSpec;

pub use kafka::KafkaConfig;
pub use load::load;
pub use plugin::{PluginDecl, PluginUse};
pub use render::render;
pub use resolve::{DEFAULT_INTERVAL, DEFAULT_TIMEOUT};
pub use settings::{DEFAULT_MAX_CONCURRENCY, DEFAULT_SHUTDOWN_GRACE};

/// Exit code for a rejected config: EX_CONFIG, the same as the sink's.
pub use sitewatch_checks::ops::EXIT_CONFIG;

/// The whole, validated agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Agent identity and limits.
    pub agent: AgentSettings,
    /// Kafka output; `None` means results go to stdout as JSON lines.
    pub kafka: Option<KafkaConfig>,
    /// Declared plugins by name (paths resolved to absolute).
    pub plugins: BTreeMap<String, PluginDecl>,
    /// Every site, in file order.
    pub sites: Vec<Site>,
    /// Values that came from `${VAR}` interpolation, masked when the config is printed.
    pub secrets: Vec<String>,
}

/// The `agent:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// Agent name in every result (default: the host name).
    pub name: String,
    /// Location label in every result.
    pub location: Option<String>,
    /// Checks running at once, across all sites.
    pub max_concurrency: usize,
    /// How long in-flight checks may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Where `/healthz` and `/metrics` are served; `None` = not served.
    pub listen: Option<std::net::SocketAddr>,
    /// Where compiled plugin code is cached; `None` = not cached.
    pub plugin_cache: Option<PathBuf>,
    /// Reload when a config file changes.
    pub watch_config: bool,
    /// Bytes of plugin memory all plugin calls running at once may be allowed
    /// together (the sum of their plugins' `max_memory`).
    pub plugin_memory_total: u64,
}

/// One resolved site.
#[derive(Debug, Clone)]
pub struct Site {
    /// What to check (plugins not yet attached: see `plugins`).
    pub spec: CheckSpec,
    /// Plugins this site uses, with their merged config.
    pub plugins: Vec<PluginUse>,
    /// How the sink judges the site and how readers list it: published in the site
    /// catalog, not used by the agent's checks.
    pub listing: Listing,
}

/// A site's fields for the sink and readers (the site catalog), beyond what is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Bad checks in a row before a location is failing.
    pub failure_threshold: u32,
    /// Good checks in a row before a failing location passes again.
    pub success_threshold: u32,
    /// Failing locations that make the site `down`.
    pub quorum: Quorum,
    /// Labels.
    pub tags: Vec<String>,
    /// Status-page group.
    pub group: Option<String>,
    /// Shown on the public status page.
    pub public: bool,
}

/// One problem found in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File the problem is in.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field, e.g. `sites[2].regex`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        // Whole-file problems (unreadable, not YAML) have no field.
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}
