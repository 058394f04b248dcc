//! The namespaces a command starts in, made by the `clone` that starts it.
//!
//! - **PID + mount**: the command's shell is PID 1 of a PID namespace of its own and
//!   gets a fresh `/proc` (in a private mount namespace) that lists only its own process
//!   tree: the host's `/proc/<pid>/environ`, `cmdline`, `fd/` and `mem`, and other users'
//!   commands, do not exist there, and no process outside can be signalled or traced by
//!   pid. The shell reaps the orphans re-parented to it (bash waits for any child). When
//!   it exits the kernel kills everything left in the namespace, so nothing a command
//!   starts outlives it.
//! - **Network** (only with `exec_network = false`): a network namespace with nothing but
//!   a loopback that is down.
//! - **User** (only when the host is not root): creating the others needs privileges a
//!   non-root host has only inside a user namespace of its own, mapped to its own ids so
//!   the files a command writes keep their owner.
//!
//! The namespaces are created by `clone` itself (a PID namespace applies to children
//! made after `unshare`, not to the caller), so their set is part of how the command is
//! started ([`Namespaces::clone_flags`]); the child then finishes the set-up with bare
//! system calls ([`Namespaces::enter`]).

use std::ffi::CStr;
use std::io;

/// Which namespaces a command gets.
#[derive(Debug, Clone)]
pub struct Namespaces {
    /// A PID namespace and a mount namespace with a fresh `/proc`.
    pub processes: bool,
    /// An empty network namespace.
    pub network_off: bool,
    /// The id maps for a user namespace, when one is needed (the host is not root).
    user: Option<IdMaps>,
}

/// The files written to give a new user namespace the caller's own ids, pre-formatted.
#[derive(Debug, Clone)]
struct IdMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl Namespaces {
    /// The namespaces for `processes` and `network_off`, with a user namespace when the
    /// host is not root and any namespace is asked for.
    pub fn new(processes: bool, network_off: bool) -> Self {
        // SAFETY: getuid/getgid/geteuid cannot fail and touch no memory.
        let (uid, gid, euid) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid()) };
        let user = (euid != 0 && (processes || network_off)).then(|| IdMaps {
            uid_map: format!("{uid} {uid} 1").into_bytes(),
            gid_map: format!("{gid} {gid} 1").into_bytes(),
        });
        Self {
            processes,
            network_off,
            user,
        }
    }

    /// The `clone` flags that create these namespaces.
    pub fn clone_flags(&self) -> libc::c_int {
        let mut flags = 0;
        if self.user.is_some() {
            flags |= libc::CLONE_NEWUSER;
        }
        if self.processes {
            flags |= libc::CLONE_NEWPID | libc::CLONE_NEWNS;
        }
        if self.network_off {
            flags |= libc::CLONE_NEWNET;
        }
        flags
    }

    /// Runs in the child, first thing after `clone`: maps the user namespace's ids, then
    /// mounts the command's own `/proc`. System calls only.
    pub fn enter(&self) -> io::Result<()> {
        if let Some(maps) = &self.user {
            write_file(c"/proc/self/setgroups", b"deny")?;
            write_file(c"/proc/self/uid_map", &maps.uid_map)?;
            write_file(c"/proc/self/gid_map", &maps.gid_map)?;
        }
        if self.processes {
            // SAFETY: mount with static strings; no memory is written.
            unsafe {
                // Nothing mounted here may reach the host's mount table.
                if libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

/// open + write + close, with no allocation (safe between `clone` and `execve`).
pub fn write_file(path: &CStr, contents: &[u8]) -> io::Result<()> {
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
