//! `Grep`: searches file contents with a regular expression, as ripgrep does.
//!
//! - [`options`]: the input schema and its validation (including the regex matcher).
//! - [`walk`]: which files are searched (ignore rules, VCS directories, `glob`, `type`).
//! - [`search`]: searching one file.
//! - [`output`]: the three output modes in ripgrep's formats.
//! - [`paging`]: `head_limit`/`offset` and the output cap.

mod options;
mod output;
mod paging;
mod search;
mod walk;

use std::path::PathBuf;

use agent_plugin_sdk::serde_json::Value;
use agent_plugin_sdk::{Tool, host, paths};

use options::{GrepInput, Options, OutputMode};
use walk::Targets;

/// The `Grep` tool.
pub struct Grep;

impl Tool for Grep {
    const NAME: &'static str = "Grep";
    type Input = GrepInput;

    fn description() -> String {
        "Searches file contents with a regular expression (ripgrep). Use it for every \
         content search instead of running grep or rg through Bash: it is faster and its \
         output is sized for you.\n\
         \n\
         - `pattern` is a Rust regex, as in ripgrep: `fn\\s+main`, `log.*Error`, `TODO|FIXME`. \
         Escape literal special characters: `interface\\{\\}` finds `interface{}`.\n\
         - `path` is a file or directory (default: the workspace root). Narrow by file with \
         `glob` (`*.js`, `**/*.{ts,tsx}`) or `type` (ripgrep types such as `rust`, `py`, `js`).\n\
         - `output_mode`: `files_with_matches` (default) lists matching files, most recently \
         modified first; `content` shows matching lines as `path:line:text` (context lines as \
         `path-line-text`, `--` between groups; options -A, -B, -C/context, -n, -o); `count` \
         shows `path:count` per file and a total.\n\
         - Matches stay within one line; set `multiline: true` for patterns that span lines \
         (then `.` also matches newlines).\n\
         - Like ripgrep it skips .gitignore'd files (in git repositories), VCS directories such \
         as .git and binary files; hidden files are searched. Lines of 500 bytes or more are \
         replaced by a marker.\n\
         - Output is capped at about 20,000 characters; page through long results with \
         `head_limit` and `offset` (the result says when it was cut and which offset comes \
         next).\n\
         - Paths in the output are relative to the workspace root."
            .to_string()
    }

    fn input_schema() -> Value {
        options::schema()
    }

    fn call(input: GrepInput) -> Result<String, String> {
        let options = Options::from_input(input)?;
        let matcher = options.matcher()?;
        let root = PathBuf::from(host::workspace_root());
        let filters = walk::filters(&root, &options.globs, &options.types)?;
        let target = match options.path.as_deref() {
            Some(path) => paths::resolve(path)?,
            None => root.clone(),
        };
        let meta = std::fs::metadata(&target)
            .map_err(|error| paths::describe_io_error(&error, &target))?;
        let single_file = !meta.is_dir();
        let targets = if single_file {
            Targets::file(target.clone(), &root)
                .map_err(|error| paths::describe_io_error(&error, &target))?
        } else {
            Targets::walk(&target, &root, filters)?
        };
        let outcome = match options.mode {
            OutputMode::FilesWithMatches => output::files_with_matches(&options, &matcher, targets),
            OutputMode::Count => output::count(&options, &matcher, targets),
            OutputMode::Content => output::content(&options, &matcher, targets),
        };
        if single_file && let Some(problem) = outcome.problems.first() {
            return Err(format!(
                "The search of {} failed: {problem}",
                target.display()
            ));
        }
        Ok(outcome.text)
    }
}
