//! From what the command produced to the text the model sees, and whether it is an error.
//!
//! The conventions (Claude Code's): stdout then stderr in one text; a failure is an error
//! result starting with `Exit code N`; a timeout is `Exit code 143` and `Command timed out
//! after <duration>`; an empty successful output is a short note rather than nothing.

use agent_plugin_sdk::host::ExecOutput;

use crate::last_command;

/// The exit code reported for a command killed on timeout (128 + SIGTERM), as Claude Code.
pub const TIMEOUT_EXIT_CODE: i32 = 143;

/// The note added when the host cut the output.
pub const TRUNCATED_NOTE: &str = "[Output truncated: the command printed more than the host \
keeps, and the rest was dropped. Redirect its output to a file (for example in $TMPDIR, \
which is inside the workspace) and use Read or Grep on that file.]";

/// The text shown for a successful command that printed nothing.
pub const NO_OUTPUT: &str = "(no output)";

/// How a command ended, as the model is told.
#[derive(Debug, PartialEq, Eq)]
pub struct Ending {
    /// The result is an error result.
    pub error: bool,
    /// Lines before the output (`Exit code 2`).
    pub header: Vec<String>,
    /// What stands for the output when there is none (may be empty).
    pub if_empty: String,
}

/// How `output` of `command`, run with `timeout_ms`, ended.
pub fn ending(output: &ExecOutput, command: &str, timeout_ms: u32) -> Ending {
    let fail = |header: Vec<String>| Ending {
        error: true,
        header,
        if_empty: String::new(),
    };
    match output.exit_code {
        _ if output.timed_out => fail(vec![
            format!("Exit code {TIMEOUT_EXIT_CODE}"),
            format!("Command timed out after {}", duration(timeout_ms)),
        ]),
        None => fail(vec!["Command was killed by a signal".into()]),
        Some(0) => Ending {
            error: false,
            header: Vec::new(),
            if_empty: NO_OUTPUT.into(),
        },
        Some(1) => match last_command::exit_1_meaning(command) {
            Some(meaning) => Ending {
                error: false,
                header: Vec::new(),
                if_empty: format!("(exit code 1: {meaning})"),
            },
            None => fail(vec!["Exit code 1".into()]),
        },
        Some(code) => fail(vec![format!("Exit code {code}")]),
    }
}

/// stdout then stderr, as the host returned them (lossy UTF-8), with a newline between
/// them when stdout does not end with one: what a big output's file holds.
pub fn full_text(output: &ExecOutput) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut text = String::with_capacity(stdout.len() + stderr.len() + 1);
    text.push_str(&stdout);
    if !stdout.is_empty() && !stdout.ends_with('\n') && !stderr.is_empty() {
        text.push('\n');
    }
    text.push_str(&stderr);
    text
}

