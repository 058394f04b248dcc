//! The one `wasmtime::Engine` of the host, configured for many short plugin calls from
//! many users, and its epoch ticker.
//!
//! - **Pooling allocator**: instance memories and tables come from pre-reserved slots, so
//!   a fresh instance per call costs microseconds, not `mmap`s.
//! - **Epoch interruption**: a background thread advances the engine's epoch every
//!   [`EPOCH_TICK`]; each call's store checks its own deadline (and cancellation) on every
//!   tick, so a looping plugin is stopped within a tick of its deadline.
//! - Calls are synchronous and meant to run on blocking threads (never on the async
//!   executor); see [`super::sandbox`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::cache::{CacheUse, CompiledCache};
use crate::exec::{CommandRunner, ExecSettings};

/// How often the engine's epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest linear memory any plugin may be granted (manifests ask for less).
pub const MAX_PLUGIN_MEMORY: usize = super::permissions::MAX_MEMORY_MB as usize * 1024 * 1024;

/// How many plugin instances can be alive at once across all users (the pool's size).
pub const MAX_CONCURRENT_INSTANCES: u32 = 64;

/// Bytes of each linear memory kept resident between calls (a Rust guest's stack and data).
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;

/// The engine, its compile cache and its epoch ticker, and the command runner that
/// plugins granted `exec` share.
pub struct PluginRuntime {
    engine: Engine,
    cache: Option<CompiledCache>,
    ticker: Ticker,
    exec_settings: ExecSettings,
    commands: OnceLock<Arc<CommandRunner>>,
}

impl PluginRuntime {
    /// Builds the engine. `cache_dir` is where precompiled components are kept (keyed by
    /// content hash and engine); `None` compiles on every load.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let engine = Engine::new(&engine_config())
            .map_err(anyhow::Error::from)
            .context("cannot configure the wasm engine")?;
        let cache = cache_dir.map(|dir| CompiledCache::new(dir, &engine));
        let ticker = Ticker::start(engine.clone());
        Ok(Self {
            engine,
            cache,
            ticker,
            exec_settings: ExecSettings::default(),
            commands: OnceLock::new(),
        })
    }

    /// Uses the operator's `settings` for commands run through `exec`.
    pub fn with_exec_settings(mut self, settings: ExecSettings) -> Self {
        self.exec_settings = settings;
        self
    }

    /// The command runner, made (and the machine's confinement probed and logged) on
    /// first use: when the first plugin granted `exec` loads.
    pub fn command_runner(&self) -> Arc<CommandRunner> {
        self.commands
            .get_or_init(|| {
                let runner = CommandRunner::new(self.exec_settings.clone());
                for promise in runner.promises() {
                    let (name, detail) = (promise.name, &promise.detail);
                    if promise.holds {
                        tracing::info!("command confinement: {name}: {detail}");
                    } else {
                        tracing::warn!("command confinement: {name} NOT enforced: {detail}");
                    }
                }
                if let Some(missing) = runner.refusal() {
                    tracing::error!(
                        "commands are refused on this host ({missing}); set \
                         exec_allow_unconfined = true to run them without it"
                    );
                }
                Arc::new(runner)
            })
            .clone()
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `wasm` (a component binary), or loads its precompiled artifact from the
    /// cache. Reports whether the cache was hit.
    pub fn compile(&self, wasm: &[u8]) -> anyhow::Result<(Component, CacheUse)> {
        match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, wasm),
            None => Ok((Component::new(&self.engine, wasm)?, CacheUse::Disabled)),
        }
    }

    /// Whether the ticker is alive (for diagnostics).
    pub fn ticking(&self) -> bool {
        !self.ticker.stop.load(Ordering::Relaxed)
    }
}

fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
        .total_core_instances(MAX_CONCURRENT_INSTANCES * 4)
        .total_memories(MAX_CONCURRENT_INSTANCES * 2)
        .total_tables(MAX_CONCURRENT_INSTANCES * 4)
        .max_memories_per_component(2)
        .max_memory_size(MAX_PLUGIN_MEMORY)
        // Keep a few warm slots but give memory back to the OS when idle.
        .max_unused_warm_slots(8)
        // Reset the low pages of a reused slot with memset instead of madvise, so the next
        // call does not page-fault its stack and data back in.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 * 1024)
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        // Deep recursion in a plugin traps with a stack overflow instead of
        // exhausting the host thread.
        .max_wasm_stack(1 << 20)
        .parallel_compilation(true);
    config
}

/// The thread that advances the engine's epoch until the runtime is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
