//! The engine, linker and epoch clock shared by every plugin: built once at start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use super::bindings::{Checker, CheckerPre};
use super::call::{WasmPlugin, BUDGET_UNIT};
use super::error::LoadError;
use super::imports::explain;
use super::inspect::{inspect, CallNeeds, InspectError, Inspection, MIN_TABLE_ELEMENTS};
use super::state::CallState;
use crate::plugin_limits::PluginLimits;

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
    /// What the most demanding plugin to be loaded takes per call (see
    /// [`PluginFile::needs`]); each of the `concurrent_calls` slots holds that much.
    pub per_call: CallNeeds,
    /// Bytes of linear memory all calls running at once may be allowed together
    /// (the sum of their plugins' `max_memory`); a call waits until its share is
    /// free. `None`: no budget beyond the slots.
    pub memory_total: Option<u64>,
}

/// Per-call sizing when the components are not known up front: enough for
/// components built from Rust (about 3 core instances each).
pub const DEFAULT_PER_CALL: CallNeeds = CallNeeds {
    core_instances: 8,
    memories: 2,
    tables: 8,
    memories_per_module: 1,
    tables_per_module: 1,
    table_elements: 0,
    initial_memory: 0,
};

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            cache_dir: None,
            concurrent_calls: 64,
            max_memory: super::DEFAULT_MAX_MEMORY,
            per_call: DEFAULT_PER_CALL,
            memory_total: None,
        }
    }
}

impl HostOptions {
    /// Options whose pool holds a call of any of `files`.
    pub fn sized_for<'a>(mut self, files: impl IntoIterator<Item = &'a PluginFile>) -> Self {
        self.per_call = files
            .into_iter()
            .fold(CallNeeds::default(), |acc, f| acc.max(f.needs()));
        self
    }
}

/// A component file read and inspected, not yet compiled.
#[derive(Debug, Clone)]
pub struct PluginFile {
    path: PathBuf,
    bytes: Vec<u8>,
    inspection: Inspection,
}

