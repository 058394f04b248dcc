//! "A command sees only its own workspace", attacked: every way a command could read the
//! host's secrets, other users' work or the machine, see or signal other processes, or use
//! privileges, is tried against the real kernel through the host's command runner. Each
//! test plants a marker where the secret would be and requires that no output carries it.
//!
//! Where the kernel lacks a mechanism, the test says so (and fails under CI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_host::exec::{
    CommandOutput, CommandRequest, CommandRunner, Confinement, ExecError, ExecSettings,
};

/// What a planted secret looks like; no command output may contain it.
const MARKER: &str = "MARKER-confinement-5d1c0e";

fn runner() -> &'static CommandRunner {
    agent_host_tests::command_runner()
}

fn confined() -> bool {
    agent_host_tests::commands_confined()
}

fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    (dir, path)
}

fn run_in(runner: &CommandRunner, workspace: &Path, command: &str) -> CommandOutput {
    runner
        .run(&CommandRequest {
            command_line: command,
            workspace,
            cwd: workspace,
            timeout: Duration::from_secs(120),
            cancel: None,
        })
        .expect("the command runs")
}

fn run(workspace: &Path, command: &str) -> CommandOutput {
    run_in(runner(), workspace, command)
}

/// Everything the command printed.
fn all_output(output: &CommandOutput) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_no_marker(output: &CommandOutput, what: &str) {
    let text = all_output(output);
    assert!(!text.contains(MARKER), "{what}: a secret leaked:\n{text}");
}

/// A process outside the command (like the host, or another user's command) holding the
/// marker in its environment and command line. Killed on drop.
struct Bystander(Child);

