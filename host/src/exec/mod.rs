//! Running commands for plugins that hold the `exec` capability (the Bash tool, validation
//! policies): `bash -c` in the user's workspace, confined by the kernel.
//!
//! A command sees only its own workspace: what it may read ([`readable`]), write, see of
//! other processes ([`namespaces`]), which privileges it has ([`privileges`]), whether it
//! reaches the credential endpoints ([`endpoints`]) and the network, and what it inherits
//! of the host's environment ([`environment`]).
//!
//! - [`environment`]: the command's environment, from an allow-list (no host secrets).
//! - [`scratch`]: `<workspace>/.agent-host/`, the command's `HOME` and `TMPDIR`.
//! - [`readable`]: the trees a command may read (Landlock can only allow).
//! - [`namespaces`]: a PID and mount namespace with the command's own `/proc`; an empty
//!   network namespace when the network is off.
//! - [`privileges`]: capabilities dropped, no user namespaces (seccomp).
//! - [`endpoints`]: a BPF filter keeping commands off the credential endpoints.
//! - [`confine`]: what the child sets up before `exec`, in order.
//! - [`cgroup`]: a pids cgroup per command where available (process limit, and every
//!   process found and killed at the end).
//! - [`spawn`]: starting the shell without copying the host's memory (`CLONE_VM`).
//! - [`supervise`]: timeout, cancellation, output cap, kill of the process group.
//! - [`probe`]: which of these the machine offers, tried once when the [`CommandRunner`]
//!   is made, and the promises that follow ([`Confinement::promises`]). Commands are
//!   refused while a required promise does not hold, unless `exec_allow_unconfined`.

mod cgroup;
mod confine;
mod endpoints;
mod environment;
mod namespaces;
mod privileges;
mod probe;
mod readable;
pub mod scratch;
mod spawn;
mod supervise;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use confine::{ChildSetup, FileRules, Mechanisms, ResourceLimits};
use namespaces::Namespaces;
pub use probe::{Confinement, Promise};
use readable::ReadableTrees;
use scratch::Scratch;

/// The longest any command may run.
pub const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// The operator's settings for commands (`exec_*` keys of the configuration).
#[derive(Debug, Clone)]
pub struct ExecSettings {
    /// Whether commands may use the network (git and package managers need it). Off is
    /// enforced with a network namespace; a host that cannot make one refuses commands.
    pub network: bool,
    /// Host environment variables passed to commands (beside PATH, HOME, LANG, TERM).
    pub env: Vec<String>,
    /// Directories commands may write to besides the workspace (e.g. a shared cache).
    pub writable_paths: Vec<PathBuf>,
    /// Directories commands may read (and execute) besides the workspace and the system
    /// trees (e.g. a toolchain under `/root/.rustup`).
    pub readable_paths: Vec<PathBuf>,
    /// Run commands even when a required confinement mechanism is missing (the start log
    /// and `doctor` say which). Off: such a host refuses commands.
    pub allow_unconfined: bool,
    /// Processes (and threads) one command may have at once.
    pub max_processes: u64,
    /// Largest file a command may write, in MiB.
    pub max_file_size_mb: u64,
    /// CPU seconds one command may use.
    pub cpu_secs: u64,
    /// Combined stdout and stderr kept per command, in KiB; the rest is dropped.
    pub max_output_kb: u64,
}

impl Default for ExecSettings {
    fn default() -> Self {
        Self {
            network: true,
            env: Vec::new(),
            writable_paths: Vec::new(),
            readable_paths: Vec::new(),
            allow_unconfined: false,
            max_processes: 512,
            max_file_size_mb: 1024,
            cpu_secs: 900,
            max_output_kb: 4096,
        }
    }
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct CommandRequest<'a> {
    /// Run as `bash -c <command_line>`.
    pub command_line: &'a str,
    /// The user's workspace (absolute, canonical).
    pub workspace: &'a Path,
    /// The working directory; must be inside the workspace.
    pub cwd: &'a Path,
    /// Wall-clock limit (capped at [`MAX_COMMAND_TIMEOUT`]).
    pub timeout: Duration,
    /// Stops the command when set.
    pub cancel: Option<&'a AtomicBool>,
}

/// What a command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Standard output (cut at the cap).
    pub stdout: Vec<u8>,
    /// Standard error (cut at the cap).
    pub stderr: Vec<u8>,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
    /// It was cancelled and killed.
    pub cancelled: bool,
    /// Output beyond the cap was dropped.
    pub truncated: bool,
}