impl PluginFile {
    /// Reads `path` and what it asks of the host; a core module or a file that is
    /// not WebAssembly is refused here, naming the file.
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        if path.is_dir() {
            return Err(LoadError::Directory {
                path: path.to_path_buf(),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let inspection = inspect(&bytes).map_err(|e| match e {
            InspectError::CoreModule => LoadError::CoreModule {
                path: path.to_path_buf(),
            },
            other => LoadError::Compile {
                path: path.to_path_buf(),
                message: other.to_string(),
            },
        })?;
        Ok(PluginFile {
            path: path.to_path_buf(),
            bytes,
            inspection,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the component file in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// What one call of this component takes from the instance pool.
    pub fn needs(&self) -> CallNeeds {
        self.inspection.needs
    }

    /// The component's top-level imports.
    pub fn imports(&self) -> &[String] {
        &self.inspection.imports
    }
}

/// Compiles and links plugin components.
pub struct PluginHost {
    engine: Engine,
    max_memory: usize,
    memory_total: Option<u64>,
    per_call: CallNeeds,
    linker: Linker<CallState>,
    shared: Arc<Shared>,
    cache: Option<Cache>,
}

/// What every plugin of a host shares at call time: the pool's slots, the memory
/// budget, the epoch clock and the runtime calls from blocking threads run on.
pub(crate) struct Shared {
    pub(crate) slots: Semaphore,
    /// The memory budget in [`BUDGET_UNIT`]s, when there is one.
    pub(crate) memory: Option<Semaphore>,
    pub(crate) runtime: CallRuntime,
    _ticker: EpochTicker,
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
        let need = options.per_call;
        let mut config = Config::new();
        // Instances, memories and fiber stacks come from pre-reserved pools and are
        // reset, not unmapped, after each call: instantiation costs microseconds.
        // Each of the `slots` calls that may run at once gets what the most
        // demanding component needs, so no call fails for want of a pool entry.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(need.core_instances.max(1)))
            .max_core_instances_per_component(need.core_instances.max(1))
            .total_memories(slots.saturating_mul(need.memories.max(1)))
            .max_memories_per_component(need.memories.max(1))
            .max_memories_per_module(need.memories_per_module.max(1))
            .total_tables(slots.saturating_mul(need.tables.max(1)))
            .max_tables_per_component(need.tables.max(1))
            .max_tables_per_module(need.tables_per_module.max(1))
            .table_elements(
                usize::try_from(need.table_elements.max(MIN_TABLE_ELEMENTS)).unwrap_or(usize::MAX),
            )
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
        let memory = options.memory_total.map(|total| {
            let units = usize::try_from(total / BUDGET_UNIT as u64).unwrap_or(usize::MAX);
            Semaphore::new(units.min(Semaphore::MAX_PERMITS))
        });
        let shared = Shared {
            slots: Semaphore::new(slots as usize),
            memory,
            runtime: CallRuntime::start()?,
            _ticker: EpochTicker::start(engine.clone())?,
        };
        Ok(PluginHost {
            engine,
            max_memory: options.max_memory,
            memory_total: options.memory_total,
            per_call: need,
            linker,
            shared: Arc::new(shared),
            cache,
        })
    }

    /// Compiled-code cache hits and misses so far (`None` without a cache).
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.cache
            .as_ref()
            .map(|c| (c.cache_hits(), c.cache_misses()))
    }

    /// Reads and loads the component at `path` (see [`PluginHost::load_file`]).
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        limits: PluginLimits,
    ) -> Result<WasmPlugin, LoadError> {
        self.load_file(name, &PluginFile::read(path)?, limits)
    }

    /// Compiles (or loads from the cache) `file`, checks that it implements the
    /// `checker` world and fits the pool and `limits`, and prepares it for fast
    /// per-call instances. `name` tags its log lines.
    pub fn load_file(
        &self,
        name: &str,
        file: &PluginFile,
        limits: PluginLimits,
    ) -> Result<WasmPlugin, LoadError> {
        let path = file.path();
        if limits.max_memory > self.max_memory {
            return Err(LoadError::Limits {
                path: path.to_path_buf(),
                message: format!(
                    "max_memory {} is above the host's pool size {}",
                    limits.max_memory, self.max_memory
                ),
            });
        }
        if let Some(total) = self.memory_total {
            if limits.max_memory as u64 > total {
                return Err(LoadError::Limits {
                    path: path.to_path_buf(),
                    message: format!(
                        "max_memory {} is above the memory budget of all calls together, {total}",
                        limits.max_memory
                    ),
                });
            }
        }
        let needs = file.needs();
        if needs.initial_memory > limits.max_memory as u64 {
            return Err(LoadError::MemoryTooSmall {
                path: path.to_path_buf(),
                needed: needs.initial_memory,
                limit: limits.max_memory as u64,
            });
        }
        if !self.per_call.covers(&needs) {
            return Err(LoadError::Pool {
                path: path.to_path_buf(),
                needs,
                sized: self.per_call,
            });
        }
        let component =
            Component::new(&self.engine, &file.bytes).map_err(|e| LoadError::Compile {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
        let world_error = |e: wasmtime::Error| LoadError::World {
            path: path.to_path_buf(),
            message: match explain(file.imports()) {
                Some(explained) => format!("{explained} ({e:#})"),
                None => format!("{e:#}"),
            },
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
            self.shared.clone(),
        ))
    }
}

/// A small runtime of the host's own for calls made from blocking threads
/// ([`WasmPlugin`]'s `ResponsePlugin::check`): its timer (deadlines, a guest's WASI
/// sleep) lives as long as the plugins, not as long as the caller's runtime.
pub(crate) struct CallRuntime(Option<tokio::runtime::Runtime>);

impl CallRuntime {
    fn start() -> Result<Self, LoadError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sitewatch-plugin-rt")
            .enable_all()
            .build()
            .map(|rt| CallRuntime(Some(rt)))
            .map_err(|e| LoadError::Engine(format!("cannot start the plugin runtime: {e}")))
    }

    /// Runs `future` to completion on the calling (blocking) thread; `None` only
    /// while the runtime is being dropped.
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> Option<F::Output> {
        self.0.as_ref().map(|rt| rt.block_on(future))
    }
}

impl Drop for CallRuntime {
    fn drop(&mut self) {
        // The last plugin may be dropped on an async worker (a reload): shutting
        // down in the background never blocks there.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own,
/// until the last plugin using it is dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self, LoadError> {
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
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
