//! `Bash`: runs a command in the workspace and reports its output as Claude Code does.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use agent_plugin_sdk::serde_json::{Value, json};
use agent_plugin_sdk::{Tool, host, tool_use_error};
use serde::Deserialize;

use crate::cwd::{self, After};
use crate::{format, scratch, script, spill};

/// The timeout when the model gives none, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 120_000;
/// The longest timeout the model may ask for, in milliseconds.
pub const MAX_TIMEOUT_MS: u32 = 600_000;

/// The input of `Bash`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BashInput {
    command: String,
    timeout: Option<f64>,
    /// What the command does, for people watching; not used.
    #[serde(rename = "description")]
    _description: Option<String>,
    run_in_background: Option<bool>,
}

/// The `Bash` tool.
pub struct Bash;

impl Tool for Bash {
    const NAME: &'static str = "Bash";
    type Input = BashInput;

    fn description() -> String {
        "Runs a bash command in the workspace and returns its output: stdout, then stderr.\n\
         - Each call is a fresh `bash -c` with no stdin. The working directory persists \
         between calls (it starts at the workspace root; `cd` moves it, and leaving the \
         workspace puts it back at the root); environment variables, shell variables and \
         functions do not.\n\
         - The command is stopped after `timeout` milliseconds: 120000 (2 minutes) by \
         default, at most 600000 (10 minutes). Background commands are not supported.\n\
         - A command that fails is an error result starting with `Exit code N`. Exit code 1 \
         of a final grep, rg, find, diff or test/[ is an answer (no matches, files differ, \
         condition false), not an error.\n\
         - Output over 30000 characters is saved to a file in the workspace's scratch area \
         (.agent-host/, ignored by git) and only its start is returned, with the file's \
         path: read the rest with Read (offset/limit) or Grep. $TMPDIR is in that scratch \
         area too: put temporary files there.\n\
         - Prefer the dedicated tools to shell equivalents: Read rather than cat/head/tail, \
         Edit or Write rather than sed/awk/echo redirection, Glob rather than find/ls to find \
         files, Grep rather than grep/rg to search contents.\n\
         - Quote paths containing spaces with double quotes. Join dependent commands with \
         `&&`, independent ones with `;`. Prefer absolute paths over `cd` to stay oriented."
            .into()
    }

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "command": {
                    "type": "string",
                    "description": "The command to run"
                },
                "timeout": {
                    "type": "number",
                    "description": "Optional timeout in milliseconds (default 120000, max 600000)"
                },
                "description": {
                    "type": "string",
                    "description": "What the command does, in 5-10 words (e.g. \"List files in src\")"
                },
                "run_in_background": {
                    "type": "boolean",
                    "description": "Not supported in this version: leave it out or set it to false"
                }
            },
            "required": ["command"],
            "additionalProperties": false
        })
    }

    fn call(input: BashInput) -> Result<String, String> {
        if input.run_in_background == Some(true) {
            return Err(tool_use_error(
                "Background commands are not supported in this version: run_in_background \
                 cannot be true. Run the command in the foreground instead, with a `timeout` \
                 (up to 600000 ms) long enough for it to finish.",
            ));
        }
        let timeout_ms = timeout_ms(input.timeout).map_err(|problem| {
            tool_use_error(&format!(
                "InputValidationError: Bash failed due to the following issue:\n{problem}"
            ))
        })?;
        if input.command.trim().is_empty() {
            return Err(tool_use_error(
                "The command is empty: give the bash command to run.",
            ));
        }
        let root = host::workspace_root();
        if root.is_empty() {
            return Err("This plugin was given no workspace, so it cannot run commands.".into());
        }
        run(Path::new(&root), &input.command, timeout_ms)
    }
}

/// The timeout in whole milliseconds, or what is wrong with the one asked for.
fn timeout_ms(asked: Option<f64>) -> Result<u32, String> {
    let Some(asked) = asked else {
        return Ok(DEFAULT_TIMEOUT_MS);
    };
    if !(1.0..=f64::from(MAX_TIMEOUT_MS)).contains(&asked) {
        return Err(format!(
            "`timeout` is {asked}, but it must be between 1 and {MAX_TIMEOUT_MS} milliseconds \
             (10 minutes). Leave it out for the default of {DEFAULT_TIMEOUT_MS} (2 minutes)."
        ));
    }
    // In range, so the cast is exact after rounding up.
    Ok(asked.ceil() as u32)
}

