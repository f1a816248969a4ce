//! Why a plugin could not be loaded (a config error at start) or could not give a
//! verdict on one check (outcome `error` on that check only).

use std::path::PathBuf;
use std::time::Duration;

/// A component file that cannot be used: reported at start, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The wasmtime engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The compiled-code cache directory is unusable.
    #[error("cannot use `{}` as the plugin cache: {message}", dir.display())]
    Cache {
        /// The directory.
        dir: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Limits the host was not sized for.
    #[error("cannot load `{}` with these limits: {message}", path.display())]
    Limits {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
    /// The component file cannot be read.
    #[error("cannot read plugin `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a valid WebAssembly component.
    #[error("`{}` is not a valid WebAssembly component: {message}", path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// The compiler's complaint.
        message: String,
    },
    /// A component that imports something the host does not give, or lacks `check`.
    #[error("`{}` does not implement the sitewatch:check/checker world: {message}", path.display())]
    World {
        /// The file.
        path: PathBuf,
        /// What is missing or mismatched.
        message: String,
    },
}

/// Why one call gave no verdict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The wall-clock deadline passed (an endless loop, or a guest that waits).
    #[error("did not finish within its {}ms deadline", .0.as_millis())]
    Deadline(Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("exceeded its memory limit of {limit} bytes (asked for {wanted})")]
    Memory {
        /// The cap.
        limit: usize,
        /// The size the guest asked for.
        wanted: usize,
    },
    /// The guest trapped (panic, unreachable, bad memory access, ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The guest returned `err(message)`.
    #[error("returned an error: {0}")]
    Returned(String),
    /// Called outside a tokio runtime (a host bug, not the plugin's).
    #[error("no async runtime to run the plugin on")]
    NoRuntime,
}
