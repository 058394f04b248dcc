//! A command runs with no privileges: every capability dropped, `no_new_privs`, and a
//! seccomp filter that refuses new user namespaces.
//!
//! A host running as root (CI, a container's default user) would otherwise hand its
//! commands a full capability set: reading any file as its owner past permission bits,
//! raw devices, `mount`, `insmod`. Dropping the effective and permitted sets is not enough
//! for uid 0, whose `execve` recomputes them from the bounding set, so the bounding,
//! inheritable and ambient sets are emptied too. A user namespace would hand a command a
//! fresh, complete capability set inside it (and with it mounts that could hide the
//! sandbox's view), so creating one is refused by seccomp: `unshare` and `clone` with
//! `CLONE_NEWUSER` fail with `EPERM`, and `clone3` (whose flags seccomp cannot read) with
//! `ENOSYS`, which makes the C library fall back to `clone`.
//!
//! The filters are compiled once ([`SeccompFilters::new`]); the child only installs them
//! ([`SeccompFilters::install`]) and drops its capabilities ([`drop_capabilities`]), both
//! bare system calls on memory prepared by the parent (see [`super::spawn`]).

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The seccomp programs every command runs under.
#[derive(Debug)]
pub struct SeccompFilters {
    /// `unshare`/`clone` with `CLONE_NEWUSER`: `EPERM`.
    no_user_namespaces: BpfProgram,
    /// `clone3`: `ENOSYS`.
    no_clone3: BpfProgram,
}

impl SeccompFilters {
    /// Compiles the filters for this machine's architecture.
    pub fn new() -> Result<Self, String> {
        let arch = target_arch()?;
        let new_user = u64::try_from(libc::CLONE_NEWUSER).unwrap_or(0x1000_0000);
        let flag_set = || {
            SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(new_user),
                new_user,
            )
            .and_then(|condition| SeccompRule::new(vec![condition]))
        };
        let rules = BTreeMap::from([
            (libc::SYS_unshare, vec![flag_set().map_err(describe)?]),
            (libc::SYS_clone, vec![flag_set().map_err(describe)?]),
        ]);
        let no_user_namespaces = compile(rules, libc::EPERM, arch)?;
        let no_clone3 = compile(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            libc::ENOSYS,
            arch,
        )?;
        Ok(Self {
            no_user_namespaces,
            no_clone3,
        })
    }

    /// Installs the filters on the calling thread. Runs in the child before `execve`:
    /// system calls only. Sets `no_new_privs`, which installing a filter requires.
    pub fn install(&self) -> io::Result<()> {
        for program in [&self.no_user_namespaces, &self.no_clone3] {
            seccompiler::apply_filter(program).map_err(|error| match error {
                seccompiler::Error::Prctl(error) | seccompiler::Error::Seccomp(error) => error,
                _ => io::Error::from_raw_os_error(libc::EINVAL),
            })?;
        }
        Ok(())
    }
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: TargetArch,
) -> Result<BpfProgram, String> {
    let errno = u32::try_from(errno).unwrap_or(1);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno),
        arch,
    )
    .map_err(describe)?;
    BpfProgram::try_from(filter).map_err(describe)
}

fn describe(error: impl std::fmt::Display) -> String {
    format!("cannot build the seccomp filter: {error}")
}

fn target_arch() -> Result<TargetArch, String> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        "riscv64" => Ok(TargetArch::riscv64),
        other => Err(format!(
            "seccomp filters are not built for the {other} architecture"
        )),
    }
}

/// Empties every capability set of the calling thread so that nothing comes back at
/// `execve`, even for uid 0. Runs in the child: system calls only.
///
/// The bounding set can only be changed with `CAP_SETPCAP`; a process without it (a
/// non-root host outside a user namespace) holds no capabilities to lose, and
/// `no_new_privs` keeps set-uid programs from granting any, so its `EPERM` is ignored.
pub fn drop_capabilities() -> io::Result<()> {
    // SAFETY: prctl and capget/capset with pointers to stack values that outlive the calls.
    unsafe {
        for capability in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 {
                match io::Error::last_os_error().raw_os_error() {
                    // Past the kernel's last capability: done.
                    Some(libc::EINVAL) => break,
                    Some(libc::EPERM) => break,
                    _ => return Err(io::Error::last_os_error()),
                }
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
            && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
        {
            return Err(io::Error::last_os_error());
        }
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData::default(); 2];
        if libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct` (two of them for 64 capabilities).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_this_machine() {
        let filters = SeccompFilters::new().unwrap();
        assert!(!filters.no_user_namespaces.is_empty());
        assert!(!filters.no_clone3.is_empty());
    }
}
