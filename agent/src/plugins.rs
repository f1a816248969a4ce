//! Loads the declared WebAssembly check plugins once at start and attaches them
//! to the sites that use them; compiles them ahead of time into the compiled-code
//! cache (`sitewatch-agent plugins compile`). A component that cannot be used is
//! a config error naming its file; nothing runs half-configured.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{AgentConfig, ConfigError, ConfigErrors, PluginDecl};

/// What `plugins compile` did for one plugin.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Declared name.
    pub name: String,
    /// Component file.
    pub path: PathBuf,
    /// Size of the component file in bytes.
    pub file_bytes: u64,
    /// Core instances one call creates (sizes the instance pool).
    pub core_instances: u32,
    /// Time to compile it, or to load it from the cache.
    pub took: Duration,
    /// Whether it was already in the cache.
    pub cached: bool,
}

/// What `plugins compile` did, printed for the operator.
#[derive(Debug, Clone)]
pub struct CompileReport {
    /// The cache directory filled.
    pub cache_dir: PathBuf,
    /// One entry per declared plugin.
    pub plugins: Vec<Compiled>,
}

impl fmt::Display for CompileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plugin cache: {}", self.cache_dir.display())?;
        if self.plugins.is_empty() {
            return writeln!(f, "no plugins declared");
        }
        for p in &self.plugins {
            let what = if p.cached {
                "already compiled, loaded"
            } else {
                "compiled"
            };
            writeln!(
                f,
                "  {}: {} ({:.1} MB, {} core instances per call): {what} in {:.2}s",
                p.name,
                p.path.display(),
                p.file_bytes as f64 / 1e6,
                p.core_instances,
                p.took.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

/// Compiles every declared plugin and binds it, with each site's config, to the
/// sites listing it.
#[cfg(feature = "wasm")]
pub fn attach(config: &mut AgentConfig) -> Result<(), ConfigErrors> {
    use sitewatch_checks::spec::PluginBinding;

    if config.plugins.is_empty() {
        return Ok(());
    }
    let loaded = wasm::load_all(config, config.agent.plugin_cache.clone(), false)?;
    let bindings: Vec<Vec<PluginBinding>> = config
        .sites
        .iter()
        .map(|site| {
            site.plugins
                .iter()
                .filter_map(|u| {
                    loaded.plugins.get(u.name.as_str()).map(|p| PluginBinding {
                        name: u.name.clone(),
                        plugin: p.clone(),
                        config: u.config.clone().into_iter().collect(),
                    })
                })
                .collect()
        })
        .collect();
    for (site, b) in config.sites.iter_mut().zip(bindings) {
        site.spec.plugins = b;
    }
    Ok(())
}

/// Compiles every declared plugin into `cache_dir` (default: the config's
/// `agent.plugin_cache`), so an agent started with the same config loads them
/// from there without compiling.
#[cfg(feature = "wasm")]
pub fn compile(
    config: &AgentConfig,
    cache_dir: Option<PathBuf>,
) -> Result<CompileReport, ConfigErrors> {
    let Some(cache_dir) = cache_dir.or_else(|| config.agent.plugin_cache.clone()) else {
        return Err(one_error(
            config,
            "agent.plugin_cache",
            "there is no cache to compile into: `agent.plugin_cache` is off and no \
             --cache-dir was given"
                .into(),
        ));
    };
    let loaded = wasm::load_all(config, Some(cache_dir.clone()), true)?;
    Ok(CompileReport {
        cache_dir,
        plugins: loaded.report,
    })
}

/// Without the `wasm` feature, sites naming plugins are refused: running them
/// without their plugins would report checks that were never made.
#[cfg(not(feature = "wasm"))]
pub fn attach(config: &mut AgentConfig) -> Result<(), ConfigErrors> {
    no_wasm(config).map(|_| ())
}

/// Without the `wasm` feature there is nothing to compile with.
#[cfg(not(feature = "wasm"))]
pub fn compile(
    config: &AgentConfig,
    cache_dir: Option<PathBuf>,
) -> Result<CompileReport, ConfigErrors> {
    no_wasm(config)?;
    Ok(CompileReport {
        cache_dir: cache_dir.unwrap_or_default(),
        plugins: Vec::new(),
    })
}

#[cfg(not(feature = "wasm"))]
fn no_wasm(config: &AgentConfig) -> Result<(), ConfigErrors> {
    let errors: Vec<ConfigError> = config
        .plugins
        .iter()
        .map(|(name, decl)| {
            decl_error(
                name,
                decl,
                "this agent was built without WebAssembly support (feature `wasm`)".into(),
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(feature = "wasm")]
mod wasm {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Instant;

    use sitewatch_checks::plugin::{
        HostOptions, LoadError, PluginFile, PluginHost, PluginLimits, WasmPlugin,
        DEFAULT_MAX_MEMORY,
    };

    use super::{decl_error, one_error, Compiled};
    use crate::config::{AgentConfig, ConfigErrors, PluginDecl};

    /// Every declared plugin, compiled (or loaded from the cache).
    pub(super) struct Loaded {
        pub(super) plugins: BTreeMap<String, Arc<WasmPlugin>>,
        pub(super) report: Vec<Compiled>,
    }

    fn limits_of(decl: &PluginDecl) -> PluginLimits {
        PluginLimits {
            timeout: decl.effective_timeout(),
            max_memory: usize::try_from(decl.effective_max_memory()).unwrap_or(usize::MAX),
        }
    }

    /// Reads every file, sizes the host for them, and loads each. With
    /// `cache_required`, an unusable cache directory is an error rather than a
    /// warning (compiling ahead of time is pointless without it).
    pub(super) fn load_all(
        config: &AgentConfig,
        cache_dir: Option<PathBuf>,
        cache_required: bool,
    ) -> Result<Loaded, ConfigErrors> {
        // Every file is read and inspected first: the instance pool is sized from
        // what the loaded components need per call (Python needs far more than Rust).
        let mut errors = Vec::new();
        let mut files = BTreeMap::new();
        for (name, decl) in &config.plugins {
            match PluginFile::read(&decl.path) {
                Ok(file) => {
                    files.insert(name.as_str(), file);
                }
                Err(e) => errors.push(load_error(name, decl, &e)),
            }
        }
        let memories = config.plugins.values().map(|d| limits_of(d).max_memory);
        let largest = memories.clone().max().unwrap_or(DEFAULT_MAX_MEMORY);
        let smallest = memories.min().unwrap_or(DEFAULT_MAX_MEMORY).max(1);
        let budget = config.agent.plugin_memory_total;
        // Every running check may be in a plugin call at once, as far as the memory
        // budget lets them: no more pool slots than could ever be used.
        let fit = usize::try_from(budget).unwrap_or(usize::MAX) / smallest;
        let concurrent_calls = config.agent.max_concurrency.min(fit).max(1);
        let mut options = HostOptions {
            cache_dir,
            concurrent_calls: u32::try_from(concurrent_calls).unwrap_or(u32::MAX),
            max_memory: largest,
            memory_total: Some(budget),
            ..HostOptions::default()
        }
        .sized_for(files.values());
        let host = match PluginHost::with_options(&options) {
            Ok(host) => host,
            // A read-only or missing cache only costs compile time: carry on without it.
            Err(e @ LoadError::Cache { .. }) if !cache_required => {
                tracing::warn!("{e}; compiling plugins without a cache");
                options.cache_dir = None;
                PluginHost::with_options(&options)
                    .map_err(|e| one_error(config, "plugins", e.to_string()))?
            }
            Err(e @ LoadError::Cache { .. }) => {
                return Err(one_error(config, "agent.plugin_cache", e.to_string()))
            }
            Err(e) => return Err(one_error(config, "plugins", e.to_string())),
        };
        let mut plugins = BTreeMap::new();
        let mut report = Vec::new();
        for (name, decl) in &config.plugins {
            let Some(file) = files.get(name.as_str()) else {
                continue;
            };
            let started = Instant::now();
            let hits_before = host.cache_stats().map_or(0, |(hits, _)| hits);
            match host.load_file(name, file, limits_of(decl)) {
                Ok(plugin) => {
                    let took = started.elapsed();
                    let cached = host
                        .cache_stats()
                        .is_some_and(|(hits, _)| hits > hits_before);
                    tracing::info!(plugin = %name, path = %decl.path.display(), cached, took_ms = took.as_millis() as u64, "plugin loaded");
                    plugins.insert(name.clone(), Arc::new(plugin));
                    report.push(Compiled {
                        name: name.clone(),
                        path: decl.path.clone(),
                        file_bytes: file.file_size(),
                        core_instances: file.needs().core_instances,
                        took,
                        cached,
                    });
                }
                Err(e) => errors.push(load_error(name, decl, &e)),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Loaded { plugins, report })
    }

    /// A component problem, at the setting it is about: memory at `max_memory`,
    /// everything else at `path`.
    fn load_error(name: &str, decl: &PluginDecl, e: &LoadError) -> crate::config::ConfigError {
        let mut error = decl_error(name, decl, e.to_string());
        if matches!(
            e,
            LoadError::MemoryTooSmall { .. } | LoadError::Limits { .. }
        ) {
            error.field = format!("plugins.{name}.max_memory");
            error.line = decl.max_memory_line.or(error.line);
        }
        error
    }
}

fn decl_error(name: &str, decl: &PluginDecl, message: String) -> ConfigError {
    let (file, line) = match &decl.declared_at {
        Some((file, line)) => (file.clone(), Some(*line)),
        None => (decl.path.clone(), None),
    };
    ConfigError {
        file,
        line,
        field: format!("plugins.{name}.path"),
        message,
    }
}

#[cfg(feature = "wasm")]
fn one_error(config: &AgentConfig, field: &str, message: String) -> ConfigErrors {
    let file = config
        .plugins
        .values()
        .find_map(|d| d.declared_at.as_ref().map(|(f, _)| f.clone()))
        .unwrap_or_default();
    ConfigErrors(vec![ConfigError {
        file,
        line: None,
        field: field.into(),
        message,
    }])
}
