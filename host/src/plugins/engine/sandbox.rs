//! One plugin call in its sandbox: a fresh store and instance, a WASI context that grants
//! exactly what the plugin was granted, and the per-call limits.
//!
//! The WASI context starts from nothing (no environment, arguments, stdin, network or
//! host streams) and gets: the user's workspace preopened at its own absolute path,
//! read-only or read-write by grant; stdout/stderr captured into bounded buffers;
//! on-thread blocking filesystem calls (the call already runs on a blocking thread).
//! Limits: linear memory and tables through a [`wasmtime::ResourceLimiter`], wall-clock
//! time and cancellation through the engine's epoch, result size checked on return.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::ahead::Ready;
use super::output::CapturedOutput;
use super::permissions::{Capabilities, Limits, WorkspaceAccess};
use super::runtime::PluginRuntime;
use super::session_state::SessionState;
use crate::exec::CommandRunner;

/// Table elements a plugin instance may grow its tables to.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Resources (files, streams, ...) a plugin may hold open at once.
const MAX_RESOURCES: usize = 10_000;

/// The user, workspace and session a plugin call works for.
#[derive(Clone)]
pub struct CallContext {
    workspace: PathBuf,
    session: Arc<SessionState>,
    cancel: Option<Arc<AtomicBool>>,
    user: Option<Arc<str>>,
}

impl CallContext {
    /// A call in `workspace` (an absolute, existing directory; canonicalise it first so the
    /// paths the plugin prints are real paths) for the session whose state is `session`.
    pub fn new(workspace: PathBuf, session: Arc<SessionState>) -> Self {
        Self {
            workspace,
            session,
            cancel: None,
            user: None,
        }
    }

    /// Calls made with this context work for `user` (as recorded in the audit log).
    pub fn with_user(mut self, user: &str) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Whom the calls work for, when known.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Stops the call (at the next epoch tick) once `flag` is set.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// The workspace directory.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The session's plugin state.
    pub fn session(&self) -> &Arc<SessionState> {
        &self.session
    }
}

/// Everything the host knows about one loaded plugin, whatever its world.
#[derive(Debug)]
pub struct PluginIdentity {
    /// The plugin's name (from its manifest).
    pub name: String,
    /// The component file it was loaded from.
    pub file: PathBuf,
    /// The capabilities it was granted (exactly what it asked for).
    pub capabilities: Capabilities,
    /// Its per-call limits.
    pub limits: Limits,
    /// Its configuration as a JSON object text.
    pub config: String,
}

/// Why a call did not produce a result: the plugin broke or hit a limit.
#[derive(Debug, thiserror::Error)]
pub enum CallFailure {
    /// The call ran past its deadline.
    #[error(
        "plugin {plugin} ran out of time: it did not finish within its limit of {limit:?} and was stopped"
    )]
    TimeLimit { plugin: String, limit: Duration },
    /// The plugin needed more memory than its limit.
    #[error("plugin {plugin} hit its memory limit of {limit_mb} MiB and was stopped")]
    MemoryLimit { plugin: String, limit_mb: u64 },
    /// The result was bigger than allowed.
    #[error("plugin {plugin} returned a result of {size} bytes, over its limit of {limit} bytes")]
    ResultTooLarge {
        plugin: String,
        size: usize,
        limit: usize,
    },
    /// The call was cancelled from outside.
    #[error("the call to plugin {plugin} was cancelled")]
    Cancelled { plugin: String },
    /// The plugin trapped (a panic, an `unreachable`, a stack overflow, ...).
    #[error("plugin {plugin} crashed: {detail}")]
    Crashed { plugin: String, detail: String },
    /// The host could not set the call up (e.g. the workspace cannot be opened).
    #[error("plugin {plugin} could not be started: {detail}")]
    Setup { plugin: String, detail: String },
}

/// What the epoch callback found: kept in the store so the trap can be explained.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Deadline,
    Cancelled,
}

/// The data of one call's store.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    pub(crate) identity: Arc<PluginIdentity>,
    pub(crate) workspace_root: String,
    pub(crate) session: Option<Arc<SessionState>>,
    /// The command runner, when the plugin was granted `exec` and the call has a workspace.
    pub(crate) commands: Option<Arc<CommandRunner>>,
    /// The workspace directory of the call, if any.
    pub(crate) workspace: Option<PathBuf>,
    pub(crate) log_lines: usize,
    /// stdout and stderr, interleaved as written.
    output: CapturedOutput,
    pub(crate) deadline: Instant,
    pub(crate) cancel: Option<Arc<AtomicBool>>,
    stopped: Option<Stop>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and tables; remembers when it said no, to explain the trap.
struct MemoryLimiter {
    max_memory: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Runs calls of one plugin, each in a fresh store.
pub(crate) struct Sandbox {
    pub(crate) runtime: Arc<PluginRuntime>,
    pub(crate) identity: Arc<PluginIdentity>,
}

impl Sandbox {
    /// Runs `body` in a fresh store for `context` (`None`: no workspace, no session — used
    /// to ask a plugin for its tool list at load) and maps traps and limits to
    /// [`CallFailure`]. What the plugin printed goes to the debug log.
    pub(crate) fn run<R>(
        &self,
        context: Option<&CallContext>,
        body: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        self.call(context, None, |_| Ok(()), |store, ()| body(store))
    }