/// Why a command could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The working directory is not inside the workspace.
    #[error("the working directory {cwd} is not inside the workspace {workspace}")]
    OutsideWorkspace { cwd: String, workspace: String },
    /// The host could not start the command.
    #[error("the command could not be started: {0}")]
    Start(String),
    /// A required confinement mechanism is missing and the operator did not allow
    /// running without it.
    #[error(
        "commands are refused on this host: {0}. Run `agent-host doctor` for the whole \
         report; set exec_allow_unconfined = true to run commands without it"
    )]
    Unconfined(String),
}

/// Runs commands with the operator's [`ExecSettings`] and the machine's [`Confinement`].
#[derive(Debug)]
pub struct CommandRunner {
    settings: ExecSettings,
    confinement: Confinement,
    /// The required promises that do not hold, as one line (`None`: all hold).
    missing: Option<String>,
}

/// Numbers commands across every runner of the process (names their cgroups).
static COMMAND_COUNTER: AtomicU64 = AtomicU64::new(0);

impl CommandRunner {
    /// Probes the machine's confinement and keeps `settings`.
    pub fn new(settings: ExecSettings) -> Self {
        let confinement = Confinement::probe(&settings);
        Self::with_confinement(settings, confinement)
    }

    /// A runner that uses `confinement` as found (or as a test changed it).
    pub fn with_confinement(settings: ExecSettings, confinement: Confinement) -> Self {
        let missing = confinement.missing(&settings);
        let missing = (!missing.is_empty()).then(|| {
            missing
                .iter()
                .map(|promise| format!("{}: {}", promise.name, promise.detail))
                .collect::<Vec<_>>()
                .join("; ")
        });
        Self {
            settings,
            confinement,
            missing,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &ExecSettings {
        &self.settings
    }

    /// What is enforced on commands here.
    pub fn confinement(&self) -> &Confinement {
        &self.confinement
    }

    /// Every promise about commands and whether it holds here (for the start log and
    /// `agent-host doctor`).
    pub fn promises(&self) -> Vec<Promise> {
        self.confinement.promises(&self.settings)
    }

    /// Whether commands run at all: every required promise holds, or the operator
    /// allowed running without.
    pub fn refusal(&self) -> Option<&str> {
        self.missing
            .as_deref()
            .filter(|_| !self.settings.allow_unconfined)
    }

    /// Runs one command to completion, timeout or cancellation.
    pub fn run(&self, request: &CommandRequest<'_>) -> Result<CommandOutput, ExecError> {
        if let Some(missing) = self.refusal() {
            return Err(ExecError::Unconfined(missing.to_string()));
        }
        let cwd = check_cwd(request.workspace, request.cwd)?;
        let scratch = Scratch::for_workspace(request.workspace);
        scratch.ensure().map_err(|error| {
            ExecError::Start(format!(
                "cannot prepare the workspace's scratch area: {error}"
            ))
        })?;
        let settings = &self.settings;
        let cgroup = match &self.confinement.cgroups {
            Ok(cgroups) => {
                let name = format!(
                    "{}-{}",
                    std::process::id(),
                    COMMAND_COUNTER.fetch_add(1, Ordering::Relaxed)
                );
                Some(
                    cgroups
                        .create(&name, settings.max_processes)
                        .map_err(|error| {
                            ExecError::Start(format!("cannot make the command's cgroup: {error}"))
                        })?,
                )
            }
            Err(_) => None,
        };
        let mut writable = vec![request.workspace.to_path_buf()];
        writable.extend(settings.writable_paths.iter().cloned());
        let limits = ResourceLimits {
            processes: self.process_limit(),
            file_size: settings.max_file_size_mb.saturating_mul(1024 * 1024),
            cpu_seconds: settings.cpu_secs.max(1),
        };
        let c = &self.confinement;
        let mut joins: Vec<CString> = cgroup.iter().map(|c| c.procs_path().clone()).collect();
        if let Some(Ok(guard)) = &c.endpoints {
            joins.extend(guard.join.clone());
        }
        let mechanisms = Mechanisms {
            // The operator's "network off" is kept even when unconfined is allowed: a
            // host that cannot make the namespace fails the command.
            namespaces: Namespaces::new(c.namespaces.is_ok(), !settings.network),
            landlock: c.landlock.is_ok(),
            seccomp: c.seccomp.as_ref().ok().cloned(),
            drop_capabilities: c.capabilities.is_ok(),
        };
        let files = FileRules {
            abi: c.landlock_abi,
            writable: &writable,
            readable: &c.readable,
            proc_readable: true,
        };
        let setup = ChildSetup::prepare(mechanisms, joins, Some(limits), &files)
            .map_err(|error| ExecError::Start(error.to_string()))?;
        let env = environment::command_environment(&scratch, &settings.env, &|name| {
            std::env::var_os(name)
        });
        let c_string = |bytes: &[u8], what: &str| {
            CString::new(bytes).map_err(|_| {
                ExecError::Start(format!(
                    "the {what} contains a NUL byte, which a command cannot take"
                ))
            })
        };
        let program = c_string(self.confinement.bash.as_os_str().as_bytes(), "shell path")?;
        let args = [
            c_string(b"-c", "argument")?,
            c_string(request.command_line.as_bytes(), "command line")?,
        ];
        let env = env
            .iter()
            .map(|(key, value)| {
                let mut entry = key.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                c_string(&entry, "environment")
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = c_string(cwd.as_os_str().as_bytes(), "working directory")?;
        let started = Instant::now();
        let child = spawn::spawn(&program, &args, &env, &cwd, &setup).map_err(|error| {
            ExecError::Start(if !settings.network {
                format!(
                    "{error} (the network is turned off with exec_network = false; this host may \
                     not be allowed to make network namespaces)"
                )
            } else {
                error.to_string()
            })
        })?;
        drop(setup);
        let pid = child.pid;
        let deadline = started + request.timeout.min(MAX_COMMAND_TIMEOUT);
        let max_output =
            usize::try_from(settings.max_output_kb.saturating_mul(1024)).unwrap_or(usize::MAX);
        let finished =
            supervise::supervise(child, deadline, request.cancel, max_output, cgroup.as_ref());
        let finished = match finished {
            Ok(finished) => finished,
            Err(error) => {
                // SAFETY: the shell is not reaped yet, so its group id is still its own.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
                spawn::reap(pid);
                return Err(ExecError::Start(format!(
                    "lost track of the command: {error}"
                )));
            }
        };
        drop(cgroup);
        Ok(finished)
    }

    /// `RLIMIT_NPROC` counts every process of the user, the host's own threads included,
    /// so the command gets its allowance on top of what the host already has.
    fn process_limit(&self) -> u64 {
        let host_threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        host_threads + self.settings.max_processes
    }
}

/// The canonical working directory, if it is inside the workspace.
fn check_cwd(workspace: &Path, cwd: &Path) -> Result<PathBuf, ExecError> {
    let outside = || ExecError::OutsideWorkspace {
        cwd: cwd.display().to_string(),
        workspace: workspace.display().to_string(),
    };
    if !cwd.is_absolute() {
        return Err(outside());
    }
    let canonical = cwd.canonicalize().map_err(|error| {
        ExecError::Start(format!(
            "the working directory {} cannot be used: {error}",
            cwd.display()
        ))
    })?;
    let workspace = workspace.canonicalize().map_err(|error| {
        ExecError::Start(format!(
            "the workspace {} cannot be used: {error}",
            workspace.display()
        ))
    })?;
    if !canonical.starts_with(&workspace) {
        return Err(outside());
    }
    Ok(canonical)
}

/// Refuses to go on when a place the host keeps private (`places`: the key that sets it
/// and the path) could be read by commands run with `settings`: Landlock can only allow
/// trees, never carve a private place out of one, so the place has to move.
pub fn check_private(settings: &ExecSettings, places: &[(&str, &Path)]) -> Result<(), String> {
    let mut extra = settings.readable_paths.clone();
    extra.extend(settings.writable_paths.iter().cloned());
    let trees = ReadableTrees::discover(&extra)?;
    for (key, path) in places {
        if let Some(tree) = trees.exposing(path) {
            let widened = extra.iter().any(|p| p == tree);
            return Err(format!(
                "{key} ({}) lies beneath {}, which commands may read{}: move {key} elsewhere \
                 (for example under /var/lib or the host user's home)",
                path.display(),
                tree.display(),
                if widened {
                    " (it is in exec_readable_paths or exec_writable_paths)"
                } else {
                    " (a system tree)"
                }
            ));
        }
    }
    Ok(())
}
