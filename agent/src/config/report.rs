//! Collecting config problems so they are all reported at once.

use std::path::Path;

use super::{ConfigError, ConfigErrors};

/// Problems found so far.
#[derive(Debug, Default)]
pub struct Report {
    errors: Vec<ConfigError>,
}

impl Report {
    /// Records one problem.
    pub fn push(
        &mut self,
        file: &Path,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            file: file.to_path_buf(),
            line,
            field: field.into(),
            message: message.into(),
        });
    }

    /// Problems recorded.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether none were recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}