    /// Runs `call` on an instance for `context`: `ready`, when one was made ahead for this
    /// call (see [`Self::ready`]), else one `instantiate` makes now in a fresh store. The
    /// deadline starts here either way.
    pub(crate) fn call<I, R>(
        &self,
        context: Option<&CallContext>,
        ready: Option<Ready<I>>,
        instantiate: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<I>,
        call: impl FnOnce(&mut Store<CallState>, I) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        let (mut store, instance) = match ready {
            Some(Ready {
                mut store,
                instance,
                ..
            }) => {
                store.data_mut().deadline = self.deadline_from_now();
                (store, Ok(instance))
            }
            None => {
                let mut store = self.store(context)?;
                let instance = instantiate(&mut store);
                (store, instance)
            }
        };
        let result = instance.and_then(|instance| call(&mut store, instance));
        let output = store.data().output.text();
        if !output.is_empty() {
            tracing::debug!(plugin = %self.identity.name, "plugin output: {}", output.trim_end());
        }
        result.map_err(|error| self.explain(&store, error))
    }

    /// An instance made now, by `instantiate` in a fresh store for `context`, for one call
    /// to come (see [`super::ahead`]). `None` when [`super::ahead::MAX_HELD_AHEAD`] are
    /// held already or it cannot be made: the call then makes its own, and reports what
    /// went wrong.
    pub(crate) fn ready<I>(
        &self,
        context: &CallContext,
        instantiate: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<I>,
    ) -> Option<Ready<I>> {
        let slot = self.runtime.ahead().take()?;
        let mut store = self.store(Some(context)).ok()?;
        let instance = instantiate(&mut store).ok()?;
        Some(Ready::new(store, instance, slot))
    }

    /// When a call starting now must end: its time limit from now.
    fn deadline_from_now(&self) -> Instant {
        Instant::now() + self.identity.limits.timeout()
    }

    /// Checks a result text against the plugin's result limit.
    pub(crate) fn check_result_size(&self, text: &str) -> Result<(), CallFailure> {
        let limit = self.identity.limits.result_bytes();
        if text.len() > limit {
            return Err(CallFailure::ResultTooLarge {
                plugin: self.identity.name.clone(),
                size: text.len(),
                limit,
            });
        }
        Ok(())
    }

    fn store(&self, context: Option<&CallContext>) -> Result<Store<CallState>, CallFailure> {
        let identity = &self.identity;
        let setup_failed = |detail: String| CallFailure::Setup {
            plugin: identity.name.clone(),
            detail,
        };
        let output = CapturedOutput::default();
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_blocking_current_thread(true)
            .stdout(output.clone())
            .stderr(output.clone());
        let mut workspace_root = String::new();
        if let Some(context) = context {
            let perms = match identity.capabilities.workspace {
                WorkspaceAccess::None => None,
                WorkspaceAccess::ReadOnly => Some(FsPerms::ReadOnly),
                WorkspaceAccess::ReadWrite => Some(FsPerms::ReadWrite),
            };
            if let Some(perms) = perms {
                let path = context.workspace();
                let guest_path = path
                    .to_str()
                    .filter(|_| path.is_absolute())
                    .ok_or_else(|| {
                        setup_failed(format!(
                            "the workspace path {} must be absolute and valid UTF-8",
                            path.display()
                        ))
                    })?;
                wasi.preopened_dir(path, guest_path, perms)
                    .map_err(|error| {
                        setup_failed(format!(
                            "cannot open the workspace {}: {error}",
                            path.display()
                        ))
                    })?;
                workspace_root = guest_path.to_string();
            }
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let state = CallState {
            wasi: wasi.build(),
            table,
            limiter: MemoryLimiter {
                max_memory: identity.limits.memory_bytes(),
                refused: false,
            },
            identity: identity.clone(),
            workspace_root,
            session: context.map(|c| c.session.clone()),
            commands: (identity.capabilities.exec && context.is_some())
                .then(|| self.runtime.command_runner()),
            workspace: context.map(|c| c.workspace.clone()),
            log_lines: 0,
            output,
            deadline: self.deadline_from_now(),
            cancel: context.and_then(|c| c.cancel.clone()),
            stopped: None,
        };
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut context| {
            let state = context.data_mut();
            let stop = if state
                .cancel
                .as_ref()
                .is_some_and(|flag| flag.load(Ordering::Relaxed))
            {
                Some(Stop::Cancelled)
            } else if Instant::now() >= state.deadline {
                Some(Stop::Deadline)
            } else {
                None
            };
            match stop {
                Some(stop) => {
                    state.stopped = Some(stop);
                    Ok(UpdateDeadline::Interrupt)
                }
                None => Ok(UpdateDeadline::Continue(1)),
            }
        });
        Ok(store)
    }

    fn explain(&self, store: &Store<CallState>, error: wasmtime::Error) -> CallFailure {
        let state = store.data();
        let plugin = self.identity.name.clone();
        match state.stopped {
            Some(Stop::Deadline) => {
                return CallFailure::TimeLimit {
                    plugin,
                    limit: self.identity.limits.timeout(),
                };
            }
            Some(Stop::Cancelled) => return CallFailure::Cancelled { plugin },
            None => {}
        }
        if state.limiter.refused {
            return CallFailure::MemoryLimit {
                plugin,
                limit_mb: self.identity.limits.memory_mb,
            };
        }
        let mut detail = format!("{error:#}");
        let output = state.output.text();
        let output = output.trim();
        if !output.is_empty() {
            let tail: String = last_chars(output, 2000);
            detail.push_str("\nplugin output:\n");
            detail.push_str(&tail);
        }
        CallFailure::Crashed { plugin, detail }
    }
}

fn last_chars(text: &str, n: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(n)).collect()
}
