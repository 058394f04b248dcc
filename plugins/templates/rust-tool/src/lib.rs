//! An example tool plugin: `WordCount` counts the lines, words and bytes of a file in the
//! user's workspace. Replace it with your own tool; keep the shape:
//!
//! - a type per tool implementing [`Tool`]: its name, description and input schema are what
//!   the model sees, `call` is what runs;
//! - `export_tools!` at the end, listing every tool of this plugin;
//! - the logic in plain functions, unit-tested natively with `cargo test`.
//!
//! The component can open files only inside the workspace (`workspace = "read-only"` in
//! plugin.toml): a path outside it, or a symlink leading out, fails in the sandbox itself.

use agent_plugin_sdk::serde_json::{Value, json};
use agent_plugin_sdk::{Tool, export_tools, host, paths};

/// The input the model sends, checked against [`WordCount::input_schema`] before `call`.
#[derive(serde::Deserialize)]
pub struct Input {
    /// The file to count, absolute or relative to the workspace root.
    pub path: String,
}

/// Counts lines, words and bytes of one file.
pub struct WordCount;

impl Tool for WordCount {
    const NAME: &'static str = "WordCount";
    type Input = Input;

    fn description() -> String {
        "Counts the lines, words and bytes of a text file in the workspace, like `wc`. \
         Use it to size a file before reading it."
            .into()
    }

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "The file to count: absolute, or relative to the workspace root"
                }
            },
            "required": ["path"],
            "additionalProperties": false
        })
    }

    fn call(input: Input) -> Result<String, String> {
        // Errors are results the model reads: say what went wrong and what to do instead.
        let path = paths::resolve(&input.path)?;
        // Into the host's log (`log = true` in plugin.toml), seen with AGENT_HOST_LOG=debug.
        host::debug(&format!("counting {}", path.display()));
        let bytes =
            std::fs::read(&path).map_err(|error| paths::describe_io_error(&error, &path))?;
        let counts = count(&String::from_utf8_lossy(&bytes));
        Ok(format!(
            "{} lines, {} words, {} bytes in {}",
            counts.lines,
            counts.words,
            bytes.len(),
            path.display()
        ))
    }
}

/// What [`count`] finds in a text.
#[derive(Debug, PartialEq, Eq)]
pub struct Counts {
    /// Newline-terminated lines, plus a last line without a newline.
    pub lines: usize,
    /// Runs of non-whitespace characters.
    pub words: usize,
}

/// Counts the lines and words of `text`.
pub fn count(text: &str) -> Counts {
    Counts {
        lines: text.lines().count(),
        words: text.split_whitespace().count(),
    }
}

export_tools!(WordCount);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_and_words() {
        assert_eq!(count(""), Counts { lines: 0, words: 0 });
        assert_eq!(count("one two\nthree"), Counts { lines: 2, words: 3 });
        assert_eq!(count("a\n\n  b  \n"), Counts { lines: 3, words: 2 });
    }

    #[test]
    fn the_schema_requires_a_path() {
        assert_eq!(WordCount::input_schema()["required"], json!(["path"]));
    }
}
