//! Loads the declared WebAssembly check plugins once at start and attaches them
//! to the sites that use them. A component that cannot be used is a config error
//! naming its file; nothing runs half-configured.

use crate::config::{AgentConfig, ConfigError, ConfigErrors};

/// Compiles every declared plugin and binds it, with each site's config, to the
/// sites listing it.
#[cfg(feature = "wasm")]
pub fn attach(config: &mut AgentConfig) -> Result<(), ConfigErrors> {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use sitewatch_checks::plugin::{
        HostOptions, PluginHost, PluginLimits, WasmPlugin, DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT,
    };
    use sitewatch_checks::spec::PluginBinding;

    if config.plugins.is_empty() {
        return Ok(());
    }
    let limits_of = |decl: &crate::config::PluginDecl| PluginLimits {
        timeout: decl.timeout.unwrap_or(DEFAULT_TIMEOUT),
        max_memory: decl.max_memory.map_or(DEFAULT_MAX_MEMORY, |b| {
            usize::try_from(b).unwrap_or(usize::MAX)
        }),
    };
    let mut options = HostOptions {
        cache_dir: config.agent.plugin_cache.clone(),
        // Every running check may be in a plugin call at once.
        concurrent_calls: u32::try_from(config.agent.max_concurrency).unwrap_or(u32::MAX),
        max_memory: config
            .plugins
            .values()
            .map(|d| limits_of(d).max_memory)
            .max()
            .unwrap_or(DEFAULT_MAX_MEMORY),
    };
    let host = match PluginHost::with_options(&options) {
        Ok(host) => host,
        // A read-only or missing cache only costs compile time: carry on without it.
        Err(e @ sitewatch_checks::plugin::LoadError::Cache { .. }) => {
            tracing::warn!("{e}; compiling plugins without a cache");
            options.cache_dir = None;
            PluginHost::with_options(&options).map_err(|e| one_error(config, e.to_string()))?
        }
        Err(e) => return Err(one_error(config, e.to_string())),
    };
    let mut loaded: BTreeMap<&str, Arc<WasmPlugin>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, decl) in &config.plugins {
        let limits = PluginLimits {
            timeout: decl.timeout.unwrap_or(DEFAULT_TIMEOUT),
            max_memory: decl.max_memory.map_or(DEFAULT_MAX_MEMORY, |b| {
                usize::try_from(b).unwrap_or(usize::MAX)
            }),
        };
        match host.load(name, &decl.path, limits) {
            Ok(plugin) => {
                tracing::info!(plugin = %name, path = %decl.path.display(), "plugin loaded");
                loaded.insert(name, Arc::new(plugin));
            }
            Err(e) => errors.push(decl_error(name, decl, e.to_string())),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let bindings: Vec<Vec<PluginBinding>> = config
        .sites
        .iter()
        .map(|site| {
            site.plugins
                .iter()
                .filter_map(|u| {
                    loaded.get(u.name.as_str()).map(|p| PluginBinding {
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

/// Without the `wasm` feature, sites naming plugins are refused: running them
/// without their plugins would report checks that were never made.
#[cfg(not(feature = "wasm"))]
pub fn attach(config: &mut AgentConfig) -> Result<(), ConfigErrors> {
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

fn decl_error(name: &str, decl: &crate::config::PluginDecl, message: String) -> ConfigError {
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
fn one_error(config: &AgentConfig, message: String) -> ConfigErrors {
    let file = config
        .plugins
        .values()
        .find_map(|d| d.declared_at.as_ref().map(|(f, _)| f.clone()))
        .unwrap_or_default();
    ConfigErrors(vec![ConfigError {
        file,
        line: None,
        field: "plugins".into(),
        message,
    }])
}
