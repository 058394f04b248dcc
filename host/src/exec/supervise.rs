//! The parent's side of a running command: read its output under a cap, watch the clock
//! and the cancel flag, and kill its whole process group when it is over.
//!
//! One thread does it all with `poll(2)` over stdout, stderr and a pidfd of the shell, so
//! a finished command is noticed at once (no sleeping loop) and no helper threads are
//! needed. When the shell exits, whatever it left behind in its process group is killed;
//! output still held open by a process that escaped the group is read for a short grace
//! and then abandoned, with a note.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::CommandOutput;
use super::cgroup::CommandCgroup;
use super::spawn::{Spawned, reap};

/// How long output is still read after the shell exited.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How often the cancel flag is looked at while nothing else happens.
const CANCEL_CHECK: Duration = Duration::from_millis(50);
/// Bytes read per `read` call.
const CHUNK: usize = 64 * 1024;

/// Output kept up to a combined cap; the rest is read and dropped so the command never
/// blocks on a full pipe.
struct Capture {
    remaining: usize,
    truncated: bool,
}

impl Capture {
    fn keep(&mut self, into: &mut Vec<u8>, chunk: &[u8]) {
        let kept = chunk.len().min(self.remaining);
        into.extend_from_slice(&chunk[..kept]);
        self.remaining -= kept;
        self.truncated |= kept < chunk.len();
    }
}

/// Supervises the shell `child` (the leader of its own process group, not reaped yet)
/// until it and its output are done, it times out at `deadline`, or `cancel` is set; then
/// reaps it. On an error the caller must kill and reap it.
pub fn supervise(
    child: Spawned,
    deadline: Instant,
    cancel: Option<&AtomicBool>,
    max_output: usize,
    cgroup: Option<&CommandCgroup>,
) -> io::Result<CommandOutput> {
    let pid = child.pid;
    let pidfd = pidfd_open(pid)?;
    let mut streams = [Some(child.stdout), Some(child.stderr)];
    let mut finished = CommandOutput::default();
    let mut capture = Capture {
        remaining: max_output,
        truncated: false,
    };
    let mut exited = false;
    let mut drain_until = None;
    let mut buffer = vec![0u8; CHUNK];
    let kill = |signal| {
        // SAFETY: killpg has no memory-safety preconditions; the group is the shell's,
        // which is not reaped yet, so its id cannot have been reused.
        unsafe { libc::killpg(pid, signal) };
        if let Some(cgroup) = cgroup {
            cgroup.kill_all();
        }
    };
    loop {
        let now = Instant::now();
        if !exited {
            if cancel.is_some_and(|flag| flag.load(Ordering::Relaxed)) && !finished.cancelled {
                finished.cancelled = true;
                kill(libc::SIGKILL);
            } else if now >= deadline && !finished.timed_out {
                finished.timed_out = true;
                kill(libc::SIGKILL);
            }
        }
        let open = streams.iter().filter(|s| s.is_some()).count();
        if exited && (open == 0 || drain_until.is_some_and(|until| now >= until)) {
            break;
        }
        let wait_until = match (exited, drain_until) {
            (true, Some(until)) => until,
            _ if finished.timed_out || finished.cancelled => now + CANCEL_CHECK,
            _ if cancel.is_some() => deadline.min(now + CANCEL_CHECK),
            _ => deadline,
        };
        let mut fds = Vec::with_capacity(3);
        for stream in streams.iter().flatten() {
            fds.push(poll_entry(stream));
        }
        if !exited {
            fds.push(poll_entry(&pidfd));
        }
        poll(&mut fds, wait_until.saturating_duration_since(now))?;
        let mut index = 0;
        for (slot, stream) in streams.iter_mut().enumerate() {
            let Some(file) = stream else { continue };
            let ready = fds[index].revents != 0;
            index += 1;
            if !ready {
                continue;
            }
            match file.read(&mut buffer) {
                Ok(0) => *stream = None,
                Ok(n) => {
                    let into = if slot == 0 {
                        &mut finished.stdout
                    } else {
                        &mut finished.stderr
                    };
                    capture.keep(into, &buffer[..n]);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        if !exited && fds[index].revents != 0 {
            exited = true;
            // The shell is done: whatever it left running goes with it.
            kill(libc::SIGKILL);
            drain_until = Some(Instant::now() + DRAIN_GRACE);
        }
    }
    if streams.iter().any(Option::is_some) {
        finished.stderr.extend_from_slice(
            b"\n[agent-host: stopped reading output: a process that left the command's \
              process group still holds it open]\n",
        );
    }
    finished.truncated = capture.truncated;
    let status = reap(pid);
    if libc::WIFEXITED(status) {
        finished.exit_code = Some(libc::WEXITSTATUS(status));
    } else if libc::WIFSIGNALED(status) {
        finished.signal = Some(libc::WTERMSIG(status));
    }
    Ok(finished)
}

fn poll_entry(fd: &impl AsRawFd) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<()> {
    let millis = i32::try_from(timeout.as_millis().max(1)).unwrap_or(i32::MAX);
    // SAFETY: `fds` is a valid slice of pollfd for the duration of the call.
    let result = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    if result < 0 {
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    Ok(())
}

/// A pidfd for `pid`: readable once the process has exited (Linux 5.3+).
fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            error.kind(),
            format!("pidfd_open failed ({error}); running commands needs Linux 5.3 or newer"),
        ));
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