impl Bystander {
    fn start() -> Self {
        use std::os::unix::process::CommandExt as _;
        // One process (no shell that would leave its sleep behind when killed), holding
        // none of the test's output pipes.
        let child = Command::new("sleep")
            .arg0(format!("sleep-{MARKER}"))
            .arg("600")
            .env("BYSTANDER_SECRET", MARKER)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn other_processes_cannot_be_read() {
    if !confined() {
        return;
    }
    let (_dir, ws) = workspace();
    let bystander = Bystander::start();
    let pid = bystander.pid();
    let host = std::process::id();
    for command in [
        "cat /proc/$PPID/environ".to_string(),
        "cat /proc/*/environ".to_string(),
        "cat /proc/*/cmdline".to_string(),
        format!("cat /proc/{pid}/environ /proc/{pid}/cmdline"),
        format!("cat /proc/{host}/environ /proc/{host}/cmdline"),
        format!("head -c 4096 /proc/{host}/mem"),
        format!("ls -l /proc/{host}/fd/ /proc/{pid}/fd/"),
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done".to_string(),
        "ps -eo pid,args 2>&1 || true".to_string(),
    ] {
        let output = run(&ws, &command);
        assert_no_marker(&output, &command);
    }
    // What the command sees of processes: its own tree only.
    let listed = run(&ws, "ls -d /proc/[0-9]* | wc -l; echo $$");
    let text = all_output(&listed);
    let mut lines = text.lines();
    let count: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(count <= 4, "the command sees {count} processes:\n{text}");
    assert_eq!(
        lines.next(),
        Some("1"),
        "the shell is PID 1 of its own namespace"
    );
}

#[test]
fn other_processes_cannot_be_signalled() {
    if !confined() {
        return;
    }
    let (_dir, ws) = workspace();
    let mut bystander = Bystander::start();
    let pid = bystander.pid();
    // By pid, and by scanning /proc for anything that is not the command's own.
    let output = run(
        &ws,
        &format!(
            "kill -9 {pid}; for p in /proc/[0-9]*; do n=${{p#/proc/}}; \
             [ \"$n\" != 1 ] && [ \"$n\" != $BASHPID ] && kill -9 $n; done; true"
        ),
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        bystander.alive(),
        "the command killed a process outside it: {}",
        all_output(&output)
    );
}

#[test]
fn files_outside_the_workspace_cannot_be_read() {
    if !confined() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    // A workspace root with two users, a state directory, a secret file elsewhere.
    let ws = root.join("workspaces/alice");
    let other = root.join("workspaces/bob");
    let state = root.join("state");
    for dir in [
        &ws,
        &other,
        &state.join("history"),
        &state.join("plugin-cache"),
    ] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let secret_file = root.join("secret.txt");
    std::fs::write(&secret_file, MARKER).unwrap();
    std::fs::write(other.join("notes.md"), MARKER).unwrap();
    std::fs::write(state.join("history/bob.jsonl"), MARKER).unwrap();
    std::fs::write(state.join("audit.jsonl"), MARKER).unwrap();
    std::fs::write(state.join("plugin-cache/x.cwasm"), MARKER).unwrap();
    // The host user's home, as on a laptop running `agent-host telegram`.
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let credentials = tempfile::Builder::new()
        .prefix(".agent-host-test-credentials-")
        .tempfile_in(&home)
        .unwrap();
    std::fs::write(credentials.path(), MARKER).unwrap();
    let credentials = credentials.path().to_path_buf();

    let secret = secret_file.display();
    let commands = [
        format!("cat {secret}"),
        format!("cat {}/notes.md", other.display()),
        "cat ../bob/notes.md".to_string(),
        format!("cat {}/history/*.jsonl {0}/audit.jsonl", state.display()),
        format!("grep -r {MARKER} {} {}", state.display(), root.display()),
        format!("cat {}", credentials.display()),
        format!("ls -a {}; cat ~/.aws/credentials", home.display()),
        format!("ln -s {secret} link; cat link"),
        format!("cat /proc/self/root{secret}"),
        "cat /proc/self/cwd/../bob/notes.md".to_string(),
        format!("cat /proc/1/root{secret}"),
        "find / -name 'secret.txt' 2>/dev/null; find / -path '*bob*' 2>/dev/null | head"
            .to_string(),
        format!(
            "grep -rs {MARKER} / --exclude-dir=usr --exclude-dir=proc --exclude-dir=sys \
             --exclude-dir=opt -l | head"
        ),
        format!("cp {secret} copied; cat copied"),
        format!("tar -cf - {} 2>&1 | strings", root.display()),
    ];
    for command in &commands {
        let output = run(&ws, command);
        assert_no_marker(&output, command);
    }
    let _ = std::fs::remove_file(credentials);
}

#[test]
fn raw_devices_cannot_be_read() {
    if !confined() {
        return;
    }
    let (_dir, ws) = workspace();
    let devices: Vec<PathBuf> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            use std::os::unix::fs::FileTypeExt as _;
            std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
        })
        .collect();
    assert!(
        !devices.is_empty(),
        "no block device to try on this machine"
    );
    // Disks first (vda, sda, nvme0n1, ...), then whatever else there is.
    let mut devices = devices;
    devices.sort_by_key(|path| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let disk = ["vd", "sd", "xvd", "nvme"]
            .iter()
            .any(|p| name.starts_with(p));
        (!disk, name)
    });
    for device in devices.iter().take(4) {
        let output = run(&ws, &format!("head -c 512 {} | wc -c", device.display()));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "0",
            "{} was readable",
            device.display()
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("Permission denied"),
            "{}: {}",
            device.display(),
            all_output(&output)
        );
    }
    for path in ["/dev/mem", "/dev/kmsg", "/dev/console"] {
        if Path::new(path).exists() {
            let output = run(&ws, &format!("head -c 16 {path} | wc -c"));
            assert!(
                all_output(&output).contains("Permission denied"),
                "{path} was readable"
            );
        }
    }
}

