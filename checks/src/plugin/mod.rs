//! The WebAssembly plugin host: runs user check components (`wit/check.wit`) on
//! each response, isolated from the agent and from each other.

mod bindings;
mod call;
mod error;
mod host;
mod imports;
mod inspect;
mod state;

pub use crate::plugin_limits::{
    PluginLimits, DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT, MAX_MEMORY_RANGE, TIMEOUT_RANGE,
};
pub use call::WasmPlugin;
pub use error::{CallError, LoadError};
pub use host::{HostOptions, PluginFile, PluginHost, DEFAULT_PER_CALL};
pub use imports::host_wit_version;
pub use inspect::{inspect, CallNeeds, InspectError, Inspection};
