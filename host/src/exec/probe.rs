//! What this machine lets the host enforce on commands, found once by trying each
//! mechanism on a trivial command, and the promises that follow from it.
//!
//! Each mechanism is tried alone (`bash -c` with a check) so a missing one is named with
//! the kernel's reason. The [`Confinement`] then says, promise by promise, what holds
//! ([`Confinement::promises`]): the start log prints it, `agent-host doctor` prints it,
//! and [`super::CommandRunner::run`] refuses commands while a required promise does not
//! hold, unless the operator set `exec_allow_unconfined = true`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;
use std::sync::Arc;

use super::ExecSettings;
use super::cgroup::{CommandsV2Cgroup, PidsCgroups};
use super::confine::{ChildSetup, FileRules, Mechanisms};
use super::endpoints::{BLOCKED_ENDPOINTS, EndpointFilter};
use super::namespaces::Namespaces;
use super::privileges::SeccompFilters;
use super::readable::ReadableTrees;
use super::spawn;

/// The credential-endpoint filter, attached to the cgroup every command is placed in.
#[derive(Debug)]
pub struct EndpointGuard {
    /// Keeps the filter attached while the runner lives.
    _filter: EndpointFilter,
    /// The cgroup the filter is attached to.
    pub dir: PathBuf,
    /// Its `cgroup.procs`, when the command joins it itself.
    pub join: Option<CString>,
}

/// What the machine lets the host enforce on commands, found once at start. Tests may
/// turn a mechanism off (set its field to `Err`) and hand the result to
/// [`super::CommandRunner::with_confinement`].
#[derive(Debug)]
pub struct Confinement {
    /// The Landlock ABI in use (0: none).
    pub landlock_abi: i32,
    /// Landlock accepted the command's rules and the shell still starts under them.
    pub landlock: Result<(), String>,
    /// What commands may read (beside the workspace and `/proc`).
    pub readable: ReadableTrees,
    /// A PID and mount namespace with the command's own `/proc`.
    pub namespaces: Result<(), String>,
    /// An empty network namespace (probed only with `exec_network = false`).
    pub network_namespace: Option<Result<(), String>>,
    /// The seccomp filter refusing user namespaces.
    pub seccomp: Result<Arc<SeccompFilters>, String>,
    /// Dropping every capability.
    pub capabilities: Result<(), String>,
    /// The pids cgroups, or why there are none.
    pub cgroups: Result<PidsCgroups, String>,
    /// The credential-endpoint filter (probed only with the network on).
    pub endpoints: Option<Result<EndpointGuard, String>>,
    /// Whether the host runs as root (for whom `RLIMIT_NPROC` does not count).
    pub root: bool,
    /// The shell.
    pub bash: PathBuf,
}

/// One promise about what a command can do, and whether this host keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promise {
    /// Short name: `reads`, `writes`, `processes`, `privileges`, `credentials`,
    /// `network`, `process limit`, `environment`.
    pub name: &'static str,
    /// It holds here.
    pub holds: bool,
    /// Commands are refused while it does not hold (unless `exec_allow_unconfined`).
    pub required: bool,
    /// What it means, or why it does not hold and what to do.
    pub detail: String,
}

impl Confinement {
    /// Probes every mechanism for commands run with `settings`.
    pub fn probe(settings: &ExecSettings) -> Self {
        let bash = find_bash();
        let landlock_abi = super::confine::landlock_abi();
        let mut extra_readable = settings.readable_paths.clone();
        extra_readable.extend(settings.writable_paths.iter().cloned());
        let (readable, readable_error) = match ReadableTrees::discover(&extra_readable) {
            Ok(trees) => (trees, None),
            Err(error) => (ReadableTrees::default(), Some(error)),
        };
        let cgroups = PidsCgroups::probe();
        let seccomp = SeccompFilters::new().map(Arc::new);
        let mut confinement = Self {
            landlock_abi,
            landlock: Ok(()),
            readable,
            namespaces: Ok(()),
            network_namespace: None,
            seccomp,
            capabilities: Ok(()),
            cgroups,
            endpoints: None,
            // SAFETY: geteuid cannot fail.
            root: unsafe { libc::geteuid() } == 0,
            bash,
        };
        confinement.landlock = match (landlock_abi, readable_error) {
            (0, _) => Err(
                "the kernel has no Landlock (Linux 5.13 or newer with landlock in \
                           its LSM list is needed)"
                    .to_string(),
            ),
            (_, Some(error)) => Err(error),
            _ => confinement.try_start(
                Mechanisms {
                    landlock: true,
                    ..Mechanisms::none()
                },
                None,
                "exit 0",
            ),
        };
        confinement.namespaces = confinement.try_start(
            Mechanisms {
                namespaces: Namespaces::new(true, false),
                ..Mechanisms::none()
            },
            None,
            // The shell is PID 1 of its namespace and /proc shows it so.
            "[ $$ = 1 ] && [ -d /proc/1 ] && [ \"$(readlink /proc/self)\" != \"\" ]",
        );
        if !settings.network {
            confinement.network_namespace = Some(confinement.try_start(
                Mechanisms {
                    namespaces: Namespaces::new(false, true),
                    ..Mechanisms::none()
                },
                None,
                "exit 0",
            ));
        }
        if let Ok(filters) = &confinement.seccomp {
            confinement.seccomp = confinement
                .try_start(
                    Mechanisms {
                        seccomp: Some(filters.clone()),
                        ..Mechanisms::none()
                    },
                    None,
                    "exit 0",
                )
                .map(|()| filters.clone());
        }
        confinement.capabilities = confinement.try_start(
            Mechanisms {
                drop_capabilities: true,
                ..Mechanisms::none()
            },
            None,
            "exit 0",
        );
        if settings.network {
            confinement.endpoints = Some(confinement.attach_endpoint_filter());
        }
        confinement
    }