/// Runs `command` in the session's working directory and builds the result.
fn run(root: &Path, command: &str, timeout_ms: u32) -> Result<String, String> {
    let start = cwd::start(root);
    let mut notes = Vec::new();
    if start.reset {
        notes.push(cwd::reset_note(root));
    }
    let cwd_file = reserve_cwd_file(root);
    let script = match &cwd_file {
        Some(file) => script::wrap(command, file),
        None => command.to_string(),
    };
    host::debug(&format!(
        "running a command in {} (timeout {timeout_ms} ms)",
        start.dir.display()
    ));
    let output = host::exec(&script, &start.dir.to_string_lossy(), timeout_ms);
    let reported = cwd_file.as_deref().and_then(take_file);
    let output = output.map_err(|error| format!("The command could not be run: {error}"))?;

    let after = cwd::after(root, reported.as_deref().and_then(script::reported_cwd));
    cwd::remember(&after);
    if after == After::Reset && !start.reset {
        notes.push(cwd::reset_note(root));
    }
    if output.truncated {
        notes.insert(0, format::TRUNCATED_NOTE.into());
    }

    let ending = format::ending(&output, command, timeout_ms);
    let shown = format::shown_text(&output);
    let shown = if spill::too_big(&shown) {
        spill::shorten(root, &shown, &format::full_text(&output))
    } else {
        shown
    };
    let text = format::assemble(&ending, &shown, &notes);
    if ending.error { Err(text) } else { Ok(text) }
}

/// Creates the empty file the shell will write its final directory to, under a name no
/// other call uses. `None` (the directory is then not tracked) when that fails.
fn reserve_cwd_file(root: &Path) -> Option<PathBuf> {
    let reserved = scratch::ensure(root, "tmp").and_then(|dir| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        scratch::create_unique(&dir, "bash-cwd-", "", u64::from(nanos))
    });
    match reserved {
        Ok((_, path, _)) => Some(path),
        Err(error) => {
            host::warn(&format!(
                "cannot track the shell's working directory: {error}"
            ));
            None
        }
    }
}

/// The text of `path`, which is then removed.
fn take_file(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok();
    if let Err(error) = fs::remove_file(path) {
        host::debug(&format!("could not remove {}: {error}", path.display()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_plugin_sdk::serde_json;

    #[test]
    fn timeouts_default_and_are_bounded() {
        assert_eq!(timeout_ms(None), Ok(120_000));
        assert_eq!(timeout_ms(Some(1.0)), Ok(1));
        assert_eq!(timeout_ms(Some(1500.2)), Ok(1501));
        assert_eq!(timeout_ms(Some(600_000.0)), Ok(600_000));
        for bad in [0.0, 0.5, -5.0, 600_000.5, 1e12, f64::NAN, f64::INFINITY] {
            let problem = timeout_ms(Some(bad)).unwrap_err();
            assert!(
                problem.contains("between 1 and 600000 milliseconds"),
                "{bad}: {problem}"
            );
        }
        assert!(
            timeout_ms(Some(700_000.0))
                .unwrap_err()
                .starts_with("`timeout` is 700000, but")
        );
    }

    #[test]
    fn the_schema_names_the_inputs_claude_knows() {
        let schema = Bash::input_schema();
        let properties = schema["properties"].as_object().unwrap();
        let mut names: Vec<_> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["command", "description", "run_in_background", "timeout"]
        );
        assert_eq!(schema["required"], json!(["command"]));
        assert_eq!(properties["timeout"]["type"], "number");
    }

    #[test]
    fn inputs_deserialise_strictly() {
        let input: BashInput =
            serde_json::from_str(r#"{"command": "ls", "timeout": 5000, "description": "list"}"#)
                .unwrap();
        assert_eq!(
            (input.command.as_str(), input.timeout),
            ("ls", Some(5000.0))
        );
        assert!(serde_json::from_str::<BashInput>(r#"{"command": "ls", "cwd": "/"}"#).is_err());
    }
}
