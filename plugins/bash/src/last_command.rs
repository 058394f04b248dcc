//! Which command's exit status a script returns, and whether its exit code 1 is an answer.
//!
//! A shell script exits with the status of the last command it ran, so `cat log | grep
//! error` exiting 1 means "no line matched", not "the command failed". Like Claude Code,
//! the Bash tool does not report that as an error for a few commands whose exit code 1 is
//! an answer. The last command is found by `agent-shell`, the parser `policy-commands`
//! checks lines with, so the tool never reads a command the policy did not see; a line
//! too complex for it is treated as an ordinary command.

use agent_shell::basename;

/// Commands whose exit code 1 answers a question, with the answer.
const ANSWERS: &[(&str, &str)] = &[
    ("grep", "no matches"),
    ("rg", "no matches"),
    ("find", "some paths could not be searched"),
    ("diff", "the files differ"),
    ("test", "the condition is false"),
    ("[", "the condition is false"),
];

/// What exit code 1 of `script` means when its last command is one of those answering
/// with it (`no matches` for `grep`), or `None` when exit code 1 is a failure.
pub fn exit_1_meaning(script: &str) -> Option<&'static str> {
    let name = last_command_name(script)?;
    ANSWERS
        .iter()
        .find(|(command, _)| *command == name)
        .map(|(_, meaning)| *meaning)
}

/// The name (without its directory) of the command whose exit status `script` returns.
fn last_command_name(script: &str) -> Option<String> {
    let parsed = agent_shell::parse(script);
    if parsed.too_complex {
        return None;
    }
    let argv = parsed.script.last_command()?;
    Some(basename(&argv[0]).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(script: &str) -> Option<String> {
        last_command_name(script)
    }

    #[test]
    fn the_last_simple_command_is_found() {
        let cases = [
            ("grep foo file", "grep"),
            ("cat x | grep foo", "grep"),
            ("cat x |& grep foo", "grep"),
            ("grep foo x && echo ok", "echo"),
            ("false || rg -n 'a|b;c' src", "rg"),
            ("cd src; rg \"x;y\" && diff a b", "diff"),
            ("LC_ALL=C grep -c x f", "grep"),
            ("/usr/bin/find . -name '*.rs'", "find"),
            ("[ -f x ]", "["),
            ("test -d y", "test"),
            ("echo $(grep x y)", "echo"),
            ("echo $((1 + 2))", "echo"),
            ("echo `grep x y`", "echo"),
            ("grep x <<EOF\nline; ls\nEOF", "grep"),
            ("cat <<'END' | grep x\nfoo && ls\nEND\n", "grep"),
            ("cat <<-EOF\n\tls\n\tEOF\ndiff a b", "diff"),
            ("grep x file # and ls", "grep"),
            ("grep x file\n# ls\n\n", "grep"),
            ("diff a b 2>&1", "diff"),
            ("diff a b &> out", "diff"),
            ("diff a b > out 2> err", "diff"),
            ("> out grep x", "grep"),
            ("(cd a && grep x)", "grep"),
            ("{ cd a; grep x; } > out", "grep"),
            ("if true; then grep x y; fi", "grep"),
            ("grep \\\n  -r x .", "grep"),
            ("x=1; ! test -n \"$x\"", "test"),
            ("echo 'grep'", "echo"),
            ("\\grep x", "grep"),
            ("env A=1 rg x", "rg"),
            ("grep x <<< \"$var\"", "grep"),
            ("diff <(sort a) <(sort b)", "diff"),
            ("sort a > >(tee x) && grep -q y <(ls)", "grep"),
        ];
        for (script, name) in cases {
            assert_eq!(last(script).as_deref(), Some(name), "{script:?}");
        }
    }

    #[test]
    fn empty_scripts_have_no_command() {
        assert_eq!(last(""), None);
        assert_eq!(last("  \n# only a comment\n"), None);
        assert_eq!(last("A=1"), None);
    }

    #[test]
    fn only_some_commands_answer_with_exit_1() {
        assert_eq!(exit_1_meaning("ls | grep -q x"), Some("no matches"));
        assert_eq!(exit_1_meaning("rg TODO"), Some("no matches"));
        assert_eq!(exit_1_meaning("diff -u a b"), Some("the files differ"));
        assert_eq!(exit_1_meaning("[ -d x ]"), Some("the condition is false"));
        assert_eq!(exit_1_meaning("test -f x"), Some("the condition is false"));
        assert_eq!(
            exit_1_meaning("find / -name x"),
            Some("some paths could not be searched")
        );
        assert_eq!(exit_1_meaning("grep x f && make"), None);
        assert_eq!(exit_1_meaning("cargo test"), None);
        assert_eq!(exit_1_meaning("egrep x f"), None);
    }
}
