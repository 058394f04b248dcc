//! Wrappers: commands that run another command given as their arguments (`sudo rm …`,
//! `env A=1 grep …`, `xargs rm`, `find … -exec rm {} ;`). The wrapped command runs as
//! surely as a plain one, so the policy matches it, and the tool reads its exit status.

use crate::syntax::{Command, basename, is_assignment};

/// The wrappers: the name, its options that take a separate argument, and how many
/// positional arguments come before the wrapped command (`timeout 5 cmd`).
/// `find … -exec cmd … ;` is handled apart.
const WRAPPERS: &[(&str, &[&str], usize)] = &[
    (
        "sudo",
        &[
            "-u",
            "-g",
            "-C",
            "-D",
            "-h",
            "-p",
            "-r",
            "-t",
            "-U",
            "-T",
            "--user",
            "--group",
            "--chdir",
            "--host",
            "--prompt",
            "--role",
            "--type",
            "--other-user",
            "--close-from",
            "--command-timeout",
        ],
        0,
    ),
    ("doas", &["-u", "-C"], 0),
    ("env", &["-u", "-C", "--unset", "--chdir"], 0),
    ("nice", &["-n", "--adjustment"], 0),
    ("nohup", &[], 0),
    ("time", &["-f", "-o", "--format", "--output"], 0),
    ("timeout", &["-s", "-k", "--signal", "--kill-after"], 1),
    ("command", &[], 0),
    ("builtin", &[], 0),
    ("exec", &["-a"], 0),
    (
        "xargs",
        &[
            "-I",
            "-L",
            "-l",
            "-n",
            "-P",
            "-s",
            "-d",
            "-E",
            "-e",
            "-a",
            "--max-lines",
            "--max-args",
            "--max-procs",
            "--max-chars",
            "--delimiter",
            "--arg-file",
            "--replace",
        ],
        0,
    ),
    (
        "stdbuf",
        &["-i", "-o", "-e", "--input", "--output", "--error"],
        0,
    ),
    (
        "ionice",
        &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
        0,
    ),
    ("chrt", &[], 1),
    ("taskset", &[], 1),
    ("setsid", &[], 0),
    ("unbuffer", &[], 0),
    (
        "strace",
        &[
            "-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-P", "-S", "-X",
        ],
        0,
    ),
    ("ltrace", &["-o", "-e", "-p", "-s", "-u", "-a", "-n"], 0),
    ("busybox", &[], 0),
    (
        "nsenter",
        &["-t", "-S", "-G", "--target", "--setuid", "--setgid"],
        0,
    ),
    (
        "flock",
        &["-w", "-E", "--timeout", "--conflict-exit-code"],
        1,
    ),
    ("fakeroot", &["-l", "-s", "-i", "-b", "--lib", "--faked"], 0),
    ("chroot", &["--userspec", "--groups"], 1),
    ("caffeinate", &["-t", "-w"], 0),
];

/// Wrappers whose exit status is not known to be the wrapped command's: `xargs` exits
/// 123 when a command fails, `flock` 1 when the lock is taken.
const OWN_STATUS: &[&str] = &["xargs", "flock", "unbuffer", "ltrace", "caffeinate"];

impl Command {
    /// The commands this one may run: itself and, when it is a wrapper such as `sudo`,
    /// `env`, `timeout` or `xargs`, the command it wraps (its options skipped), and so on
    /// for wrappers of wrappers; for `find`, each `-exec`/`-execdir`/`-ok` command.
    pub fn views(&self) -> Vec<&[String]> {
        let mut views = Vec::new();
        let mut next = Some(self.argv());
        while let Some(view) = next.take() {
            if view.is_empty() || views.len() > 16 {
                break;
            }
            views.push(view);
            if basename(&view[0]) == "find" {
                views.extend(find_exec_commands(view));
            } else {
                next = wrapped(view);
            }
        }
        views
    }
}

/// The command whose exit status `argv` exits with: `argv` itself, or the command a
/// wrapper runs when the wrapper passes its status on (`sudo grep x` is `grep x`).
/// `command -v grep` only looks `grep` up, and answers for itself.
pub(crate) fn status_view(argv: &[String]) -> &[String] {
    let mut view = argv;
    while let Some(name) = view.first().map(|first| basename(first))
        && !OWN_STATUS.contains(&name)
        && !(name == "command" && looks_up(view))
        && let Some(inner) = wrapped(view)
    {
        view = inner;
    }
    view
}

