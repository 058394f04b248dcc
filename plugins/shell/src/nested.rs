//! Nested scripts: text a command hands to a shell (`bash -c '…'`, `eval …`, `su -c '…'`,
//! a heredoc or here-string fed to `sh`) runs as commands too, so it is parsed as a
//! script of its own and kept in the command's `scripts`.

use crate::Budget;
use crate::parser::parse_script;
use crate::syntax::{Command, Node, Script, basename};

/// Programs that run a script: `-c` takes it as an argument, otherwise stdin has it.
pub const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "rbash", "fish", "csh", "tcsh",
];

/// Parses the scripts the commands of `script` (parsed at `nesting`) hand to shells, at
/// every depth, each one level deeper.
pub(crate) fn parse_nested(script: &mut Script, nesting: usize, budget: &mut Budget) {
    for pipeline in &mut script.pipelines {
        for stage in &mut pipeline.stages {
            for node in stage {
                match node {
                    Node::Group(inner) => parse_nested(inner, nesting, budget),
                    Node::Command(command) => {
                        for inner in &mut command.substitutions {
                            parse_nested(inner, nesting, budget);
                        }
                        for text in handed_scripts(command) {
                            let mut inner = parse_script(&text, nesting + 1, budget);
                            parse_nested(&mut inner, nesting + 1, budget);
                            command.scripts.push(inner);
                        }
                    }
                }
            }
        }
    }
}

/// The scripts `command` hands to a shell: the `-c` argument of a shell, the arguments
/// of `eval` and `watch`, the `-c` argument of `su`, `runuser`, `script`, `flock` and `sg`,
/// a shell's heredocs and here-strings.
fn handed_scripts(command: &Command) -> Vec<String> {
    let mut texts = Vec::new();
    for view in command.views() {
        let name = basename(&view[0]);
        if SHELLS.contains(&name) {
            match shell_c_argument(view) {
                Some(text) => texts.push(text.to_string()),
                None => texts.extend(command.stdin_texts.iter().cloned()),
            }
        } else if name == "eval" && view.len() > 1 {
            texts.push(view[1..].join(" "));
        } else if name == "watch" {
            // `watch` runs its arguments, joined, with `sh -c`.
            let mut at = 1;
            while let Some(word) = view.get(at).filter(|w| w.starts_with('-')) {
                let with_argument =
                    matches!(word.as_str(), "-n" | "--interval" | "-q" | "--equexit");
                at += if with_argument { 2 } else { 1 };
            }
            if at < view.len() {
                texts.push(view[at..].join(" "));
            }
        } else if matches!(name, "su" | "runuser" | "script" | "flock" | "sg") {
            let mut args = view[1..].iter();
            while let Some(arg) = args.next() {
                if arg == "-c" || arg == "--command" {
                    if let Some(text) = args.next() {
                        texts.push(text.clone());
                    }
                } else if let Some(text) = arg.strip_prefix("--command=") {
                    texts.push(text.to_string());
                }
            }
        }
    }
    // Several views of one command (`sudo bash bash <<< …`) may hand over the same text.
    texts.sort();
    texts.dedup();
    texts
}

/// The script of `sh -c SCRIPT …` (options such as `-e`, `-lc`, `-o pipefail` allowed
/// before it), or `None` when the shell has no `-c`.
fn shell_c_argument(view: &[String]) -> Option<&str> {
    let mut has_c = false;
    let mut at = 1;
    while at < view.len() {
        let arg = view[at].as_str();
        if arg == "--" || arg == "-" {
            at += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            at += if matches!(long, "rcfile" | "init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (arg.starts_with('-') || arg.starts_with('+')) && arg.len() > 1 {
            let letters = &arg[1..];
            has_c |= letters.contains('c');
            at += if letters.contains(['o', 'O']) { 2 } else { 1 };
            continue;
        }
        break;
    }
    if has_c {
        view.get(at).map(String::as_str)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::commands;

    #[test]
    fn shells_given_scripts_are_parsed() {
        assert_eq!(
            commands("bash -c 'rm -rf /'"),
            ["bash -c rm -rf /", "rm -rf /"]
        );
        assert_eq!(
            commands("sh -ec \"git push -f\" name"),
            ["sh -ec git push -f name", "git push -f"]
        );
        assert_eq!(
            commands("bash -o pipefail -c 'a | b'"),
            ["bash -o pipefail -c a | b", "a", "b"]
        );
        assert_eq!(
            commands("sudo -u root bash -c 'mkfs /dev/x'"),
            ["sudo -u root bash -c mkfs /dev/x", "mkfs /dev/x"]
        );
        assert_eq!(commands("eval 'rm -rf /'"), ["eval rm -rf /", "rm -rf /"]);
        assert_eq!(
            commands("su -c 'reboot' root"),
            ["su -c reboot root", "reboot"]
        );
        assert_eq!(
            commands("watch -n 5 'git push -f'"),
            ["watch -n 5 git push -f", "git push -f"]
        );
        assert_eq!(
            commands("flock /tmp/l -c 'reboot'"),
            ["flock /tmp/l -c reboot", "reboot"]
        );
        assert_eq!(
            commands("bash <<EOF\nrm -rf /\nEOF\nls"),
            ["bash", "rm -rf /", "ls"]
        );
        assert_eq!(commands("sh <<< 'reboot'"), ["sh", "reboot"]);
        assert_eq!(
            commands("bash -c \"bash -c 'rm -rf /'\""),
            ["bash -c bash -c 'rm -rf /'", "bash -c rm -rf /", "rm -rf /"]
        );
        // A script file is not parsed; neither are a non-shell's heredocs.
        assert_eq!(commands("bash run.sh"), ["bash run.sh"]);
        assert_eq!(commands("cat <<EOF\nrm -rf /\nEOF"), ["cat"]);
    }
}
