//! What the kernel enforces on a command, set up in the child between `clone` and `exec`.
//!
//! In order: the namespaces' last steps (id maps, the command's own `/proc`), joining the
//! command's cgroups, resource limits, then Landlock, seccomp and the capability drop
//! (last, because each would refuse what comes before it). Everything that needs memory
//! or paths is prepared in the parent ([`ChildSetup::prepare`]); the child only makes
//! system calls, as it must when it runs in the parent's memory (see [`super::spawn`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetError, Scope, path_beneath_rules,
};

use super::namespaces::Namespaces;
use super::privileges::{SeccompFilters, drop_capabilities};
use super::readable::{ReadableTrees, WRITABLE_DEVICES};

/// The newest Landlock ABI this host was tested with; newer kernels are used at this level.
const NEWEST_TESTED_ABI: i32 = 6;

/// The Landlock ABI the kernel offers (0: none), asked once at start.
pub fn landlock_abi() -> i32 {
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the VERSION flag
    // only returns the ABI version (or an error); it touches no memory.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    i32::try_from(version).unwrap_or(0).max(0)
}

fn abi_level(abi: i32) -> ABI {
    match abi.min(NEWEST_TESTED_ABI) {
        i32::MIN..=0 => ABI::Unsupported,
        1 => ABI::V1,
        2 => ABI::V2,
        3 => ABI::V3,
        4 => ABI::V4,
        5 => ABI::V5,
        _ => ABI::V6,
    }
}

/// Limits applied with `setrlimit` in the child.
#[derive(Debug, Clone, Copy)]
pub struct ResourceLimits {
    /// `RLIMIT_NPROC` (counts every process of the user; see [`super::cgroup`]).
    pub processes: u64,
    /// `RLIMIT_FSIZE` in bytes.
    pub file_size: u64,
    /// `RLIMIT_CPU` in seconds.
    pub cpu_seconds: u64,
}

/// What Landlock is told for one command.
pub struct FileRules<'a> {
    /// The kernel's Landlock ABI (0: none).
    pub abi: i32,
    /// Read, write and execute beneath these (the workspace, `exec_writable_paths`).
    pub writable: &'a [PathBuf],
    /// Read and execute beneath these (system trees, `exec_readable_paths`).
    pub readable: &'a ReadableTrees,
    /// `/proc` may be read: the command's own when it has a PID namespace (the rule is
    /// added in the child, after the mount), else the host's.
    pub proc_readable: bool,
}

/// The mechanisms applied to one command (all on, unless a probe or the operator's
/// `exec_allow_unconfined` runs without one that is missing).
pub struct Mechanisms {
    /// The command's namespaces.
    pub namespaces: Namespaces,
    /// Landlock rules, when the kernel has Landlock.
    pub landlock: bool,
    /// The seccomp filters, when they could be built.
    pub seccomp: Option<Arc<SeccompFilters>>,
    /// Drop every capability.
    pub drop_capabilities: bool,
}

impl Mechanisms {
    /// No mechanism at all (the probe adds the one it tries).
    pub fn none() -> Self {
        Self {
            namespaces: Namespaces::new(false, false),
            landlock: false,
            seccomp: None,
            drop_capabilities: false,
        }
    }
}

/// Everything the child does before `exec`, prepared by the parent.
pub struct ChildSetup {
    namespaces: Namespaces,
    /// `cgroup.procs` files the child writes itself into.
    cgroup_joins: Vec<CString>,
    limits: Option<ResourceLimits>,
    /// The Landlock ruleset (close-on-exec), when the kernel enforces one.
    landlock: Option<OwnedFd>,
    /// The access bits of the rule for the command's own `/proc`, added in the child.
    proc_rule: Option<u64>,
    seccomp: Option<Arc<SeccompFilters>>,
    drop_capabilities: bool,
}

impl ChildSetup {
    /// Prepares the setup for one command.
    pub fn prepare(
        mechanisms: Mechanisms,
        cgroup_joins: Vec<CString>,
        limits: Option<ResourceLimits>,
        files: &FileRules<'_>,
    ) -> io::Result<Self> {
        let network_off = mechanisms.namespaces.network_off;
        let own_proc = mechanisms.namespaces.processes;
        let (landlock, proc_rule) = if mechanisms.landlock && files.abi > 0 {
            let abi = abi_level(files.abi);
            let ruleset = landlock_ruleset(abi, files, network_off, own_proc)
                .map_err(|error| {
                    io::Error::other(format!("cannot prepare the Landlock rules: {error}"))
                })?
                // The kernel has Landlock, so a ruleset is always made; never run open.
                .ok_or_else(|| io::Error::other("the kernel made no Landlock ruleset"))?;
            let proc_rule = (files.proc_readable && own_proc)
                .then(|| (AccessFs::from_read(abi) & !AccessFs::Execute).bits());
            (Some(ruleset), proc_rule)
        } else {
            (None, None)
        };
        Ok(Self {
            namespaces: mechanisms.namespaces,
            cgroup_joins,
            limits,
            landlock,
            proc_rule,
            seccomp: mechanisms.seccomp,
            drop_capabilities: mechanisms.drop_capabilities,
        })
    }

    /// The `clone` flags that start the command in its namespaces.
    pub fn clone_flags(&self) -> libc::c_int {
        self.namespaces.clone_flags()
    }

