//! What the kernel enforces on a command, set up in the child between `clone` and `exec`.
//!
//! In order: join the command's pids cgroup, resource limits, a fresh network namespace
//! when the operator turned the network off, then Landlock (last, because it would refuse
//! the cgroup write). Everything that needs memory or paths is prepared in the parent
//! ([`ChildSetup::prepare`]); the child only makes system calls, as it must when it runs
//! in the parent's memory (see [`super::spawn`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, Scope, path_beneath_rules,
};

/// Device files a command may write to (beside the workspace).
const WRITABLE_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

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

/// Everything the child does before `exec`, prepared by the parent.
pub struct ChildSetup {
    cgroup_procs: Option<CString>,
    limits: ResourceLimits,
    network: Option<NetworkNamespace>,
    /// The Landlock ruleset (close-on-exec), when the kernel enforces one.
    landlock: Option<OwnedFd>,
}

/// The files written to give a new user namespace the caller's own ids, pre-formatted.
struct NetworkNamespace {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl ChildSetup {
    /// Prepares the setup for one command: `writable` are the only directories (with the
    /// device files above) it may change when Landlock ABI `abi` is available.
    pub fn prepare(
        cgroup_procs: Option<CString>,
        limits: ResourceLimits,
        network_off: bool,
        abi: i32,
        writable: &[PathBuf],
    ) -> io::Result<Self> {
        let network = network_off.then(|| {
            // SAFETY: getuid/getgid cannot fail and touch no memory.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            NetworkNamespace {
                uid_map: format!("{uid} {uid} 1").into_bytes(),
                gid_map: format!("{gid} {gid} 1").into_bytes(),
            }
        });
        let landlock = if abi > 0 {
            let ruleset =
                landlock_ruleset(abi_level(abi), writable, network_off).map_err(|error| {
                    io::Error::other(format!("cannot prepare the Landlock rules: {error}"))
                })?;
            Option::<OwnedFd>::from(ruleset)
        } else {
            None
        };
        Ok(Self {
            cgroup_procs,
            limits,
            network,
            landlock,
        })
    }

    /// Runs in the child before `execve`: system calls only, no allocation, nothing
    /// written to memory (the child shares the parent's; see [`super::spawn`]).
    pub fn apply(&self) -> io::Result<()> {
        if let Some(procs) = &self.cgroup_procs {
            write_file(procs, b"0")?;
        }
        set_limit(libc::RLIMIT_NPROC, self.limits.processes)?;
        set_limit(libc::RLIMIT_FSIZE, self.limits.file_size)?;
        set_limit(libc::RLIMIT_CPU, self.limits.cpu_seconds)?;
        set_limit(libc::RLIMIT_CORE, 0)?;
        if let Some(network) = &self.network {
            network.enter()?;
        }
        if let Some(ruleset) = &self.landlock {
            // SAFETY: prctl and landlock_restrict_self take integers only. No new
            // privileges is what lets an unprivileged process restrict itself, and keeps
            // setuid programs from shedding the rules.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

impl NetworkNamespace {
    /// Enters a new network namespace, which has no interface but a down loopback. As
    /// root that is one `unshare`; otherwise it needs a user namespace too, mapped to the
    /// caller's own ids so files it writes keep their owner.
    fn enter(&self) -> io::Result<()> {
        // SAFETY: unshare takes flags only.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
            return Ok(());
        }
        // SAFETY: as above.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/uid_map", &self.uid_map)?;
        write_file(c"/proc/self/gid_map", &self.gid_map)
    }
}

/// Read and execute everywhere; change only `writable` and the device files. With
/// the network off, TCP bind and connect are refused too (a second wall behind the
/// namespace). Signals to processes outside the command are refused (ABI 6).
fn landlock_ruleset(
    abi: ABI,
    writable: &[PathBuf],
    network_off: bool,
) -> Result<RulesetCreated, landlock::RulesetError> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?;
    if network_off && !AccessNet::from_all(abi).is_empty() {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
    }
    if !Scope::from_all(abi).is_empty() {
        ruleset = ruleset.scope(Scope::from_all(abi))?;
    }
    let devices: Vec<&Path> = WRITABLE_DEVICES
        .iter()
        .map(Path::new)
        .filter(|path| path.exists())
        .collect();
    ruleset
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))?
        .add_rules(path_beneath_rules(devices, AccessFs::from_file(abi)))
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

/// open + write + close, with no allocation (safe between fork and exec).
fn write_file(path: &std::ffi::CStr, contents: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated; the fd is closed before returning.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, contents.as_ptr().cast(), contents.len());
        let error = (written < 0).then(io::Error::last_os_error);
        libc::close(fd);
        match error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
