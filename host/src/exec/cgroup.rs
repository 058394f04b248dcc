//! A pids cgroup per command, where the host may make one.
//!
//! `RLIMIT_NPROC` does not bind root (the usual user inside a container) and counts every
//! process of the user, so it cannot contain a fork bomb on its own. A cgroup with
//! `pids.max` does, for any user; and because every process the command starts stays in
//! its cgroup (even one that leaves the process group with `setsid`), the host can find
//! and kill all of them when the command ends.
//!
//! Both cgroup versions are handled: a v1 `pids` hierarchy, or v2 where the host's own
//! cgroup can delegate the `pids` controller. Where neither works the probe says why and
//! commands run without one (the start log line reports it).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory under the host's own cgroup that holds one child cgroup per command.
const PARENT_NAME: &str = "agent-host";

/// Where per-command cgroups are made.
#[derive(Debug)]
pub struct PidsCgroups {
    parent: PathBuf,
    /// In the v2 hierarchy (so programs attached to `parent` apply to each command).
    v2: bool,
}

impl PidsCgroups {
    /// Finds a pids controller the host can use, or says why there is none.
    pub fn probe() -> Result<Self, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let membership = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let (own_dir, v2) = match find_v1_pids(&mountinfo, &membership) {
            Some(dir) => (dir, false),
            None => (
                find_v2(&mountinfo, &membership, true)
                    .ok_or("no cgroup pids controller is mounted")?,
                true,
            ),
        };
        let parent = own_dir.join(PARENT_NAME);
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        if own_dir.join("cgroup.subtree_control").exists() {
            // v2: the controller must be handed down at each level. The host's own cgroup
            // can do so only when it is the root or holds no processes; try, then check.
            let _ = std::fs::write(own_dir.join("cgroup.subtree_control"), "+pids");
            std::fs::write(parent.join("cgroup.subtree_control"), "+pids").map_err(|e| {
                format!(
                    "cannot enable the pids controller in {}: {e}",
                    parent.display()
                )
            })?;
        }
        if !parent.join("cgroup.procs").exists() {
            return Err(format!("{} is not a cgroup", parent.display()));
        }
        remove_stale_children(&parent);
        // The parent may exist (made by another user, e.g. root) without this host being
        // allowed to make cgroups in it: try once, so commands are not failed later.
        let trial = parent.join(format!("{}-trial", std::process::id()));
        std::fs::create_dir(&trial)
            .and_then(|()| std::fs::remove_dir(&trial))
            .map_err(|e| format!("cannot create cgroups under {}: {e}", parent.display()))?;
        Ok(Self { parent, v2 })
    }

    /// The directory holding the per-command cgroups (for the start log line).
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// Whether the per-command cgroups are in the v2 hierarchy.
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// A fresh cgroup named `name` that allows at most `max_pids` processes.
    pub fn create(&self, name: &str, max_pids: u64) -> io::Result<CommandCgroup> {
        let dir = self.parent.join(name);
        std::fs::create_dir(&dir)?;
        let cgroup = CommandCgroup::new(dir)?;
        if let Err(error) = std::fs::write(cgroup.dir.join("pids.max"), max_pids.to_string()) {
            return Err(io::Error::new(
                error.kind(),
                format!("cannot set pids.max in {}: {error}", cgroup.dir.display()),
            ));
        }
        Ok(cgroup)
    }
}

/// One command's cgroup. Dropping it kills whatever is left in it and removes it.
#[derive(Debug)]
pub struct CommandCgroup {
    dir: PathBuf,
    /// `<dir>/cgroup.procs`, ready for the child to write itself into before `exec`.
    procs: CString,
    /// How `/proc/<pid>/cgroup` of a member ends: `/agent-host/<name>`.
    membership: String,
}

impl CommandCgroup {
    fn new(dir: PathBuf) -> io::Result<Self> {
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| io::Error::other("cgroup path contains a NUL byte"))?;
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let membership = format!("/{PARENT_NAME}/{name}");
        Ok(Self {
            dir,
            procs,
            membership,
        })
    }

    /// The `cgroup.procs` path a process writes `0` to in order to join.
    pub fn procs_path(&self) -> &CString {
        &self.procs
    }

    /// Kills every process in the cgroup, repeating while new ones appear (a fork bomb
    /// at its pids limit cannot outgrow the loop).
    ///
    /// Without v2's atomic `cgroup.kill`, processes are killed one by one, and a pid read
    /// from `cgroup.procs` may belong to another process by the time it is signalled (pids
    /// wrap quickly under a fork bomb). So each is pinned with a pidfd and signalled only
    /// if the pinned process is still a member.
    pub fn kill_all(&self) {
        if self.dir.join("cgroup.kill").exists()
            && std::fs::write(self.dir.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for round in 0..200 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                self.kill_member(pid);
            }
            if round > 0 {
                // Killed processes stay listed until reaped; give the reaper a moment.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn kill_member(&self, pid: i32) {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let Ok(fd) = i32::try_from(fd) else { return };
        if fd < 0 {
            return;
        }
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        let pidfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let member = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|cgroups| cgroups.lines().any(|l| l.ends_with(&self.membership)));
        if member {
            // SAFETY: pidfd_send_signal with a valid pidfd, a signal and no siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0u32,
                )
            };
        }
    }

    /// Whether any process is still in the cgroup.
    pub fn is_empty(&self) -> bool {
        self.pids().is_empty()
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }
}