/// stdout then stderr as shown to the model: each without its leading blank lines and
/// trailing whitespace, joined by a newline.
pub fn shown_text(output: &ExecOutput) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    [tidy(&stdout), tidy(&stderr)]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` without leading blank lines and trailing whitespace (indentation of the first
/// line kept).
fn tidy(text: &str) -> &str {
    let text = text.trim_end();
    let content_starts = text
        .char_indices()
        .find(|&(_, c)| !c.is_whitespace())
        .map_or(text.len(), |(at, _)| at);
    let line_starts = text[..content_starts].rfind('\n').map_or(0, |at| at + 1);
    &text[line_starts..]
}

/// The result text: the header lines, the output (or `ending.if_empty`), then the notes,
/// one per line.
pub fn assemble(ending: &Ending, output: &str, notes: &[String]) -> String {
    let body = if output.is_empty() {
        ending.if_empty.as_str()
    } else {
        output
    };
    ending
        .header
        .iter()
        .map(String::as_str)
        .chain(Some(body).filter(|body| !body.is_empty()))
        .chain(notes.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `ms` for people: `850ms`, `5s`, `1.5s`, `2m 0s`, `1h 2m 3s`.
pub fn duration(ms: u32) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return if ms.is_multiple_of(1_000) {
            format!("{}s", ms / 1_000)
        } else {
            format!("{:.1}s", f64::from(ms) / 1_000.0)
        };
    }
    let seconds = ms / 1_000;
    let (hours, minutes, seconds) = (seconds / 3_600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes}m {seconds}s")
    } else {
        format!("{minutes}m {seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(code: Option<i32>, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            exit_code: code,
            stdout: stdout.into(),
            stderr: stderr.into(),
            ..ExecOutput::default()
        }
    }

    fn result(out: &ExecOutput, command: &str) -> (bool, String) {
        let ending = ending(out, command, 120_000);
        (ending.error, assemble(&ending, &shown_text(out), &[]))
    }

    #[test]
    fn success_is_stdout_then_stderr() {
        let out = output(Some(0), "\n\n  one\ntwo\n\n", "warn\n");
        assert_eq!(result(&out, "x"), (false, "  one\ntwo\nwarn".into()));
        assert_eq!(
            result(&output(Some(0), "", "only err\n"), "x"),
            (false, "only err".into())
        );
        assert_eq!(
            result(&output(Some(0), "", ""), "x"),
            (false, "(no output)".into())
        );
    }

    #[test]
    fn failure_starts_with_the_exit_code() {
        let out = output(Some(2), "partial\n", "boom\n");
        assert_eq!(
            result(&out, "make"),
            (true, "Exit code 2\npartial\nboom".into())
        );
        assert_eq!(
            result(&output(Some(1), "", ""), "false"),
            (true, "Exit code 1".into())
        );
    }

    #[test]
    fn exit_1_of_grep_is_an_answer() {
        assert_eq!(
            result(&output(Some(1), "", ""), "grep x f"),
            (false, "(exit code 1: no matches)".into())
        );
        assert_eq!(
            result(&output(Some(1), "--- a\n+++ b\n", ""), "diff a b"),
            (false, "--- a\n+++ b".into())
        );
        assert_eq!(
            result(&output(Some(2), "", "grep: f: No such file\n"), "grep x f"),
            (true, "Exit code 2\ngrep: f: No such file".into())
        );
    }

    #[test]
    fn timeouts_and_signals_are_errors() {
        let out = ExecOutput {
            timed_out: true,
            ..output(None, "tick\n", "")
        };
        let ending = ending(&out, "sleep 999", 5_000);
        assert_eq!(
            (ending.error, assemble(&ending, &shown_text(&out), &[])),
            (
                true,
                "Exit code 143\nCommand timed out after 5s\ntick".into()
            )
        );
        assert_eq!(
            result(&output(None, "", ""), "x"),
            (true, "Command was killed by a signal".into())
        );
    }

    #[test]
    fn notes_follow_the_output() {
        let ending = ending(&output(Some(0), "", ""), "cd /", 1_000);
        assert_eq!(
            assemble(&ending, "", &["Shell cwd was reset to /ws".into()]),
            "(no output)\nShell cwd was reset to /ws"
        );
    }

    #[test]
    fn the_full_text_keeps_everything() {
        assert_eq!(full_text(&output(Some(0), "a", "b\n")), "a\nb\n");
        assert_eq!(full_text(&output(Some(0), "a\n\n", "b")), "a\n\nb");
        assert_eq!(full_text(&output(Some(0), "a", "")), "a");
        let bad = ExecOutput {
            stdout: vec![b'a', 0xff, b'b'],
            ..ExecOutput::default()
        };
        assert_eq!(full_text(&bad), "a\u{fffd}b");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(1_000), "1s");
        assert_eq!(duration(1_500), "1.5s");
        assert_eq!(duration(59_000), "59s");
        assert_eq!(duration(60_000), "1m 0s");
        assert_eq!(duration(120_000), "2m 0s");
        assert_eq!(duration(90_500), "1m 30s");
        assert_eq!(duration(600_000), "10m 0s");
        assert_eq!(duration(3_723_000), "1h 2m 3s");
    }
}