    /// Attaches the credential-endpoint filter and checks a command can join its cgroup.
    fn attach_endpoint_filter(&self) -> Result<EndpointGuard, String> {
        let cgroup = CommandsV2Cgroup::find(self.cgroups.as_ref().ok())?;
        let filter = EndpointFilter::attach(&cgroup.dir).map_err(|error| error.to_string())?;
        // A UDP connect sends nothing; in the cgroup it must fail with EPERM (the filter),
        // not succeed or fail for want of a route. Kernels before 5.15 on hybrid cgroup
        // layouts can silently stop matching sockets to v2 cgroups: this catches that.
        let blocked = BLOCKED_ENDPOINTS[0];
        // With v2 pids cgroups the filter sits on their parent: try from a child of it.
        let trial_cgroup = match (&cgroup.join, &self.cgroups) {
            (None, Ok(pids)) => Some(
                pids.create(&format!("{}-probe", std::process::id()), 64)
                    .map_err(|error| format!("cannot make a trial cgroup: {error}"))?,
            ),
            _ => None,
        };
        let join = cgroup
            .join
            .clone()
            .or_else(|| trial_cgroup.as_ref().map(|c| c.procs_path().clone()));
        self.try_start(
            Mechanisms::none(),
            join,
            &format!("( exec 3<>/dev/udp/{blocked}/53 ) 2>&1 | grep -q 'not permitted'"),
        )
        .map_err(|_| {
            format!(
                "the BPF filter is attached to {} but a trial connect from a command was not \
                 refused (kernel before 5.15 with v1 net_cls/net_prio in use?)",
                cgroup.dir.display()
            )
        })?;
        Ok(EndpointGuard {
            _filter: filter,
            dir: cgroup.dir,
            join: cgroup.join,
        })
    }

    /// Starts `bash -c check` with only `mechanisms` and says whether it exited 0.
    fn try_start(
        &self,
        mechanisms: Mechanisms,
        cgroup_join: Option<CString>,
        check: &str,
    ) -> Result<(), String> {
        let files = FileRules {
            abi: self.landlock_abi,
            writable: &[],
            readable: &self.readable,
            proc_readable: true,
        };
        let joins = cgroup_join.into_iter().collect();
        let setup = ChildSetup::prepare(mechanisms, joins, None, &files)
            .map_err(|error| error.to_string())?;
        let to_c = |bytes: &[u8]| CString::new(bytes).map_err(|_| "NUL byte".to_string());
        let program = to_c(self.bash.as_os_str().as_bytes())?;
        let args = [to_c(b"-c")?, to_c(check.as_bytes())?];
        let env = [to_c(b"PATH=/usr/bin:/bin")?];
        let child =
            spawn::spawn(&program, &args, &env, c"/", &setup).map_err(|error| error.to_string())?;
        drop((child.stdout, child.stderr));
        let status = spawn::reap(child.pid);
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else {
            Err(format!(
                "a trial command under it did not succeed (wait status {status})"
            ))
        }
    }

