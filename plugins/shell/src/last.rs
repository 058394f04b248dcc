//! The last command: a script exits with the status of the last command it ran, which
//! is how the `Bash` tool tells `… | grep x` finding nothing (exit 1) from a failure.
//! It is read off the same tree the policy checks, so it is always a command the policy
//! saw.

use crate::nested::SHELLS;
use crate::syntax::{Command, Node, Script, basename};
use crate::wrappers::status_view;

impl Script {
    /// The command whose exit status the script returns, as its words from the command
    /// name on: the last simple command that runs something (in groups too, not in
    /// substitutions), past wrappers that pass the status on (`sudo grep x` is `grep x`)
    /// and into the one script a shell or `eval` is handed (`bash -c 'cd a && grep x'`
    /// is `grep x`). `None` when the script runs no command (`A=1`, a comment).
    pub fn last_command(&self) -> Option<&[String]> {
        let command = self.last_simple_command()?;
        let view = status_view(command.argv());
        let name = basename(&view[0]);
        if (SHELLS.contains(&name) || name == "eval")
            && let [inner] = command.scripts.as_slice()
            && let Some(last) = inner.last_command()
        {
            return Some(last);
        }
        Some(view)
    }

    fn last_simple_command(&self) -> Option<&Command> {
        self.pipelines
            .iter()
            .rev()
            .flat_map(|pipeline| pipeline.stages.iter().rev())
            .flat_map(|stage| stage.iter().rev())
            .find_map(|node| match node {
                Node::Command(command) => (!command.argv().is_empty()).then_some(command),
                Node::Group(inner) => inner.last_simple_command(),
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::parse;

    /// The tool's last command, and every command (wrapped ones included) the policy
    /// checks, as space-joined texts.
    fn tool_and_policy(line: &str) -> (Option<String>, Vec<String>) {
        let parsed = parse(line);
        assert!(!parsed.too_complex, "{line}");
        let last = parsed.script.last_command().map(|argv| argv.join(" "));
        let checked = parsed
            .script
            .commands()
            .iter()
            .flat_map(|command| command.views())
            .map(|view| view.join(" "))
            .collect();
        (last, checked)
    }

    /// Lines the tool's old lexer and the policy's old parser read differently (the
    /// lexer found another last command, or none), then lines where the tool now
    /// follows the policy into wrappers and shells.
    #[test]
    fn the_tool_reads_a_command_the_policy_checked() {
        let cases = [
            // `>|` is a redirection, not a pipe into a command `out`.
            ("grep x f >| out", "grep x f"),
            // `$'…'` may hold an escaped quote.
            ("echo $'it\\'s'; grep -c x f", "grep -c x f"),
            // A quoted `)` does not close `$( … )`, nor does a heredoc's `(` open one.
            ("echo $(echo ')'); rg y", "rg y"),
            ("x=$(cat <<EOF\n(\nEOF\n); grep y", "grep y"),
            // A quoted heredoc delimiter may hold blanks.
            ("cat <<'E O F'\nls; x\nE O F\ndiff a b", "diff a b"),
            // An array assignment is no subshell running a command `b`.
            ("grep x f; a=(b c)", "grep x f"),
            // Wrappers and shells exit with the status of the command they run…
            ("sudo -u me timeout 5 grep x f", "grep x f"),
            ("bash -c 'cd src && rg -n TODO'", "rg -n TODO"),
            ("bash <<'EOF'\nmake\nfind . -name x\nEOF", "find . -name x"),
            ("if true; then (cd a; [ -f x ]); fi", "[ -f x ]"),
            // …but `xargs` exits with a status of its own, and `command -v` runs nothing.
            ("ls | xargs grep x", "xargs grep x"),
            ("command -v rg", "command -v rg"),
        ];
        for (line, expected) in cases {
            let (last, checked) = tool_and_policy(line);
            assert_eq!(last.as_deref(), Some(expected), "{line:?}");
            assert!(
                checked.contains(&expected.to_string()),
                "{line:?}: {checked:?}"
            );
        }
    }

    #[test]
    fn lines_running_nothing_have_no_last_command() {
        for line in ["", "# grep", "A=1", "for x in a b", "fi"] {
            assert_eq!(parse(line).script.last_command(), None, "{line:?}");
        }
        // An empty script leaves the shell as the last command.
        let parsed = parse("bash -c ''");
        assert_eq!(
            parsed.script.last_command(),
            Some(&parsed.script.commands()[0].words[..])
        );
    }
}