#[test]
fn a_command_has_no_privileges() {
    if !confined() {
        return;
    }
    let (_dir, ws) = workspace();
    let output = run(&ws, "grep Cap /proc/self/status");
    let text = all_output(&output);
    for line in text.lines() {
        let value = line.split_whitespace().nth(1).unwrap_or("");
        assert!(
            value.chars().all(|c| c == '0'),
            "a capability set is not empty: {text}"
        );
    }
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        run(&ws, "grep NoNewPrivs /proc/self/status")
            .stdout
            .ends_with(b"1\n"),
        "no_new_privs is not set"
    );
    for command in [
        "unshare -r true",
        "unshare -U true",
        "unshare -Ur true",
        "unshare -n true",
        "mkdir -p m && mount -t tmpfs none m",
        "chroot / true",
        // init_module (what insmod calls), by its number on x86_64 and aarch64.
        "PATH=/usr/bin:/bin python3 -c 'import ctypes, platform; \
         n = {\"x86_64\": 175, \"aarch64\": 105}[platform.machine()]; \
         r = ctypes.CDLL(None, use_errno=True).syscall(n, None, 0, b\"\"); \
         exit(0 if r == 0 else 1)'",
        "echo 1 > /proc/sys/kernel/sysrq",
        "hostname pwned",
    ] {
        let output = run(&ws, command);
        assert_ne!(
            output.exit_code,
            Some(0),
            "`{command}` succeeded: {}",
            all_output(&output)
        );
    }
}

#[test]
fn ordinary_tools_still_work() {
    if !confined() {
        return;
    }
    let (_dir, ws) = workspace();
    let git = run(
        &ws,
        "set -e; git init -q; git config user.email a@b; git config user.name a; \
         echo one > f; git add f; git commit -qm one; echo two >> f; git diff --stat; \
         git status --short",
    );
    assert_eq!(git.exit_code, Some(0), "git: {}", all_output(&git));
    assert!(
        all_output(&git).contains("1 file changed"),
        "{}",
        all_output(&git)
    );

    std::fs::write(
        ws.join("test_x.py"),
        "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(1 + 1, 2)\n",
    )
    .unwrap();
    let python = run(&ws, "PATH=/usr/bin:/bin python3 -m unittest -q 2>&1");
    assert_eq!(python.exit_code, Some(0), "python: {}", all_output(&python));

    std::fs::write(ws.join("Makefile"), "all:\n\techo made > made.txt\n").unwrap();
    let make = run(&ws, "make -s && cat made.txt");
    assert_eq!(make.exit_code, Some(0), "make: {}", all_output(&make));

    let npm = run(&ws, "npm --version");
    assert_eq!(npm.exit_code, Some(0), "npm: {}", all_output(&npm));

    // Pipes, process substitution (/dev/fd), job control, nproc.
    let shell = run(
        &ws,
        "diff <(echo a) <(echo a) && nproc && ps -o pid= -p $$ | wc -l",
    );
    assert_eq!(shell.exit_code, Some(0), "shell: {}", all_output(&shell));
}

#[test]
fn cargo_builds_with_the_toolchain_made_readable() {
    if !confined() {
        return;
    }
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
        .filter(|p| p.is_dir());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .filter(|p| p.is_dir());
    let (Some(rustup_home), Some(cargo_home)) = (rustup_home, cargo_home) else {
        agent_host_tests::skip("no rustup toolchain under $HOME to make readable");
        return;
    };
    let runner = CommandRunner::new(ExecSettings {
        readable_paths: vec![rustup_home.clone(), cargo_home.join("bin")],
        env: vec!["RUSTUP_HOME".into(), "RUSTUP_TOOLCHAIN".into()],
        ..Default::default()
    });
    let (_dir, ws) = workspace();
    std::fs::create_dir(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        ws.join("src/main.rs"),
        "fn main() { println!(\"tiny ran\"); }\n",
    )
    .unwrap();
    let command = format!(
        "export RUSTUP_HOME={}; {}/cargo run -q --offline",
        rustup_home.display(),
        cargo_home.join("bin").display()
    );
    let output = run_in(&runner, &ws, &command);
    assert_eq!(output.exit_code, Some(0), "cargo: {}", all_output(&output));
    assert!(all_output(&output).contains("tiny ran"));
    // Without the toolchain made readable, the same command cannot even start cargo.
    let (_dir2, ws2) = workspace();
    std::fs::create_dir(ws2.join("src")).unwrap();
    std::fs::copy(ws.join("Cargo.toml"), ws2.join("Cargo.toml")).unwrap();
    std::fs::copy(ws.join("src/main.rs"), ws2.join("src/main.rs")).unwrap();
    let refused = run(&ws2, &command);
    assert_ne!(refused.exit_code, Some(0));
}

