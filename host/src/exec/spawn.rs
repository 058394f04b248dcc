//! Starting the confined shell without copying the host: `clone(CLONE_VM | CLONE_VFORK)`.
//!
//! `std::process::Command` with a `pre_exec` hook must `fork`, and `fork` copies the
//! page tables of the whole host — the wasm engine's pools, compiled plugins, caches. That
//! made each command cost tens of milliseconds in a host with a few hundred MB resident,
//! growing with its size. Here the child shares the parent's memory (the calling thread
//! waits until the child has called `execve` or died), as `posix_spawn` does, and runs
//! [`ChildSetup::apply`] on a small stack of its own, so starting a command costs the
//! same whatever the host's size.
//!
//! Rules for the child, which runs in the parent's memory: system calls only — no
//! allocation, no locks, no writes to anything the parent uses. Every value it needs is
//! prepared here first. A failure before `execve` is sent back as an errno through a
//! close-on-exec pipe.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::confine::{ChildSetup, Step};

/// The child's stack (it runs the setup's system calls and `execve`).
const CHILD_STACK: usize = 256 * 1024;

/// A started shell: its pid (not yet reaped) and the read ends of its output pipes.
pub struct Spawned {
    pub pid: i32,
    pub stdout: File,
    pub stderr: File,
}

/// What the child needs, all prepared by the parent.
struct ChildArgs<'a> {
    program: &'a CStr,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    cwd: &'a CStr,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    report: RawFd,
    setup: &'a ChildSetup,
}

/// Starts `program` with `args` and `env` in `cwd`, stdin from `/dev/null`, stdout and
/// stderr into pipes, as the leader of a new process group, in the namespaces and after
/// the rest of `setup`.
pub fn spawn(
    program: &CStr,
    args: &[CString],
    env: &[CString],
    cwd: &CStr,
    setup: &ChildSetup,
) -> io::Result<Spawned> {
    let (stdout_read, stdout_write) = pipe()?;
    let (stderr_read, stderr_write) = pipe()?;
    let (report_read, report_write) = pipe()?;
    let stdin = File::open("/dev/null")?;
    let argv: Vec<*const libc::c_char> = std::iter::once(program.as_ptr())
        .chain(args.iter().map(|a| a.as_ptr()))
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let child = ChildArgs {
        program,
        argv: &argv,
        envp: &envp,
        cwd,
        stdin: stdin.as_raw_fd(),
        stdout: stdout_write.as_raw_fd(),
        stderr: stderr_write.as_raw_fd(),
        report: report_write.as_raw_fd(),
        setup,
    };
    let stack = Stack::new()?;
    let pid = {
        let _signals = BlockedSignals::block_all()?;
        // SAFETY: `child_main` only makes system calls on `child` (which outlives the
        // call: CLONE_VFORK suspends this thread until the child execs or exits) and on
        // its own stack; signals are blocked so no handler of the host runs in the child.
        unsafe {
            libc::clone(
                child_main,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | setup.clone_flags(),
                (&child as *const ChildArgs<'_>).cast_mut().cast(),
            )
        }
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    drop((stdout_write, stderr_write, report_write, stdin));
    // The report pipe is closed by a successful execve (close-on-exec): nothing to read.
    let mut report = [0u8; 8];
    let read = read_full(&report_read, &mut report);
    if read == report.len() {
        reap(pid);
        let [s0, s1, s2, s3, e0, e1, e2, e3] = report;
        let step = Step::from_u32(u32::from_ne_bytes([s0, s1, s2, s3]));
        let error = io::Error::from_raw_os_error(i32::from_ne_bytes([e0, e1, e2, e3]));
        return Err(io::Error::new(
            error.kind(),
            format!("{}: {error}", step.describe()),
        ));
    }
    Ok(Spawned {
        pid,
        stdout: File::from(stdout_read),
        stderr: File::from(stderr_read),
    })
}

/// Waits for `pid` and returns its wait status.
pub fn reap(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status into `status`, which outlives the call.
        let result = unsafe { libc::waitpid(pid, &mut status, 0) };
        if result >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return status;
        }
    }
}

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive until this child execs or exits.
    let child = unsafe { &*(arg as *const ChildArgs<'_>) };
    let (step, error) = prepare_and_exec(child);
    let errno = error.raw_os_error().unwrap_or(libc::EINVAL);
    let mut report = [0u8; 8];
    report[..4].copy_from_slice(&(step as u32).to_ne_bytes());
    report[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: plain system calls on fds and an 8-byte stack buffer.
    unsafe {
        libc::write(child.report, report.as_ptr().cast(), report.len());
        libc::_exit(127)
    }
}

/// Runs in the child: returns only on failure, with the step that failed.
fn prepare_and_exec(child: &ChildArgs<'_>) -> (Step, io::Error) {
    // SAFETY: system calls on values prepared by the parent; no allocation.
    unsafe {
        // Default handlers (the host's are not valid here), then unblock signals.
        for signal in 1..libc::SIGRTMAX() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        for (from, to) in [(child.stdin, 0), (child.stdout, 1), (child.stderr, 2)] {
            if libc::dup2(from, to) < 0 {
                return (Step::Streams, io::Error::last_os_error());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return (Step::ProcessGroup, io::Error::last_os_error());
        }
        // Before chdir: a user namespace's ids must be mapped before paths are checked.
        if let Err(failure) = child.setup.apply() {
            return failure;
        }
        if libc::chdir(child.cwd.as_ptr()) != 0 {
            return (Step::WorkingDirectory, io::Error::last_os_error());
        }
        libc::execve(
            child.program.as_ptr(),
            child.argv.as_ptr(),
            child.envp.as_ptr(),
        );
        (Step::Exec, io::Error::last_os_error())
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created these fds and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn read_full(fd: &OwnedFd, buffer: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        // SAFETY: reads into the unfilled part of `buffer`.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buffer[filled..].as_mut_ptr().cast(),
                buffer.len() - filled,
            )
        };
        match n {
            0 => break,
            n if n > 0 => filled += n as usize,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    filled
}

/// An mmap'd stack with a guard page below it.
struct Stack {
    base: *mut libc::c_void,
}

impl Stack {
    fn new() -> io::Result<Self> {
        // SAFETY: an anonymous private mapping; checked for failure.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                CHILD_STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page of our own mapping becomes the guard.
        unsafe { libc::mprotect(base, page_size(), libc::PROT_NONE) };
        Ok(Self { base })
    }

    /// The top of the stack (stacks grow down on every platform this runs on).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, 16-byte aligned (the mapping is).
        unsafe { self.base.cast::<u8>().add(CHILD_STACK).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; the child has exec'd or died.
        unsafe { libc::munmap(self.base, CHILD_STACK) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Blocks every signal on this thread until dropped (restoring the old mask).
struct BlockedSignals {
    old: libc::sigset_t,
}

impl BlockedSignals {
    fn block_all() -> io::Result<Self> {
        // SAFETY: sigset_t values initialised by sigfillset/pthread_sigmask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let error = libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            if error != 0 {
                return Err(io::Error::from_raw_os_error(error));
            }
            Ok(Self { old })
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `block_all`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}