impl Drop for CommandCgroup {
    fn drop(&mut self) {
        self.kill_all();
        // Killed processes leave the cgroup once reaped, which may take a moment.
        for attempt in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(Duration::from_millis(2 * (attempt + 1))),
            }
        }
        tracing::debug!(cgroup = %self.dir.display(), "could not remove a command's cgroup yet; the next start removes it");
    }
}

/// Removes per-command cgroups (`<host pid>-<n>`) left by a host that was killed. Those
/// of a host still running are left alone: an empty one may be about to be joined.
fn remove_stale_children(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner_alive = name
            .split_once('-')
            .is_some_and(|(pid, _)| Path::new("/proc").join(pid).exists());
        if !owner_alive
            && path.is_dir()
            && CommandCgroup::new(path.clone()).is_ok_and(|c| c.is_empty())
        {
            let _ = std::fs::remove_dir(&path);
        }
    }
}

/// The host's own directory in a v1 `pids` hierarchy.
fn find_v1_pids(mountinfo: &str, membership: &str) -> Option<PathBuf> {
    let own = membership.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "pids").then_some(path)
    })?;
    let mount = mounts(mountinfo).find(|m| {
        m.fstype == "cgroup" && m.super_options.split(',').any(|option| option == "pids")
    })?;
    Some(mount.dir_for(own))
}

/// The host's own directory in the v2 hierarchy (when `pids`: only if it offers the pids
/// controller).
fn find_v2(mountinfo: &str, membership: &str, pids: bool) -> Option<PathBuf> {
    let own = membership
        .lines()
        .find_map(|line| line.strip_prefix("0::"))?;
    let mount = mounts(mountinfo).find(|m| m.fstype == "cgroup2")?;
    let dir = mount.dir_for(own);
    if !pids {
        return Some(dir);
    }
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).ok()?;
    controllers
        .split_whitespace()
        .any(|c| c == "pids")
        .then_some(dir)
}

/// A v2 cgroup directory every command is placed in (or beneath), for programs that must
/// apply to commands and not to the host (see [`super::endpoints`]).
#[derive(Debug)]
pub struct CommandsV2Cgroup {
    /// The directory.
    pub dir: PathBuf,
    /// Its `cgroup.procs`, when the command must join it itself (it is not the parent of
    /// the per-command pids cgroups).
    pub join: Option<CString>,
}

impl CommandsV2Cgroup {
    /// The pids cgroups' parent when they are v2; else `agent-host` under the host's own
    /// v2 cgroup (a hybrid machine with v1 controllers), made if needed.
    pub fn find(pids: Option<&PidsCgroups>) -> Result<Self, String> {
        if let Some(pids) = pids.filter(|p| p.is_v2()) {
            return Ok(Self {
                dir: pids.parent.clone(),
                join: None,
            });
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let membership = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let own =
            find_v2(&mountinfo, &membership, false).ok_or("no cgroup v2 hierarchy is mounted")?;
        let dir = own.join(PARENT_NAME);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let join = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| "the cgroup path contains a NUL byte".to_string())?;
        Ok(Self {
            dir,
            join: Some(join),
        })
    }
}

/// One line of `/proc/self/mountinfo`, the fields used here.
struct Mount<'a> {
    root: &'a str,
    mount_point: &'a str,
    fstype: &'a str,
    super_options: &'a str,
}

impl Mount<'_> {
    /// The directory of cgroup `path` (as `/proc/self/cgroup` names it) in this mount.
    fn dir_for(&self, path: &str) -> PathBuf {
        let relative = path.strip_prefix(self.root).unwrap_or(path);
        Path::new(self.mount_point).join(relative.trim_start_matches('/'))
    }
}

fn mounts(mountinfo: &str) -> impl Iterator<Item = Mount<'_>> {
    mountinfo.lines().filter_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let mut after = after.split(' ');
        Some(Mount {
            root: fields.get(3)?,
            mount_point: fields.get(4)?,
            fstype: after.next()?,
            super_options: after.nth(1)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
37 31 0:34 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";

    #[test]
    fn finds_the_v1_pids_hierarchy_and_the_own_path() {
        let membership = "8:pids:/session-1\n4:memory:/x\n0::/";
        assert_eq!(
            find_v1_pids(MOUNTINFO, membership),
            Some(PathBuf::from("/sys/fs/cgroup/pids/session-1"))
        );
        assert_eq!(find_v1_pids(MOUNTINFO, "4:memory:/x\n0::/"), None);
    }

    #[test]
    fn a_mount_of_a_subtree_is_joined_relative_to_its_root() {
        let mount = Mount {
            root: "/outer",
            mount_point: "/sys/fs/cgroup",
            fstype: "cgroup2",
            super_options: "rw",
        };
        assert_eq!(
            mount.dir_for("/outer/inner"),
            PathBuf::from("/sys/fs/cgroup/inner")
        );
    }
}
