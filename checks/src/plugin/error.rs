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
    /// A core module where a component is needed.
    #[error(
        "`{}` is a core WebAssembly module, not a component: build it as a component \
         (Rust: cargo build --target wasm32-wasip2; Python: componentize-py; JavaScript: \
         componentize-js)",
        path.display()
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The component's memories at start already exceed the plugin's `max_memory`:
    /// every call would fail.
    #[error(
        "`{}` needs {} of memory before it runs (all its linear memories at their \
         initial size); max_memory is {}: raise max_memory to at least that",
        path.display(), mib(*.needed), mib(*.limit)
    )]
    MemoryTooSmall {
        /// The file.
        path: PathBuf,
        /// Bytes the component's memories take at instantiation.
        needed: u64,
        /// The configured cap.
        limit: u64,
    },
    /// The component needs more from the instance pool than the host was sized for.
    #[error(
        "`{}` needs {needs:?} per call, more than this host was sized for ({sized:?}); \
         size the host from the components it loads",
        path.display()
    )]
    Pool {
        /// The file.
        path: PathBuf,
        /// What one call of it takes.
        needs: super::CallNeeds,
        /// What the host's pool holds per call.
        sized: super::CallNeeds,
    },
    /// A directory where a component file is needed.
    #[error("`{}` is a directory; `path` must name a component file (.wasm)", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
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

/// `bytes` as MiB (or KiB below 1 MiB) for messages.
pub(crate) fn mib(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// Why one call gave no verdict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The wall-clock deadline passed (an endless loop, or a guest that waits).
    #[error("did not finish within its {}ms deadline", .0.as_millis())]
    Deadline(Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("exceeded its memory limit of {limit} bytes (its memories would have held {wanted} bytes together)")]
    Memory {
        /// The cap.
        limit: usize,
        /// What all its memories would have held together.
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