/// Whether `command`'s options (`-v`, `-V`, `-pv`) ask it to describe its command.
fn looks_up(view: &[String]) -> bool {
    view[1..]
        .iter()
        .take_while(|word| word.starts_with('-'))
        .any(|option| option.contains(['v', 'V']))
}

/// The command a wrapper runs: after its options (and their arguments), assignments
/// (`env A=1`) and positional arguments; `None` when `view` is no wrapper or wraps
/// nothing.
fn wrapped(view: &[String]) -> Option<&[String]> {
    let name = basename(view.first()?);
    let (_, with_argument, positional) =
        WRAPPERS.iter().find(|(wrapper, _, _)| *wrapper == name)?;
    let mut at = 1;
    while let Some(word) = view.get(at) {
        if word == "--" {
            at += 1;
            break;
        }
        if name == "env" && is_assignment(word) {
            at += 1;
            continue;
        }
        if word.starts_with('-') && word.len() > 1 {
            at += if with_argument.contains(&word.as_str()) {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    let start = at + positional;
    (start < view.len()).then(|| &view[start..])
}

/// The commands of `find`'s `-exec`, `-execdir`, `-ok` and `-okdir` actions.
fn find_exec_commands(view: &[String]) -> Vec<&[String]> {
    let mut commands = Vec::new();
    let mut at = 1;
    while at < view.len() {
        if matches!(view[at].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
            let start = at + 1;
            let end = view[start..]
                .iter()
                .position(|word| word == ";" || word == "+")
                .map_or(view.len(), |offset| start + offset);
            if start < end {
                commands.push(&view[start..end]);
            }
            at = end;
        }
        at += 1;
    }
    commands
}

#[cfg(test)]
mod tests {
    use crate::parse;

    fn views(line: &str) -> Vec<String> {
        let parsed = parse(line);
        let command = parsed.script.commands()[0];
        command.views().iter().map(|v| v.join(" ")).collect()
    }

    #[test]
    fn wrappers_offer_the_wrapped_command() {
        assert_eq!(
            views("sudo -u root nice -n 5 rm -rf /"),
            [
                "sudo -u root nice -n 5 rm -rf /",
                "nice -n 5 rm -rf /",
                "rm -rf /"
            ]
        );
        assert_eq!(
            views("env -i A=1 B=2 timeout -s KILL 5 xargs -n1 rm -rf"),
            [
                "env -i A=1 B=2 timeout -s KILL 5 xargs -n1 rm -rf",
                "timeout -s KILL 5 xargs -n1 rm -rf",
                "xargs -n1 rm -rf",
                "rm -rf"
            ]
        );
        assert_eq!(
            views("find . -name '*.o' -exec rm -f {} \\; -execdir sh -c 'x' +"),
            [
                "find . -name *.o -exec rm -f {} ; -execdir sh -c x +",
                "rm -f {}",
                "sh -c x"
            ]
        );
        assert_eq!(views("sudo -- reboot"), ["sudo -- reboot", "reboot"]);
        // The wrapped command's own arguments are not commands.
        assert_eq!(
            views("xargs grep shutdown"),
            ["xargs grep shutdown", "grep shutdown"]
        );
        assert_eq!(views("find . -name reboot"), ["find . -name reboot"]);
        assert_eq!(views("echo rm -rf /"), ["echo rm -rf /"]);
        assert_eq!(views("sudo"), ["sudo"]);
    }

    #[test]
    fn the_exit_status_passes_through_some_wrappers() {
        let status = |line: &str| {
            let parsed = parse(line);
            super::status_view(parsed.script.commands()[0].argv()).join(" ")
        };
        assert_eq!(status("sudo -u root nice -n 5 grep x"), "grep x");
        assert_eq!(status("env A=1 timeout 5 rg y"), "rg y");
        assert_eq!(status("sudo xargs grep x"), "xargs grep x");
        assert_eq!(
            status("find . -exec grep -q x {} +"),
            "find . -exec grep -q x {} +"
        );
        assert_eq!(status("command grep x"), "grep x");
        assert_eq!(status("command -pv rg"), "command -pv rg");
        assert_eq!(status("sudo"), "sudo");
    }
}
