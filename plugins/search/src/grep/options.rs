//! `Grep`'s input: its schema, and its validation into the settings a search runs with.

use agent_plugin_sdk::serde_json::{Value, json};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use serde::Deserialize;

/// `Grep`'s input as the model sends it. Property names (dashes included) are the contract
/// Claude is trained on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrepInput {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
    #[serde(rename = "type")]
    file_type: Option<String>,
    output_mode: Option<OutputMode>,
    #[serde(rename = "-A")]
    after: Option<f64>,
    #[serde(rename = "-B")]
    before: Option<f64>,
    #[serde(rename = "-C")]
    around: Option<f64>,
    context: Option<f64>,
    #[serde(rename = "-n")]
    line_numbers: Option<bool>,
    #[serde(rename = "-i")]
    case_insensitive: Option<bool>,
    #[serde(rename = "-o")]
    only_matching: Option<bool>,
    head_limit: Option<f64>,
    offset: Option<f64>,
    multiline: Option<bool>,
}

/// What the search reports.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// Matching lines with their path (and line number, context).
    Content,
    /// The paths of files with at least one match, newest first.
    FilesWithMatches,
    /// Per-file match counts and a total.
    Count,
}

/// A validated search request.
pub struct Options {
    /// The regex as the model wrote it (for messages).
    pub pattern: String,
    /// The `path` input, if given.
    pub path: Option<String>,
    /// Glob filters in ripgrep's `--glob` syntax (`!` negates).
    pub globs: Vec<String>,
    /// ripgrep file type names.
    pub types: Vec<String>,
    pub mode: OutputMode,
    pub before: usize,
    pub after: usize,
    pub line_numbers: bool,
    pub case_insensitive: bool,
    pub only_matching: bool,
    pub multiline: bool,
    /// Output lines (or files) to skip before the page starts.
    pub offset: usize,
    /// Page size; `None` means as much as the output cap allows.
    pub head_limit: Option<usize>,
}

