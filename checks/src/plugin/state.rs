//! What one plugin call owns: an empty WASI context (nothing granted), the memory
//! cap, and the budget for the plugin's log lines.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::sitewatch::check::log::{self, Level};
use super::bindings::sitewatch::check::types;

/// Log lines a plugin may write per call; the rest are counted and dropped.
const MAX_LOG_LINES: u32 = 20;
/// Bytes of one log line kept; the rest is cut.
const MAX_LOG_LINE: usize = 1024;

/// Store data for one call.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory cap, and whether the guest ran into it.
    pub(crate) limiter: MemoryCap,
    /// Plugin name for log lines.
    plugin: Arc<str>,
    logged: u32,
    /// Log lines dropped over the budget.
    pub(crate) logs_dropped: u32,
}

impl CallState {
    /// A call of `plugin` allowed `max_memory` bytes of linear memory.
    pub(crate) fn new(plugin: Arc<str>, max_memory: usize) -> Self {
        // The builder's defaults grant nothing: no preopened directories, no
        // environment, no arguments, no sockets; stdout/stderr go nowhere.
        CallState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryCap {
                limit: max_memory,
                used: 0,
                exceeded: None,
            },
            plugin,
            logged: 0,
            logs_dropped: 0,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

// `types` has no functions; its (empty) host trait is still required.
impl types::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        if self.logged >= MAX_LOG_LINES {
            self.logs_dropped += 1;
            return;
        }
        self.logged += 1;
        let message = truncate(&message, MAX_LOG_LINE);
        let plugin = &*self.plugin;
        match level {
            Level::Debug => tracing::debug!(target: "sitewatch::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "sitewatch::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "sitewatch::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "sitewatch::plugin", plugin, "{message}"),
        }
    }
}

/// Refuses linear-memory growth past `limit` and remembers the attempt, so the
/// resulting trap can be reported as "out of memory" rather than a bare trap.
/// The cap is on all of a call's memories together: a component built from
/// Python or JavaScript has several.
pub(crate) struct MemoryCap {
    limit: usize,
    /// Bytes of all memories created so far in this call.
    used: usize,
    /// The size asked for when the cap was hit.
    pub(crate) exceeded: Option<usize>,
}

impl MemoryCap {
    /// The cap in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

impl ResourceLimiter for MemoryCap {
    /// Called when a memory is created (`current` 0) and when it grows.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.exceeded = Some(total);
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded",
                self.limit
            ));
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far past any real plugin.
        Ok(desired <= 1_000_000)
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