    /// Runs in the child before `execve`: system calls only, no allocation, nothing
    /// written to memory (the child shares the parent's; see [`super::spawn`]).
    pub fn apply(&self) -> Result<(), (Step, io::Error)> {
        let at = |step: Step| move |error: io::Error| (step, error);
        self.namespaces.enter().map_err(at(Step::Namespaces))?;
        for procs in &self.cgroup_joins {
            super::namespaces::write_file(procs, b"0").map_err(at(Step::Cgroup))?;
        }
        if let Some(limits) = &self.limits {
            (|| {
                set_limit(libc::RLIMIT_NPROC, limits.processes)?;
                set_limit(libc::RLIMIT_FSIZE, limits.file_size)?;
                set_limit(libc::RLIMIT_CPU, limits.cpu_seconds)?;
                set_limit(libc::RLIMIT_CORE, 0)
            })()
            .map_err(at(Step::Limits))?;
        }
        // SAFETY: prctl takes integers only. No new privileges is what lets an
        // unprivileged process restrict itself (Landlock, seccomp), and keeps set-uid
        // programs from shedding the rules or regaining capabilities.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err((Step::NoNewPrivileges, io::Error::last_os_error()));
        }
        if let Some(ruleset) = &self.landlock {
            if let Some(access) = self.proc_rule {
                add_proc_rule(ruleset, access).map_err(at(Step::Landlock))?;
            }
            // SAFETY: landlock_restrict_self takes an fd and flags.
            if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) }
                != 0
            {
                return Err((Step::Landlock, io::Error::last_os_error()));
            }
        }
        if let Some(seccomp) = &self.seccomp {
            seccomp.install().map_err(at(Step::Seccomp))?;
        }
        if self.drop_capabilities {
            drop_capabilities().map_err(at(Step::Capabilities))?;
        }
        Ok(())
    }
}

/// The step of a command's start that failed (reported from the child as a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    Streams,
    ProcessGroup,
    Namespaces,
    Cgroup,
    Limits,
    NoNewPrivileges,
    Landlock,
    Seccomp,
    Capabilities,
    WorkingDirectory,
    Exec,
}

impl Step {
    const ALL: [Step; 11] = [
        Step::Streams,
        Step::ProcessGroup,
        Step::Namespaces,
        Step::Cgroup,
        Step::Limits,
        Step::NoNewPrivileges,
        Step::Landlock,
        Step::Seccomp,
        Step::Capabilities,
        Step::WorkingDirectory,
        Step::Exec,
    ];

    /// The step numbered `n` (`Exec` for a number no step has).
    pub fn from_u32(n: u32) -> Self {
        Self::ALL
            .into_iter()
            .find(|step| *step as u32 == n)
            .unwrap_or(Step::Exec)
    }

    /// What the step does, for an error message.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Streams => "connecting the command's output",
            Step::ProcessGroup => "making the command's process group",
            Step::Namespaces => "setting up the command's namespaces (ids, its own /proc)",
            Step::Cgroup => "joining the command's cgroup",
            Step::Limits => "setting the command's resource limits",
            Step::NoNewPrivileges => "setting no_new_privs",
            Step::Landlock => "applying the Landlock rules",
            Step::Seccomp => "installing the seccomp filter",
            Step::Capabilities => "dropping capabilities",
            Step::WorkingDirectory => "entering the working directory",
            Step::Exec => "starting the shell",
        }
    }
}

/// `struct landlock_path_beneath_attr`.
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Grants reading the `/proc` now mounted (the command's own) to `ruleset`. Runs in the
/// child: the parent's rule would name the host's procfs, which this one hides.
fn add_proc_rule(ruleset: &OwnedFd, access: u64) -> io::Result<()> {
    // SAFETY: open with a static path; the attribute lives on the stack for the call;
    // the fd is closed before returning.
    unsafe {
        let proc = libc::open(
            c"/proc".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if proc < 0 {
            return Err(io::Error::last_os_error());
        }
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: proc,
        };
        let result = libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            1u32, // LANDLOCK_RULE_PATH_BENEATH
            &attr as *const PathBeneathAttr,
            0u32,
        );
        let error = (result != 0).then(io::Error::last_os_error);
        libc::close(proc);
        error.map_or(Ok(()), Err)
    }
}

/// Read and execute beneath the readable trees; everything beneath `writable`; the
/// device files. With the network off, TCP bind and connect are refused too (a second
/// wall behind the namespace). Signals to processes outside the command are refused (ABI 6).
fn landlock_ruleset(
    abi: ABI,
    files: &FileRules<'_>,
    network_off: bool,
    own_proc: bool,
) -> Result<Option<OwnedFd>, RulesetError> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?;
    if network_off && !AccessNet::from_all(abi).is_empty() {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
    }
    if !Scope::from_all(abi).is_empty() {
        ruleset = ruleset.scope(Scope::from_all(abi))?;
    }
    let read = AccessFs::from_read(abi);
    let read_file = read & AccessFs::from_file(abi);
    let access = |is_dir: bool| -> BitFlags<AccessFs> { if is_dir { read } else { read_file } };
    let devices: Vec<&Path> = WRITABLE_DEVICES
        .iter()
        .map(Path::new)
        .filter(|path| path.exists())
        .collect();
    let mut created =
        ruleset
            .create()?
            .add_rules(files.readable.trees.iter().map(|grant| {
                Ok::<_, RulesetError>(PathBeneath::new(grant.fd.as_fd(), access(grant.is_dir)))
            }))?
            .add_rules(
                files.readable.devices.iter().map(|grant| {
                    Ok::<_, RulesetError>(PathBeneath::new(grant.fd.as_fd(), read_file))
                }),
            )?
            .add_rules(path_beneath_rules(files.writable, AccessFs::from_all(abi)))?
            .add_rules(path_beneath_rules(devices, AccessFs::from_file(abi)))?;
    if files.proc_readable && !own_proc {
        created = created.add_rules(path_beneath_rules(["/proc"], read))?;
    }
    Ok(Option::<OwnedFd>::from(created))
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `limit` is a valid rlimit that outlives the call.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
