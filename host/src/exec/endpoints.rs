//! Keeps commands away from the cloud credential endpoints, with a cgroup BPF filter.
//!
//! On EC2, ECS and EKS the host's IAM role credentials are one unauthenticated HTTP
//! request away: the instance metadata service (`169.254.169.254`, `fd00:ec2::254`), the
//! ECS container credentials endpoint (`169.254.170.2`) and the EKS Pod Identity agent
//! (`169.254.170.23`, `fd00:ec2::23`). A command that fetched them could act as the host
//! (call Bedrock, read its S3 buckets) long after the command ended. The command's
//! environment carries no secrets (see [`super::environment`]), so these endpoints are
//! the way left, and they must be closed to commands while the host keeps using them.
//!
//! Landlock's network rules match TCP ports only, not addresses, and a network namespace
//! cuts the whole network, which commands need for git and package managers. So the
//! host attaches a `BPF_PROG_TYPE_CGROUP_SOCK_ADDR` program to the commands' cgroup v2
//! directory. The kernel runs it at `connect()` (TCP and UDP) and at an unconnected UDP
//! `sendmsg()` of every socket made by a process in that cgroup or below, before any
//! packet leaves, and the program answers "no" (the call fails with `EPERM`) when the
//! destination is one of [`BLOCKED_ENDPOINTS`], on any port. The host is not in that
//! cgroup, so its own requests pass. Host names do not help a command: the program sees
//! the address the name resolved to, and any spelling of an IPv4 address (decimal, hex)
//! arrives as the same four bytes.
//!
//! An IPv6 socket is dual-stack by default, and `connect()` to the IPv4-mapped address
//! `::ffff:169.254.169.254` on it reaches the IPv4 endpoint. For `connect()` the kernel
//! runs only the IPv6 hook (TCP and UDP hand the mapped address to the IPv4 code past
//! the IPv4 hook), so the IPv6 program also refuses the mapped form of every blocked IPv4
//! address. (An unconnected UDP send to it does pass the IPv4 sendmsg hook.)
//!
//! The programs are attached with `BPF_LINK_CREATE`, not `BPF_PROG_ATTACH`: an
//! attachment made with the latter stays on the cgroup after the host exits (a host
//! killed with `SIGKILL` would leave it behind, and each restart would add one), while a
//! link lives exactly as long as its file descriptor. Dropping [`EndpointFilter`], or the
//! host's exit in any way, closes the descriptors and the kernel detaches the programs.
//! Links are also multi-attach: they run beside any program others attached to the same
//! cgroup or its ancestors, and a refusal from any of them refuses the call.
//!
//! The programs are a few instructions each, written out here (no compiler, no loader
//! library): load the destination from the context, compare it with each address, return
//! 0 (refuse) or 1 (allow). The context holds addresses in network byte order, and a
//! 4-byte load reads those bytes in the CPU's order, so each address is compared as
//! `u32::from_ne_bytes` of its bytes, which is right on little- and big-endian machines.
//!
//! What it does not cover: sockets made outside the cgroup and passed in; raw sockets (a
//! process with `CAP_NET_RAW` can craft its own packets); and a process with `CAP_BPF` or
//! `CAP_SYS_ADMIN`, which can find the links and detach them. Commands must not hold
//! those capabilities for the filter to hold.
//!
//! Needs Linux 5.7 or newer (BPF links for cgroups), cgroup v2 (the programs attach only
//! to the v2 hierarchy, also in a hybrid layout, and filter by a process's v2 cgroup
//! whatever its v1 ones), and root or `CAP_BPF` + `CAP_NET_ADMIN` (`CAP_SYS_ADMIN`
//! before Linux 5.8). In a hybrid layout before Linux 5.15, the kernel stops matching
//! sockets to v2 cgroups once the v1 `net_cls` or `net_prio` controller is used, and the
//! filter then silently lets everything through.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The addresses blocked, for the start log line and docs. The programs are built from
/// this table (see [`BlockedAddresses::from_table`]).
pub const BLOCKED_ENDPOINTS: &[&str] = &[
    "169.254.169.254", // EC2 instance metadata (IMDS)
    "169.254.170.2",   // ECS container credentials
    "169.254.170.23",  // EKS Pod Identity agent
    "fd00:ec2::254",   // EC2 instance metadata over IPv6
    "fd00:ec2::23",    // EKS Pod Identity agent over IPv6
];

