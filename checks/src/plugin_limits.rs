//! The limits a plugin call runs under, their defaults and the ranges a config may
//! set: here, outside the `wasm` feature, so an agent built without WebAssembly
//! support validates and shows plugin settings the same way.

use std::time::Duration;

/// Default deadline per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
/// Default cap on a call's linear memory (64 MiB).
pub const DEFAULT_MAX_MEMORY: usize = 64 * 1024 * 1024;
/// Deadlines a plugin may be given: a call holds a check, so minutes are never right.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(60);
/// Memory caps a plugin may be given: the Python and JavaScript runtimes need about
/// 16 MiB, and a check that needs more than 1 GiB per response is a mistake.
pub const MAX_MEMORY_RANGE: std::ops::RangeInclusive<usize> = (1 << 20)..=(1 << 30);

/// The resources one call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Wall-clock deadline for instantiation plus the call.
    pub timeout: Duration,
    /// Linear memory cap in bytes.
    pub max_memory: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            timeout: DEFAULT_TIMEOUT,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}