#[test]
fn a_missing_mechanism_refuses_commands_unless_the_operator_allows_it() {
    let (_dir, ws) = workspace();
    let forced_off = || {
        let mut confinement = Confinement::probe(&ExecSettings::default());
        confinement.namespaces = Err("forced off by the test".to_string());
        confinement
    };
    let strict = CommandRunner::with_confinement(ExecSettings::default(), forced_off());
    let error = strict
        .run(&CommandRequest {
            command_line: "true",
            workspace: &ws,
            cwd: &ws,
            timeout: Duration::from_secs(10),
            cancel: None,
        })
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ExecError::Unconfined(_)), "{message}");
    assert!(
        message.contains("processes")
            && message.contains("forced off by the test")
            && message.contains("exec_allow_unconfined = true"),
        "{message}"
    );
    let allowed = ExecSettings {
        allow_unconfined: true,
        ..Default::default()
    };
    let lenient = CommandRunner::with_confinement(allowed, forced_off());
    assert!(lenient.refusal().is_none());
    let output = run_in(&lenient, &ws, "echo ran");
    assert_eq!(output.stdout, b"ran\n");
    // What is left without the PID namespace: Landlock's ptrace scoping still hides other
    // processes' environments and memory (their command lines are visible: the README
    // says so).
    if runner().confinement().landlock.is_ok() {
        let bystander = Bystander::start();
        let pid = bystander.pid();
        let output = run_in(
            &lenient,
            &ws,
            &format!("cat /proc/{pid}/environ; head -c 64 /proc/{pid}/mem; ls /proc/{pid}/fd"),
        );
        assert_no_marker(&output, "environ without a PID namespace");
        assert!(all_output(&output).contains("Permission denied"));
    }
}

#[test]
fn private_places_beneath_a_readable_tree_refuse_to_start() {
    let shared = tempfile::tempdir().unwrap();
    let shared_path = shared.path().canonicalize().unwrap();
    let state = shared_path.join("state");
    let config = format!("state_dir = {state:?}\nexec_readable_paths = [{shared_path:?}]\n",);
    let error = agent_host::config::Config::from_toml(&config)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("state_dir") && error.contains("exec_readable_paths"),
        "{error}"
    );
    // A system tree: /usr is readable by every command.
    let error = agent_host::config::Config::from_toml("state_dir = \"/usr/local/agent-host\"")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("state_dir") && error.contains("/usr"),
        "{error}"
    );
    // The audit log on its own, and a state dir inside the workspace root.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = format!(
        "state_dir = {:?}\naudit_log = {:?}\nexec_writable_paths = [{shared_path:?}]\n",
        elsewhere.path(),
        shared_path.join("audit.jsonl")
    );
    let error = agent_host::config::Config::from_toml(&config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("audit_log"), "{error}");
    let config = format!(
        "state_dir = {:?}\nworkspace_root = {:?}\n",
        elsewhere.path().join("state"),
        elsewhere.path()
    );
    let error = agent_host::config::Config::from_toml(&config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("workspace_root"), "{error}");
}