/// A loaded and attached filter; dropping it detaches it.
#[derive(Debug)]
pub struct EndpointFilter {
    /// One BPF link per hook. Each holds its program, so the program descriptors are
    /// closed once linked; closing a link detaches its program.
    _links: Vec<OwnedFd>,
}

impl EndpointFilter {
    /// Loads the programs and attaches them to the cgroup v2 directory `cgroup_dir`
    /// (every process in it or below it is filtered). Errors say what failed in words an
    /// operator understands. On an error nothing stays attached.
    pub fn attach(cgroup_dir: &Path) -> io::Result<EndpointFilter> {
        let cgroup = File::open(cgroup_dir).map_err(|error| {
            explain(
                error,
                format!("cannot open the cgroup directory {}", cgroup_dir.display()),
            )
        })?;
        let blocked = BlockedAddresses::from_table();
        let mut links = Vec::with_capacity(HOOKS.len());
        for hook in HOOKS {
            let program = match hook.family {
                Family::V4 => ipv4_program(&blocked),
                Family::V6 => ipv6_program(&blocked),
            };
            let loaded = load(&program, hook)?;
            links.push(link(&loaded, &cgroup, cgroup_dir, hook)?);
        }
        Ok(EndpointFilter { _links: links })
    }
}

/// [`BLOCKED_ENDPOINTS`] parsed and split by family.
#[derive(Debug)]
struct BlockedAddresses {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

impl BlockedAddresses {
    /// Parses the table; a unit test checks that every entry is an address.
    fn from_table() -> Self {
        let mut blocked = Self {
            v4: Vec::new(),
            v6: Vec::new(),
        };
        for text in BLOCKED_ENDPOINTS {
            match text.parse::<IpAddr>() {
                Ok(IpAddr::V4(address)) => blocked.v4.push(address),
                Ok(IpAddr::V6(address)) => blocked.v6.push(address),
                Err(_) => unreachable!("BLOCKED_ENDPOINTS holds {text:?}, not an IP address"),
            }
        }
        blocked
    }
}

// ----- The programs -----

/// `struct bpf_insn`: one BPF instruction.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    /// `dst_reg:4, src_reg:4` bit-fields (see [`registers`]).
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcode parts (include/uapi/linux/bpf_common.h and bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

/// Registers: the return value, the context argument, and scratch for the address.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;

/// Offsets in `struct bpf_sock_addr` of the destination address (network byte order).
const USER_IP4: i16 = 4;
const USER_IP6: i16 = 8;

/// Return values of a `CGROUP_SOCK_ADDR` program.
const REFUSE: i32 = 0;
const ALLOW: i32 = 1;

/// The `dst_reg:4, src_reg:4` byte. C bit-fields fill from the low bits on little-endian
/// targets and from the high bits on big-endian ones.
const fn registers(dst: u8, src: u8) -> u8 {
    if cfg!(target_endian = "little") {
        (src << 4) | (dst & 0x0f)
    } else {
        (dst << 4) | (src & 0x0f)
    }
}

/// `dst = *(u32 *)(src + off)`, zero-extended.
const fn load_u32(dst: u8, src: u8, off: i16) -> Insn {
    Insn {
        code: BPF_LDX | BPF_W | BPF_MEM,
        regs: registers(dst, src),
        off,
        imm: 0,
    }
}

/// `dst = imm` (64-bit).
const fn mov_imm(dst: u8, imm: i32) -> Insn {
    Insn {
        code: BPF_ALU64 | BPF_MOV | BPF_K,
        regs: registers(dst, 0),
        off: 0,
        imm,
    }
}

/// `if (u32)dst <op> value goto pc + 1 + off`. A 32-bit compare, so `value` is not
/// sign-extended against a 64-bit register (169.254.x.x has its top bit set either way
/// round).
const fn jump32_imm(op: u8, dst: u8, value: u32, off: i16) -> Insn {
    Insn {
        code: BPF_JMP32 | op | BPF_K,
        regs: registers(dst, 0),
        off,
        imm: value as i32, // the same 32 bits
    }
}

const fn exit() -> Insn {
    Insn {
        code: BPF_JMP | BPF_EXIT,
        regs: 0,
        off: 0,
        imm: 0,
    }
}

/// An address word as the program reads it: 4 bytes in network order, loaded by the CPU.
fn word(bytes: [u8; 4]) -> u32 {
    u32::from_ne_bytes(bytes)
}

/// The four words of `user_ip6` for `address`.
fn ipv6_words(address: Ipv6Addr) -> [u32; 4] {
    let o = address.octets();
    [
        word([o[0], o[1], o[2], o[3]]),
        word([o[4], o[5], o[6], o[7]]),
        word([o[8], o[9], o[10], o[11]]),
        word([o[12], o[13], o[14], o[15]]),
    ]
}

/// Where a compare jumps when it holds.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Over the next `n` instructions.
    Skip(i16),
    /// To the end that returns [`ALLOW`].
    Allow,
    /// To the end that returns [`REFUSE`].
    Refuse,
}

/// Collects instructions and resolves the jumps to the two exits at the end.
#[derive(Default)]
struct Assembler {
    insns: Vec<Insn>,
    /// Instructions whose offset is set by [`Assembler::finish`].
    pending: Vec<(usize, Target)>,
}

impl Assembler {
    fn push(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    /// `if (u32)reg <op> value goto target`.
    fn jump_if(&mut self, op: u8, reg: u8, value: u32, target: Target) {
        let off = match target {
            Target::Skip(n) => n,
            Target::Allow | Target::Refuse => {
                self.pending.push((self.insns.len(), target));
                0
            }
        };
        self.push(jump32_imm(op, reg, value, off));
    }

    /// Appends `allow: r0 = 1; exit; refuse: r0 = 0; exit` (falling off the compares
    /// allows) and points the pending jumps there. Jumps only go forward, so the
    /// verifier sees no loop.
    fn finish(mut self) -> Vec<Insn> {
        let allow = self.insns.len();
        self.push(mov_imm(R0, ALLOW));
        self.push(exit());
        let refuse = self.insns.len();
        self.push(mov_imm(R0, REFUSE));
        self.push(exit());
        for (at, target) in self.pending {
            let to = match target {
                Target::Allow => allow,
                Target::Refuse => refuse,
                Target::Skip(_) => unreachable!("skips are resolved when pushed"),
            };
            self.insns[at].off =
                i16::try_from(to - at - 1).expect("a filter program is a few dozen instructions");
        }
        self.insns
    }
}

/// For the IPv4 hooks: refuse when `user_ip4` is a blocked IPv4 address.
fn ipv4_program(blocked: &BlockedAddresses) -> Vec<Insn> {
    let mut asm = Assembler::default();
    asm.push(load_u32(R2, R1, USER_IP4));
    for address in &blocked.v4 {
        asm.jump_if(BPF_JEQ, R2, word(address.octets()), Target::Refuse);
    }
    asm.finish()
}

/// For the IPv6 hooks: refuse when `user_ip6` is a blocked IPv6 address, or the
/// IPv4-mapped form (`::ffff:a.b.c.d`) of a blocked IPv4 address. The four words go to
/// r2..r5 and each address is four compares, any mismatch skipping to the next.
fn ipv6_program(blocked: &BlockedAddresses) -> Vec<Insn> {
    let mut asm = Assembler::default();
    for i in 0..4u8 {
        asm.push(load_u32(R2 + i, R1, USER_IP6 + 4 * i16::from(i)));
    }
    for address in &blocked.v6 {
        let [w0, w1, w2, w3] = ipv6_words(*address);
        asm.jump_if(BPF_JNE, R2, w0, Target::Skip(3));
        asm.jump_if(BPF_JNE, R2 + 1, w1, Target::Skip(2));
        asm.jump_if(BPF_JNE, R2 + 2, w2, Target::Skip(1));
        asm.jump_if(BPF_JEQ, R2 + 3, w3, Target::Refuse);
    }
    if !blocked.v4.is_empty() {
        // The mapped prefix is 80 zero bits, then 16 one bits.
        asm.jump_if(BPF_JNE, R2, 0, Target::Allow);
        asm.jump_if(BPF_JNE, R2 + 1, 0, Target::Allow);
        asm.jump_if(BPF_JNE, R2 + 2, word([0, 0, 0xff, 0xff]), Target::Allow);
        for address in &blocked.v4 {
            asm.jump_if(BPF_JEQ, R2 + 3, word(address.octets()), Target::Refuse);
        }
    }
    asm.finish()
}

// ----- Loading and attaching -----

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;

/// Which program goes where.
#[derive(Debug, Clone, Copy)]
enum Family {
    V4,
    V6,
}

/// One attach point (`enum bpf_attach_type`).
#[derive(Debug)]
struct Hook {
    attach_type: u32,
    family: Family,
    /// The program's name, shown by `bpftool prog` (at most 15 bytes).
    name: &'static str,
    /// For error messages.
    what: &'static str,
}

/// Connect covers TCP and connected UDP; sendmsg covers UDP sent without `connect()`.
const HOOKS: &[Hook] = &[
    Hook {
        attach_type: 10, // BPF_CGROUP_INET4_CONNECT
        family: Family::V4,
        name: "agent_host_c4",
        what: "IPv4 connect",
    },
    Hook {
        attach_type: 11, // BPF_CGROUP_INET6_CONNECT
        family: Family::V6,
        name: "agent_host_c6",
        what: "IPv6 connect",
    },
    Hook {
        attach_type: 14, // BPF_CGROUP_UDP4_SENDMSG
        family: Family::V4,
        name: "agent_host_s4",
        what: "IPv4 UDP sendmsg",
    },
    Hook {
        attach_type: 15, // BPF_CGROUP_UDP6_SENDMSG
        family: Family::V6,
        name: "agent_host_s6",
        what: "IPv6 UDP sendmsg",
    },
];

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type` (the
/// kernel treats the fields after it as zero).
#[repr(C)]
#[derive(Debug, Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_LINK_CREATE` part of `union bpf_attr`, up to `flags`.
#[repr(C)]
#[derive(Debug, Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// Room for the verifier's explanation when a load fails.
const LOG_SIZE: usize = 64 * 1024;

/// Loads `program` for `hook`. When the kernel rejects it for a reason other than
/// permission, it is loaded again with the verifier log on, to say why. (Not logging the
/// first time: a log that overflows its buffer fails a load on older kernels.)
fn load(program: &[Insn], hook: &Hook) -> io::Result<OwnedFd> {
    let error = match prog_load(program, hook, None) {
        Ok(fd) => return Ok(fd),
        Err(error) => error,
    };
    let reason = match error.raw_os_error() {
        Some(libc::EPERM) => {
            "needs root or CAP_BPF + CAP_NET_ADMIN, no seccomp filter forbidding bpf(), and \
             before Linux 5.11 enough RLIMIT_MEMLOCK"
                .to_string()
        }
        Some(libc::ENOSYS) => "this kernel has no bpf() system call (CONFIG_BPF_SYSCALL)".into(),
        _ => {
            let mut log = vec![0u8; LOG_SIZE];
            if let Ok(fd) = prog_load(program, hook, Some(&mut log)) {
                return Ok(fd);
            }
            format!(
                "rejected by the verifier, or a kernel older than Linux 5.7; the verifier said: {}",
                verifier_summary(&log)
            )
        }
    };
    Err(explain(
        error,
        format!(
            "the kernel refused to load the BPF program for {} ({reason})",
            hook.what
        ),
    ))
}

/// One `BPF_PROG_LOAD`, with the verifier log written to `log` when given.
fn prog_load(program: &[Insn], hook: &Hook, log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        insn_cnt: u32::try_from(program.len()).expect("a filter program is short"),
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: program_name(hook.name),
        expected_attach_type: hook.attach_type,
        ..ProgLoadAttr::default()
    };
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // SAFETY: `attr` is a BPF_PROG_LOAD attribute whose pointers (the instructions, the
    // NUL-terminated license, the log buffer with its size) outlive the call.
    unsafe { bpf_fd(BPF_PROG_LOAD, &mut attr) }
}

/// `name` as the NUL-padded `prog_name` field (longer names are cut at 15 bytes).
fn program_name(name: &str) -> [u8; 16] {
    let mut field = [0u8; 16];
    let len = name.len().min(15);
    field[..len].copy_from_slice(&name.as_bytes()[..len]);
    field
}

/// The end of a verifier log (its last lines hold the reason), on one line, without the
/// statistics line.
fn verifier_summary(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with("processed "))
        .collect();
    if lines.is_empty() {
        return "(no log)".to_string();
    }
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

/// Attaches `program` at `hook` of `cgroup` with a link, whose descriptor is returned.
fn link(program: &OwnedFd, cgroup: &File, dir: &Path, hook: &Hook) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: program.as_raw_fd() as u32,
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: hook.attach_type,
        flags: 0,
    };
    // SAFETY: `attr` is a BPF_LINK_CREATE attribute holding two open descriptors and no
    // pointers.
    unsafe { bpf_fd(BPF_LINK_CREATE, &mut attr) }.map_err(|error| {
        let reason = match error.raw_os_error() {
            Some(libc::EBADF) => "it is not a cgroup v2 directory",
            Some(libc::EPERM) => {
                "needs CAP_NET_ADMIN, and no ancestor cgroup may hold an exclusive \
                 (non-multi) program at this hook"
            }
            Some(libc::EINVAL) => "BPF links for cgroups need Linux 5.7 or newer",
            _ => "BPF_LINK_CREATE failed",
        };
        explain(
            error,
            format!(
                "the kernel refused to attach the BPF program for {} to {} ({reason})",
                hook.what,
                dir.display()
            ),
        )
    })
}

