//! The engine, linker and epoch clock shared by every plugin: built once at start.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

use super::bindings::{Checker, CheckerPre};
use super::call::{PluginLimits, WasmPlugin};
use super::error::LoadError;
use super::state::CallState;

/// How often the epoch advances: the granularity of plugin deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Compiles and links plugin components.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<CallState>,
    ticker: Arc<EpochTicker>,
    cache: Option<Cache>,
}

impl PluginHost {
    /// A host whose compiled code is cached under `cache_dir` (absolute) when given,
    /// so restarts load plugins without recompiling them.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self, LoadError> {
        let mut config = Config::new();
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
