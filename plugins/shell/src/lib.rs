//! The one bash parser of the guest plugins: enough of the grammar to find every simple
//! command a command line may run, with its words as bash would pass them.
//!
//! The `Bash` tool reads the exit status of a line's last command (`grep` exiting 1 is
//! "no matches") and `policy-commands` checks every command of the line; with one parser
//! they cannot disagree about what the line runs.
//!
//! - `syntax`: the tree (scripts, pipelines, groups, simple commands);
//! - `parser`: quotes, escapes, comments, substitutions, heredocs, redirections;
//! - `nested`: the scripts commands hand to shells (`bash -c`, `eval`, `sh <<EOF`);
//! - `wrappers`: the commands wrappers run (`sudo`, `env`, `xargs`, `find -exec`);
//! - `last`: the command whose exit status a script returns.

mod last;
mod nested;
mod parser;
mod syntax;
mod wrappers;

pub use nested::SHELLS;
pub use syntax::{Command, Node, Pipeline, Script, basename, node_commands};

/// How deep substitutions and nested shells may go before the line is refused as too
/// complex to check (a bound on recursion, not a limit anyone should meet).
pub const MAX_NESTING: usize = 24;

/// How many characters may be parsed in all, nested scripts included, before the line is
/// refused as too complex to check (wrappers can hand the same text to several shells).
pub const MAX_PARSED_CHARS: usize = 1 << 20;

/// The result of parsing a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// What was found.
    pub script: Script,
    /// True when nesting went past [`MAX_NESTING`] or the nested scripts past
    /// [`MAX_PARSED_CHARS`]: part of the line was not looked at.
    pub too_complex: bool,
}

/// What parsing may still spend, and whether it ran out.
#[derive(Debug)]
struct Budget {
    chars_left: usize,
    exhausted: bool,
}

/// Parses `line` and, recursively, the scripts its commands hand to shells.
pub fn parse(line: &str) -> Parsed {
    let mut budget = Budget {
        chars_left: MAX_PARSED_CHARS,
        exhausted: false,
    };
    let mut script = parser::parse_script(line, 0, &mut budget);
    nested::parse_nested(&mut script, 0, &mut budget);
    Parsed {
        script,
        too_complex: budget.exhausted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's argv, at every depth, as space-joined text: what the policy checks.
    pub(crate) fn commands(line: &str) -> Vec<String> {
        let parsed = parse(line);
        assert!(!parsed.too_complex, "{line}");
        parsed
            .script
            .commands()
            .iter()
            .map(|c| c.argv().join(" "))
            .filter(|c| !c.is_empty())
            .collect()
    }

    #[test]
    fn deep_nesting_is_reported_not_overflowed() {
        let line = "$(".repeat(10_000);
        assert!(parse(&line).too_complex);
        let line = "bash -c \"$(echo x)\"";
        assert!(!parse(line).too_complex);
        // Wrappers handing one text to many shells, nested: each text is parsed once.
        let mut line = String::from("rm -rf /");
        for _ in 0..8 {
            let quoted = line.replace('\'', "'\\''");
            line = format!("sudo{} <<< '{quoted}'", " bash".repeat(8));
        }
        let parsed = parse(&line);
        assert!(!parsed.too_complex);
        assert!(
            parsed
                .script
                .commands()
                .iter()
                .any(|c| c.argv().join(" ") == "rm -rf /")
        );
        // Past the budget, the line is reported as too complex.
        let long = "x ".repeat(MAX_PARSED_CHARS);
        assert!(parse(&long).too_complex);
    }

    #[test]
    fn odd_input_never_panics() {
        for line in [
            "", "\\", "'", "\"", "$", "$(", "`", "(", ")", "{", "}", "<<", "<<<", ">", "2>&",
            "$'\\", "$'\\x", "a <<EOF", "${", "$((", "|", "||", "&&", ";;", "a=(", "<(", "\"$(",
        ] {
            let _ = parse(line).script.last_command();
        }
    }
}