impl Options {
    /// Checks `input` and fills in the defaults.
    pub fn from_input(input: GrepInput) -> Result<Options, String> {
        let around = count("-C", input.around)?.or(count("context", input.context)?);
        let before = count("-B", input.before)?.or(around).unwrap_or(0);
        let after = count("-A", input.after)?.or(around).unwrap_or(0);
        // `head_limit: 0` reads naturally as "no limit".
        let head_limit = count("head_limit", input.head_limit)?.filter(|limit| *limit > 0);
        Ok(Options {
            pattern: input.pattern,
            path: input.path,
            globs: input.glob.as_deref().map(split_globs).unwrap_or_default(),
            types: input
                .file_type
                .as_deref()
                .map(|types| {
                    types
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|name| !name.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            mode: input.output_mode.unwrap_or(OutputMode::FilesWithMatches),
            before,
            after,
            line_numbers: input.line_numbers.unwrap_or(true),
            case_insensitive: input.case_insensitive.unwrap_or(false),
            only_matching: input.only_matching.unwrap_or(false),
            multiline: input.multiline.unwrap_or(false),
            offset: count("offset", input.offset)?.unwrap_or(0),
            head_limit,
        })
    }

    /// The regex matcher, configured as ripgrep configures it: `^`/`$` match at line
    /// boundaries (also before `\r\n`), and without `multiline` no match spans a line
    /// break.
    pub fn matcher(&self) -> Result<RegexMatcher, String> {
        let mut builder = RegexMatcherBuilder::new();
        // `crlf` also makes `\r\n` the line terminator no match may cross; multiline
        // searches drop that (keeping `$` before `\r\n`). Order matters: see
        // `RegexMatcherBuilder::crlf`.
        builder
            .case_insensitive(self.case_insensitive)
            .multi_line(true)
            .crlf(true)
            .dot_matches_new_line(self.multiline);
        if self.multiline {
            builder.line_terminator(None);
        }
        builder.build(&self.pattern).map_err(|error| {
            let detail = error.to_string();
            let advice = if !self.multiline && (detail.contains("not allowed") || detail.contains("line terminator")) {
                "Without `multiline` a match never spans lines: set `multiline: true` to match \
                 across line breaks."
            } else {
                "Grep uses Rust regex syntax (no look-around or backreferences); escape literal \
                 special characters such as `(`, `[`, `{`, `.` or `*` with a backslash."
            };
            format!(
                "The search failed: the pattern {:?} was rejected by the regex parser.\n{detail}\n{advice}",
                self.pattern
            )
        })
    }
}

/// A non-negative whole number from a JSON number (fractions are truncated).
fn count(name: &str, value: Option<f64>) -> Result<Option<usize>, String> {
    match value {
        None => Ok(None),
        Some(number) if number.is_finite() && number >= 0.0 => Ok(Some(number as usize)),
        Some(number) => Err(agent_plugin_sdk::tool_use_error(&format!(
            "InputValidationError: Grep failed due to the following issue:\n\
             `{name}` must be a non-negative number, got {number}"
        ))),
    }
}

/// Splits the `glob` input into ripgrep `--glob` patterns: whitespace separates patterns,
/// and so do commas outside braces (`*.{ts,tsx}` stays one pattern).
fn split_globs(text: &str) -> Vec<String> {
    let mut globs = Vec::new();
    for word in text.split_whitespace() {
        let mut depth = 0usize;
        let mut current = String::new();
        for c in word.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    if !current.is_empty() {
                        globs.push(std::mem::take(&mut current));
                    }
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        if !current.is_empty() {
            globs.push(current);
        }
    }
    globs
}

/// `Grep`'s JSON Schema.
pub fn schema() -> Value {
    let number =
        |description: &str| json!({"type": "number", "minimum": 0, "description": description});
    let boolean = |description: &str| json!({"type": "boolean", "description": description});
    json!({
        "type": "object",
        "properties": {
            "pattern": {
                "type": "string",
                "description": "The regular expression to search for (Rust regex syntax, as ripgrep uses)"
            },
            "path": {
                "type": "string",
                "description": "File or directory to search (absolute, inside the workspace). Defaults to the workspace root."
            },
            "glob": {
                "type": "string",
                "description": "Only search files matching this glob, ripgrep --glob style: `*.js`, `*.{ts,tsx}`, `src/**/*.rs`; `!` excludes. Several globs may be separated by spaces."
            },
            "type": {
                "type": "string",
                "description": "Only search files of this ripgrep file type, e.g. `rust`, `py`, `js`, `go`, `java`, `md`. Faster than `glob` for standard types."
            },
            "output_mode": {
                "type": "string",
                "enum": ["content", "files_with_matches", "count"],
                "description": "`files_with_matches` (default): paths of matching files, newest first. `content`: the matching lines (supports -A/-B/-C, -n, -o). `count`: matches per file."
            },
            "-A": number("Lines of context to show after each match (content mode only)"),
            "-B": number("Lines of context to show before each match (content mode only)"),
            "-C": number("Lines of context to show before and after each match (content mode only)"),
            "context": number("Same as -C"),
            "-n": boolean("Show line numbers (content mode only; default true)"),
            "-i": boolean("Match case-insensitively"),
            "-o": boolean("Show only the matched parts of lines (content mode); count individual matches (count mode)"),
            "head_limit": number("Show at most this many output lines (content), file paths (files_with_matches) or file counts (count). Default: everything, up to an output cap of about 20,000 characters."),
            "offset": number("Skip this many output lines, paths or counts first, to page through a long result together with head_limit. Default 0."),
            "multiline": boolean("Let patterns span lines: `.` also matches newlines and `\\n` can appear in the pattern. Default false.")
        },
        "required": ["pattern"],
        "additionalProperties": false
    })
}