    /// Every promise, with whether it holds here, for `settings`.
    pub fn promises(&self, settings: &ExecSettings) -> Vec<Promise> {
        let why = |result: &Result<(), String>| result.as_ref().err().cloned();
        let mut promises = Vec::new();
        let landlock_why = why(&self.landlock);
        let extra = |paths: &[PathBuf]| {
            if paths.is_empty() {
                String::new()
            } else {
                format!(
                    " and {}",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        promises.push(Promise {
            name: "reads",
            holds: landlock_why.is_none(),
            required: true,
            detail: match &landlock_why {
                None => format!(
                    "a command reads only its workspace, the system trees (/usr, /bin, /lib*, \
                     /opt, /etc less files hidden from others), a few devices, its own /proc{} \
                     (Landlock ABI {}; widen with exec_readable_paths)",
                    extra(&settings.readable_paths),
                    self.landlock_abi
                ),
                Some(why) => format!("a command can read the whole machine: {why}"),
            },
        });
        promises.push(Promise {
            name: "writes",
            holds: landlock_why.is_none(),
            required: true,
            detail: match &landlock_why {
                None => format!(
                    "a command writes only inside its workspace{} (Landlock; widen with \
                     exec_writable_paths)",
                    extra(&settings.writable_paths)
                ),
                Some(why) => format!("a command can write anywhere the host can: {why}"),
            },
        });
        promises.push(Promise {
            name: "processes",
            holds: self.namespaces.is_ok(),
            required: true,
            detail: match why(&self.namespaces) {
                None => "a command sees, signals and traces only its own processes (a PID \
                         namespace with its own /proc); all of them end with it"
                    .to_string(),
                Some(why) => format!(
                    "a command can see the host's and other commands' processes in /proc \
                     (their command lines, and with Landlock off their environments): the \
                     PID namespace cannot be made: {why}"
                ),
            },
        });
        let seccomp_why = self.seccomp.as_ref().err().cloned();
        let caps_why = why(&self.capabilities);
        promises.push(Promise {
            name: "privileges",
            holds: seccomp_why.is_none() && caps_why.is_none(),
            required: true,
            detail: match (caps_why, seccomp_why) {
                (None, None) => "a command has no capabilities (bounding set emptied), \
                                 no_new_privs, and cannot make user namespaces (seccomp)"
                    .to_string(),
                (Some(why), _) => format!("capabilities cannot be dropped: {why}"),
                (None, Some(why)) => {
                    format!("user namespaces cannot be refused (seccomp): {why}")
                }
            },
        });
        let endpoints = BLOCKED_ENDPOINTS.join(", ");
        promises.push(match (&self.network_namespace, &self.endpoints) {
            (Some(Ok(())), _) => Promise {
                name: "credentials",
                holds: true,
                required: false,
                detail: format!(
                    "credential endpoints ({endpoints}) are unreachable: the network is off"
                ),
            },
            (_, Some(Ok(guard))) => Promise {
                name: "credentials",
                holds: true,
                required: false,
                detail: format!(
                    "credential endpoints ({endpoints}) are refused to commands (a BPF connect \
                     filter on {})",
                    guard.dir.display()
                ),
            },
            (_, Some(Err(why))) => Promise {
                name: "credentials",
                holds: false,
                required: false,
                detail: format!(
                    "commands CAN reach the credential endpoints ({endpoints}) that hand out \
                     the host's role credentials: {why}; set exec_network = false to cut \
                     commands off the network"
                ),
            },
            _ => Promise {
                name: "credentials",
                holds: false,
                required: false,
                detail: "the network is off but its namespace cannot be made".to_string(),
            },
        });
        if let Some(network) = &self.network_namespace {
            promises.push(Promise {
                name: "network",
                holds: network.is_ok(),
                required: true,
                detail: match network {
                    Ok(()) => {
                        "off: a network namespace per command (exec_network = false)".to_string()
                    }
                    Err(why) => format!(
                        "exec_network = false, but the network namespace cannot be made: {why}"
                    ),
                },
            });
        }
        promises.push(match &self.cgroups {
            Ok(cgroups) => Promise {
                name: "process limit",
                holds: true,
                required: false,
                detail: format!(
                    "at most {} processes per command (pids cgroup under {})",
                    settings.max_processes,
                    cgroups.parent().display()
                ),
            },
            Err(why) => Promise {
                name: "process limit",
                holds: !self.root,
                required: false,
                detail: if self.root {
                    format!(
                        "no pids cgroup ({why}) and the host runs as root, so RLIMIT_NPROC does \
                         not apply: a fork bomb is NOT contained"
                    )
                } else {
                    format!("no pids cgroup ({why}): processes limited by RLIMIT_NPROC only")
                },
            },
        });
        let secret = super::environment::secret_looking(&settings.env);
        promises.push(Promise {
            name: "environment",
            holds: secret.is_empty(),
            required: false,
            detail: if secret.is_empty() {
                "a command gets PATH, HOME, TMPDIR, LANG and the exec_env variables only"
                    .to_string()
            } else {
                format!("exec_env passes variables that look like secrets to commands: {secret:?}")
            },
        });
        promises
    }

    /// The required promises that do not hold, as one sentence (empty: all hold).
    pub fn missing(&self, settings: &ExecSettings) -> Vec<Promise> {
        self.promises(settings)
            .into_iter()
            .filter(|promise| promise.required && !promise.holds)
            .collect()
    }
}

/// The system's `bash` (inside the trees commands may read), else the first on PATH.
fn find_bash() -> PathBuf {
    let system = ["/usr/bin/bash", "/bin/bash"].map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("bash"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    system
        .into_iter()
        .chain(on_path)
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("/bin/bash"))
}