/// Runs `test` on a thread of its own in a new network namespace with a loopback up and
/// `addresses` on it: only this thread (and what it starts) is there, so nothing of the
/// test ever reaches a real network.
fn in_test_network<T: Send + 'static>(
    addresses: &[&str],
    test: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let addresses: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    std::thread::spawn(move || {
        // SAFETY: unshare with a flag; it changes only this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            agent_host_tests::skip(&format!(
                "cannot make a test network namespace: {}",
                std::io::Error::last_os_error()
            ));
            return None;
        }
        let ip = |args: &[&str]| {
            let status = Command::new("ip")
                .args(args)
                .status()
                .expect("ip (iproute2) runs");
            assert!(status.success(), "ip {args:?} failed");
        };
        ip(&["link", "set", "lo", "up"]);
        for address in &addresses {
            // `nodad`: without it a new IPv6 address stays "tentative" until the kernel's
            // duplicate-address check runs on a workqueue, and binding it fails with
            // EADDRNOTAVAIL on a busy machine.
            let (prefix, flags) = if address.contains(':') {
                ("128", &["nodad"][..])
            } else {
                ("32", &[][..])
            };
            let with_prefix = format!("{address}/{prefix}");
            ip(&[&["addr", "add", &with_prefix, "dev", "lo"][..], flags].concat());
        }
        Some(test())
    })
    .join()
    .unwrap()
}

/// Binds `address:port`, waiting (up to 10 s) while the kernel still reports the address
/// as not yet assignable: an address just added may need a moment to become usable.
fn bind_when_ready(address: std::net::IpAddr, port: u16) -> std::net::TcpListener {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match std::net::TcpListener::bind((address, port)) {
            Ok(listener) => return listener,
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrNotAvailable
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("cannot listen on {address}:{port}: {error}"),
        }
    }
}

#[test]
fn credential_endpoints_are_unreachable_while_the_network_is_on() {
    if !confined() {
        return;
    }
    let filter_holds = runner()
        .promises()
        .iter()
        .any(|p| p.name == "credentials" && p.holds);
    if !filter_holds {
        agent_host_tests::skip("the credential-endpoint filter is not enforced on this host");
        return;
    }
    let endpoints = ["169.254.169.254", "169.254.170.2", "fd00:ec2::254"];
    let ordinary = "10.77.0.1";
    let mut all: Vec<&str> = endpoints.to_vec();
    all.push(ordinary);
    let results = in_test_network(&all.clone(), move || {
        let listeners: Vec<std::net::TcpListener> = all
            .iter()
            .map(|a| {
                let address: std::net::IpAddr = a.parse().unwrap();
                bind_when_ready(address, 80)
            })
            .collect();
        // The host itself still reaches every endpoint (its SDK needs them).
        for a in &all {
            let address: std::net::IpAddr = a.parse().unwrap();
            std::net::TcpStream::connect((address, 80)).expect("the host reaches it");
        }
        let (_dir, ws) = workspace();
        let probe = |target: &str| {
            let output = run(
                &ws,
                &format!(
                    "PATH=/usr/bin:/bin python3 -c \"import socket,sys; \
                     f = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET; \
                     s = socket.socket(f); s.settimeout(5); s.connect((sys.argv[1], 80)); \
                     print('reached')\" '{target}' 2>&1 | tail -1"
                ),
            );
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        };
        let mut results = vec![(ordinary.to_string(), probe(ordinary))];
        for endpoint in endpoints {
            results.push((endpoint.to_string(), probe(endpoint)));
        }
        // An IPv4 endpoint through an IPv4-mapped IPv6 address.
        let mapped = "::ffff:169.254.169.254";
        results.push((mapped.to_string(), probe(mapped)));
        // And with bash's own /dev/tcp.
        let bash = run(&ws, "exec 3<>/dev/tcp/169.254.169.254/80 && echo reached");
        results.push(("bash /dev/tcp".to_string(), all_output(&bash)));
        drop(listeners);
        results
    });
    let Some(results) = results else { return };
    let (first, reached) = &results[0];
    assert_eq!(
        reached, "reached",
        "the ordinary address {first} was not reached"
    );
    for (target, outcome) in &results[1..] {
        assert!(
            !outcome.contains("reached") && outcome.contains("not permitted"),
            "{target}: {outcome}"
        );
    }
}
