//! Running commands for plugins that hold the `exec` capability (the Bash tool, validation
//! policies): `bash -c` in the user's workspace, confined by the kernel where it can be.
//!
//! - [`environment`]: the command's environment, from an allow-list (no host secrets).
//! - [`scratch`]: `<workspace>/.agent-host/`, the command's `HOME` and `TMPDIR`.
//! - [`confine`]: what the child sets up before `exec`: resource limits, a network
//!   namespace when the network is off, Landlock (writes only inside the workspace).
//! - [`cgroup`]: a pids cgroup per command where available (process limit, and every
//!   process found and killed at the end).
//! - [`spawn`]: starting the shell without copying the host's memory (`CLONE_VM`).
//! - [`supervise`]: timeout, cancellation, output cap, kill of the process group.
//!
//! Which of these the machine offers is probed once, when the [`CommandRunner`] is made;
//! [`CommandRunner::confinement`] describes it for the start log line.

mod cgroup;
mod confine;
mod environment;
pub mod scratch;
mod spawn;
mod supervise;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cgroup::PidsCgroups;
use confine::{ChildSetup, ResourceLimits};
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
}

/// What the machine lets the host enforce on commands, found once at start.
#[derive(Debug)]
pub struct Confinement {
    /// The Landlock ABI in use (0: none; writes outside the workspace are not blocked).
    pub landlock_abi: i32,
    /// The pids cgroups, or why there are none.
    pub cgroups: Result<PidsCgroups, String>,
    /// Whether the host runs as root (for whom `RLIMIT_NPROC` does not count).
    pub root: bool,
    /// The shell.
    pub bash: PathBuf,
}

/// Runs commands with the operator's [`ExecSettings`] and the machine's [`Confinement`].
#[derive(Debug)]
pub struct CommandRunner {
    settings: ExecSettings,
    confinement: Confinement,
}

/// Numbers commands across every runner of the process (names their cgroups).
static COMMAND_COUNTER: AtomicU64 = AtomicU64::new(0);

impl CommandRunner {
    /// Probes the machine's confinement and keeps `settings`.
    pub fn new(settings: ExecSettings) -> Self {
        let confinement = Confinement {
            landlock_abi: confine::landlock_abi(),
            cgroups: PidsCgroups::probe(),
            // SAFETY: geteuid cannot fail.
            root: unsafe { libc::geteuid() } == 0,
            bash: find_bash(),
        };
        Self {
            settings,
            confinement,
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

    /// One line per kind of confinement, saying whether it is active (for the start log).
    pub fn describe(&self) -> Vec<(bool, String)> {
        let c = &self.confinement;
        let s = &self.settings;
        let mut lines = vec![
            if c.landlock_abi > 0 {
                (
                    true,
                    format!(
                        "Landlock ABI {}: commands can write only inside the workspace{}",
                        c.landlock_abi,
                        if s.writable_paths.is_empty() {
                            String::new()
                        } else {
                            format!(" and {:?}", s.writable_paths)
                        }
                    ),
                )
            } else {
                (
                    false,
                    "Landlock is not available in this kernel: writes outside the workspace \
                     are NOT blocked for commands (only the environment, limits and timeout apply)"
                        .to_string(),
                )
            },
            match &c.cgroups {
                Ok(cgroups) => (
                    true,
                    format!(
                        "pids cgroup under {}: at most {} processes per command, all killed when it ends",
                        cgroups.parent().display(),
                        s.max_processes
                    ),
                ),
                Err(why) if c.root => (
                    false,
                    format!(
                        "no pids cgroup ({why}) and the host runs as root, so RLIMIT_NPROC does not \
                         apply: a fork bomb is NOT contained; processes that leave the command's \
                         process group are not killed"
                    ),
                ),
                Err(why) => (
                    false,
                    format!(
                        "no pids cgroup ({why}): processes limited by RLIMIT_NPROC only; processes \
                         that leave the command's process group are not killed"
                    ),
                ),
            },
        ];
        lines.push(if s.network {
            (true, "network: on (exec_network = true)".to_string())
        } else {
            (
                true,
                "network: off, enforced with a network namespace per command".to_string(),
            )
        });
        let secret = environment::secret_looking(&s.env);
        if !secret.is_empty() {
            lines.push((
                false,
                format!("exec_env passes variables that look like secrets to commands: {secret:?}"),
            ));
        }
        lines
    }

    /// Runs one command to completion, timeout or cancellation.
    pub fn run(&self, request: &CommandRequest<'_>) -> Result<CommandOutput, ExecError> {
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
        let setup = ChildSetup::prepare(
            cgroup.as_ref().map(|c| c.procs_path().clone()),
            limits,
            !settings.network,
            self.confinement.landlock_abi,
            &writable,
        )
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

/// `bash` from the host's PATH, else `/bin/bash`.
fn find_bash() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("bash"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("/bin/bash"))
}