/// The `bpf()` system call for a command that returns a new descriptor (the kernel makes
/// it close-on-exec, so commands do not inherit it).
///
/// # Safety
///
/// `attr` must be the attribute layout `cmd` expects, and every pointer in it must be
/// valid for the call (the kernel reads, and for a log writes, through them).
unsafe fn bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<OwnedFd> {
    let size = std::mem::size_of::<T>() as libc::c_uint;
    // SAFETY: the caller vouches for `attr`; the kernel reads `size` bytes of it.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf() returned no descriptor"))?;
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `error` with `what` in front, keeping its kind.
fn explain(error: io::Error, what: String) -> io::Error {
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn every_table_entry_is_an_address_of_either_family() {
        let blocked = BlockedAddresses::from_table();
        assert_eq!(blocked.v4.len() + blocked.v6.len(), BLOCKED_ENDPOINTS.len());
        assert!(blocked.v4.contains(&Ipv4Addr::new(169, 254, 169, 254)));
        assert!(blocked.v6.contains(&"fd00:ec2::254".parse().unwrap()));
    }

    #[test]
    fn instructions_and_attributes_have_the_kernel_layout() {
        assert_eq!(size_of::<Insn>(), 8);
        assert_eq!(offset_of!(ProgLoadAttr, log_buf), 32);
        assert_eq!(offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(size_of::<ProgLoadAttr>(), 72);
        assert_eq!(offset_of!(LinkCreateAttr, attach_type), 8);
        assert_eq!(size_of::<LinkCreateAttr>(), 16);
    }

    #[test]
    fn opcodes_are_the_kernel_ones() {
        assert_eq!(load_u32(R2, R1, USER_IP4).code, 0x61);
        assert_eq!(mov_imm(R0, 1).code, 0xb7);
        assert_eq!(jump32_imm(BPF_JEQ, R2, 0, 0).code, 0x16);
        assert_eq!(jump32_imm(BPF_JNE, R2, 0, 0).code, 0x56);
        assert_eq!(exit().code, 0x95);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn instructions_encode_to_the_kernel_bytes() {
        let bytes = |insn: Insn| -> [u8; 8] {
            let mut out = [insn.code, insn.regs, 0, 0, 0, 0, 0, 0];
            out[2..4].copy_from_slice(&insn.off.to_le_bytes());
            out[4..].copy_from_slice(&insn.imm.to_le_bytes());
            out
        };
        // r2 = *(u32 *)(r1 + 4): dst in the low nibble, src in the high one.
        assert_eq!(bytes(load_u32(R2, R1, 4)), [0x61, 0x12, 4, 0, 0, 0, 0, 0]);
        // if w3 == 0xfea9fea9 (169.254.169.254 as read on little-endian) goto +2
        let jump = jump32_imm(BPF_JEQ, 3, word([169, 254, 169, 254]), 2);
        assert_eq!(bytes(jump), [0x16, 0x03, 2, 0, 0xa9, 0xfe, 0xa9, 0xfe]);
        assert_eq!(bytes(mov_imm(R0, 1)), [0xb7, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes(exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_word_holds_the_address_bytes_in_memory_order() {
        let octets = [169, 254, 170, 2];
        assert_eq!(word(octets).to_ne_bytes(), octets);
        let v6 = ipv6_words("fd00:ec2::254".parse().unwrap());
        assert_eq!(v6[0].to_ne_bytes(), [0xfd, 0x00, 0x0e, 0xc2]);
        assert_eq!(v6[3].to_ne_bytes(), [0x00, 0x00, 0x02, 0x54]);
    }

    #[test]
    fn program_names_fit_the_field() {
        for hook in HOOKS {
            assert!(hook.name.len() <= 15, "{}", hook.name);
            assert_eq!(program_name(hook.name)[15], 0);
        }
        assert_eq!(
            &program_name("a_very_long_program_name")[..15],
            b"a_very_long_pro"
        );
    }

    #[test]
    fn the_verifier_summary_keeps_the_last_lines() {
        let mut log = b"0: r2 = *(u32 *)(r1 +4)\n\ninvalid bpf_context access off=4 size=4\nprocessed 1 insns\n".to_vec();
        log.extend([0u8; 16]);
        assert_eq!(
            verifier_summary(&log),
            "0: r2 = *(u32 *)(r1 +4) | invalid bpf_context access off=4 size=4"
        );
        assert_eq!(verifier_summary(&[0u8; 8]), "(no log)");
    }

    /// Runs `program` the way the kernel would on a `struct bpf_sock_addr` whose bytes
    /// are `ctx`, for the instructions the programs use; checks what the verifier would
    /// (forward jumps inside the program, r0 set before exit, 4-byte aligned loads).
    fn run(program: &[Insn], ctx: &[u8; 64]) -> i32 {
        let mut regs = [None::<u64>; 11];
        let mut pc = 0usize;
        for _ in 0..program.len() {
            let insn = program[pc];
            let (dst, src) = if cfg!(target_endian = "little") {
                (usize::from(insn.regs & 0x0f), usize::from(insn.regs >> 4))
            } else {
                (usize::from(insn.regs >> 4), usize::from(insn.regs & 0x0f))
            };
            pc += 1;
            match insn.code {
                0x61 => {
                    assert_eq!(src, 1, "loads read the context");
                    let off = usize::try_from(insn.off).unwrap();
                    assert_eq!(off % 4, 0);
                    let bytes = ctx[off..off + 4].try_into().unwrap();
                    regs[dst] = Some(u64::from(u32::from_ne_bytes(bytes)));
                }
                0xb7 => regs[dst] = Some(i64::from(insn.imm) as u64),
                0x16 | 0x56 => {
                    let value = regs[dst].expect("compare of an unset register") as u32;
                    let equal = value == insn.imm as u32;
                    assert!(insn.off >= 0, "backward jump");
                    if equal == (insn.code == 0x16) {
                        pc += usize::try_from(insn.off).unwrap();
                    }
                }
                0x95 => return i32::try_from(regs[0].expect("exit without r0")).unwrap(),
                code => panic!("unexpected opcode {code:#x}"),
            }
            assert!(pc < program.len(), "ran off the end");
        }
        panic!("no exit");
    }

    fn ipv4_context(address: Ipv4Addr) -> [u8; 64] {
        let mut ctx = [0u8; 64];
        ctx[0..4].copy_from_slice(&(libc::AF_INET as u32).to_ne_bytes());
        ctx[4..8].copy_from_slice(&address.octets());
        ctx
    }

    fn ipv6_context(address: Ipv6Addr) -> [u8; 64] {
        let mut ctx = [0u8; 64];
        ctx[0..4].copy_from_slice(&(libc::AF_INET6 as u32).to_ne_bytes());
        ctx[8..24].copy_from_slice(&address.octets());
        ctx
    }

    #[test]
    fn the_ipv4_program_refuses_exactly_the_blocked_addresses() {
        let blocked = BlockedAddresses::from_table();
        let program = ipv4_program(&blocked);
        for address in &blocked.v4 {
            assert_eq!(run(&program, &ipv4_context(*address)), REFUSE, "{address}");
        }
        for allowed in [
            "10.77.0.1",
            "127.0.0.1",
            "169.254.169.253",
            "254.169.254.169",
            "0.0.0.0",
        ] {
            let address = allowed.parse().unwrap();
            assert_eq!(run(&program, &ipv4_context(address)), ALLOW, "{allowed}");
        }
    }

    #[test]
    fn the_ipv6_program_refuses_blocked_and_mapped_blocked_addresses() {
        let blocked = BlockedAddresses::from_table();
        let program = ipv6_program(&blocked);
        for address in &blocked.v6 {
            assert_eq!(run(&program, &ipv6_context(*address)), REFUSE, "{address}");
        }
        for address in &blocked.v4 {
            let mapped = address.to_ipv6_mapped();
            assert_eq!(run(&program, &ipv6_context(mapped)), REFUSE, "{mapped}");
        }
        for allowed in [
            "::1",
            "::",
            "fd00:ec2::253",
            "fd00:ec2:0:1::254",
            "fd01:ec2::254",
            "::ffff:10.77.0.1",
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
            "2001:db8:0:ffff::a9fe:a9fe",
        ] {
            let address = allowed.parse().unwrap();
            assert_eq!(run(&program, &ipv6_context(address)), ALLOW, "{allowed}");
        }
    }

    #[test]
    fn without_ipv4_entries_the_ipv6_program_skips_the_mapped_check() {
        let blocked = BlockedAddresses {
            v4: Vec::new(),
            v6: vec!["fd00:ec2::254".parse().unwrap()],
        };
        let program = ipv6_program(&blocked);
        assert_eq!(program.len(), 4 + 4 + 4);
        let mapped = Ipv4Addr::new(169, 254, 169, 254).to_ipv6_mapped();
        assert_eq!(run(&program, &ipv6_context(mapped)), ALLOW);
    }
}
