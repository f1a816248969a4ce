//! Reading YAML files into an [`AgentConfig`] (placeholder until the loader lands).

use std::path::PathBuf;

use super::{AgentConfig, ConfigError, ConfigErrors};

/// Loads and validates the given files / directories.
pub fn load(paths: &[PathBuf]) -> Result<AgentConfig, ConfigErrors> {
    Err(ConfigErrors(
        paths
            .iter()
            .map(|p| ConfigError {
                file: p.clone(),
                line: None,
                field: String::new(),
                message: "config loading is not implemented yet".into(),
            })
            .collect(),
    ))
}

/// The resolved config as YAML, secrets masked (for `--check-config`).
pub fn render(config: &AgentConfig) -> String {
    format!("{config:?}\n")
}
