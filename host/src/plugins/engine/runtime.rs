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

use super::ahead::AheadBudget;
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
    ahead: AheadBudget,
}

impl PluginRuntime {
    /// Builds the engine. `cache_dir` is where precompiled components are kept (keyed by
    /// content hash and engine); `None` compiles on every load.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::for_cpu(cache_dir, &CpuFeatures::Native)
    }

    /// Builds the engine to compile for `features` (see [`CpuFeatures`]).
    pub fn for_cpu(cache_dir: Option<PathBuf>, features: &CpuFeatures) -> anyhow::Result<Self> {
        let mut config = engine_config();
        features.apply(&mut config)?;
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("cannot configure the wasm engine for plugin_cpu_features = {features}")
            })?;
        let cache = cache_dir.map(|dir| CompiledCache::new(dir, &engine));
        let ticker = Ticker::start(engine.clone());
        Ok(Self {
            engine,
            cache,
            ticker,
            exec_settings: ExecSettings::default(),
            commands: OnceLock::new(),
            ahead: AheadBudget::default(),
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

    /// The cap on instances made ahead of their calls (see [`super::ahead`]).
    pub(crate) fn ahead(&self) -> &AheadBudget {
        &self.ahead
    }

    /// How many instances are held ahead of their calls now.
    pub fn held_ahead(&self) -> usize {
        self.ahead.held()
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

/// The CPU features plugin code is compiled for. They are part of a precompiled
/// artifact's identity: an artifact made for other features is not loaded, and its
/// component is compiled again (seconds, at start). An image whose artifacts are made on
/// a build machine pins them, so the machine it runs on finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuFeatures {
    /// This machine's own, detected at start (the fastest code; artifacts made here fit
    /// only machines with the same features).
    Native,
    /// The architecture's baseline plus these Cranelift ISA flags (`has_lse`,
    /// `has_avx2`, ...). Loading code for a flag this machine lacks is refused with an
    /// error naming it, never run.
    Pinned(Vec<String>),
}

impl std::str::FromStr for CpuFeatures {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "native" => Ok(Self::Native),
            "baseline" | "" => Ok(Self::Pinned(Vec::new())),
            list => list
                .split(',')
                .map(str::trim)
                .map(|flag| {
                    let valid = !flag.is_empty()
                        && flag
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    if valid {
                        Ok(flag.to_string())
                    } else {
                        Err(format!(
                            "{flag:?} is not a Cranelift ISA flag: use `native`, `baseline`, \
                             or flags such as `has_lse` or `has_avx2,has_bmi2`"
                        ))
                    }
                })
                .collect::<Result<_, _>>()
                .map(Self::Pinned),
        }
    }
}

impl std::fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Native => f.write_str("native"),
            Self::Pinned(flags) if flags.is_empty() => f.write_str("baseline"),
            Self::Pinned(flags) => f.write_str(&flags.join(",")),
        }
    }
}

impl CpuFeatures {
    fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        let Self::Pinned(flags) = self else {
            return Ok(());
        };
        // Naming the target (this build's own) turns off the detection of this
        // machine's features; then only the flags asked for are on.
        config
            .target(&target_lexicon::Triple::host().to_string())
            .map_err(anyhow::Error::from)?;
        for flag in flags {
            // SAFETY: wasmtime checks every ISA flag against the machine before it loads
            // code compiled with it (`Engine::check_compatible_with_native_host`), so a flag
            // this machine lacks is refused at load, never executed.
            unsafe {
                config.cranelift_flag_enable(flag);
            }
        }
        Ok(())
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
