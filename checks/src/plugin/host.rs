//! The engine, linker and epoch clock shared by every plugin: built once at start.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use super::bindings::{Checker, CheckerPre};
use super::call::{PluginLimits, WasmPlugin};
use super::error::LoadError;
use super::state::CallState;

/// How often the epoch advances: the granularity of plugin deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How the host is sized; fixed at start.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Absolute directory for compiled code, so restarts load without recompiling.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Plugin calls running at once; more wait for a free slot.
    pub concurrent_calls: u32,
    /// The largest `max_memory` of any plugin to be loaded.
    pub max_memory: usize,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            cache_dir: None,
            concurrent_calls: 64,
            max_memory: super::DEFAULT_MAX_MEMORY,
        }
    }
}

/// Compiles and links plugin components.
pub struct PluginHost {
    engine: Engine,
    slots: Arc<Semaphore>,
    max_memory: usize,
    linker: Linker<CallState>,
    ticker: Arc<EpochTicker>,
    cache: Option<Cache>,
}

impl PluginHost {
    /// A host with default sizing whose compiled code is cached under `cache_dir`.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self, LoadError> {
        Self::with_options(&HostOptions {
            cache_dir: cache_dir.map(Path::to_path_buf),
            ..HostOptions::default()
        })
    }

    /// A host sized by `options`.
    pub fn with_options(options: &HostOptions) -> Result<Self, LoadError> {
        let cache_dir = options.cache_dir.as_deref();
        let slots = options.concurrent_calls.max(1);
        let mut config = Config::new();
        // Instances, memories and fiber stacks come from pre-reserved pools and are
        // reset, not unmapped, after each call: instantiation costs microseconds.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(8))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(8))
            .total_stacks(slots)
            .max_memory_size(options.max_memory);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Reserve only what the largest plugin may use (not 4 GiB per slot).
        config.memory_reservation(options.max_memory as u64);
        config.wasm_component_model(true);
        // Deadlines: compiled code checks the epoch at loop heads and calls.
        config.epoch_interruption(true);
        let mut cache = None;
        if let Some(dir) = cache_dir {
            let cache_error = |message: String| LoadError::Cache {
                dir: dir.to_path_buf(),
                message,
            };
            std::fs::create_dir_all(dir).map_err(|e| cache_error(e.to_string()))?;
            let mut cache_config = CacheConfig::new();
            cache_config.with_directory(dir);
            let c = Cache::new(cache_config).map_err(|e| cache_error(e.to_string()))?;
            config.cache(Some(c.clone()));
            cache = Some(c);
        }
        let engine = Engine::new(&config).map_err(|e| LoadError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        Checker::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(PluginHost {
            engine,
            slots: Arc::new(Semaphore::new(slots as usize)),
            max_memory: options.max_memory,
            linker,
            ticker,
            cache,
        })
    }

    /// Compiled-code cache hits and misses so far (`None` without a cache).
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.cache
            .as_ref()
            .map(|c| (c.cache_hits(), c.cache_misses()))
    }

    /// Compiles (or loads from the cache) the component at `path`, checks that it
    /// implements the `checker` world, and prepares it for fast per-call instances.
    /// `name` tags its log lines.
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        limits: PluginLimits,
    ) -> Result<WasmPlugin, LoadError> {
        if limits.max_memory > self.max_memory {
            return Err(LoadError::Limits {
                path: path.to_path_buf(),
                message: format!(
                    "max_memory {} is above the host's pool size {}",
                    limits.max_memory, self.max_memory
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let component = Component::new(&self.engine, &bytes).map_err(|e| LoadError::Compile {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        let world_error = |e: wasmtime::Error| LoadError::World {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(world_error)?;
        let pre = CheckerPre::new(pre).map_err(world_error)?;
        Ok(WasmPlugin::new(
            name,
            self.engine.clone(),
            pre,
            limits,
            self.ticker.clone(),
            self.slots.clone(),
        ))
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own,
/// until the last plugin using it is dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Arc<Self>, LoadError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("sitewatch-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Arc::new(EpochTicker { stop }))
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
