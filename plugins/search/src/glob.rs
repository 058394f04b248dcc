//! `Glob`: files whose path matches a glob pattern, newest first.
//!
//! Semantics follow `rg --files --hidden --no-ignore`: every file under the search
//! directory is a candidate, hidden ones included, and no ignore file is applied (the
//! model uses Glob to find files it knows exist, including ignored ones). Symlinks are not
//! followed. The pattern is matched against the path relative to the search directory
//! with `*` confined to one path component and `**` crossing directories.

use std::path::{Component, Path, PathBuf};

use agent_plugin_sdk::paths;
use agent_plugin_sdk::serde_json::{Value, json};
use agent_plugin_sdk::{Tool, host};
use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

use crate::relpath::display_relative;
use crate::sort::{Found, newest_first};
use crate::walk::{Filters, Walker};

/// How many paths one call returns at most.
const MAX_RESULTS: usize = 100;

/// The `Glob` tool.
pub struct Glob;

/// `Glob`'s input (the schema is in [`Glob::input_schema`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobInput {
    pattern: String,
    path: Option<String>,
}

impl Tool for Glob {
    const NAME: &'static str = "Glob";
    type Input = GlobInput;

    fn description() -> String {
        "Finds files by name: returns the paths matching a glob pattern such as `**/*.rs` or \
         `src/**/*.{ts,tsx}`, one per line, relative to the searched directory, most recently \
         modified first. Fast on projects of any size.\n\
         \n\
         - The pattern is matched against each file's path relative to `path`: `*` and `?` stay \
         within one path component, `**` spans any number of directories, and `[abc]` and \
         `{a,b}` work as usual. So `*.rs` finds only files directly in `path`; use `**/*.rs` \
         for every depth.\n\
         - `path` is the directory to search (default: the workspace root); it must be inside \
         the workspace. Leave it out rather than passing a placeholder.\n\
         - Hidden files are included and .gitignore rules are not applied. Symlinks are not \
         followed.\n\
         - At most 100 paths are returned; when more files match, the result says so, and a \
         more specific pattern or path finds the rest.\n\
         - To search inside files use Grep; for open-ended exploration that needs several \
         rounds of searching, combine Glob and Grep."
            .to_string()
    }

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {
                    "type": "string",
                    "description": "The glob pattern to match file paths against, e.g. `**/*.py` or `src/*/mod.rs`"
                },
                "path": {
                    "type": "string",
                    "description": "The directory to search in (absolute, inside the workspace). Defaults to the workspace root when left out."
                }
            },
            "required": ["pattern"],
            "additionalProperties": false
        })
    }

    fn call(input: GlobInput) -> Result<String, String> {
        let root = PathBuf::from(host::workspace_root());
        let dir = match input.path.as_deref() {
            Some(path) => paths::resolve(path)?,
            None => root.clone(),
        };
        check_directory(&dir)?;
        let pattern = relative_pattern(&input.pattern, &dir, &root)?;
        let matcher = compile(&pattern)?;
        let files = walk(&root, &dir, &pattern, &matcher);
        Ok(render(newest_first(files)))
    }
}

/// Fails with a message the model can act on unless `dir` is a directory it may search.
fn check_directory(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|error| paths::describe_io_error(&error, dir))?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "{} is a file, not a directory. Glob's `path` is the directory to search; to \
             search inside this file use Grep with this path.",
            dir.display()
        ))
    }
}

/// The pattern to match against paths relative to `dir`: an absolute pattern naming a
/// place under `dir` has that prefix removed, and a leading `./` is dropped.
fn relative_pattern(pattern: &str, dir: &Path, root: &Path) -> Result<String, String> {
    let mut relative = pattern;
    if pattern.starts_with('/') {
        let dir_text = dir.to_string_lossy();
        let dir_prefix = dir_text.trim_end_matches('/');
        relative = match pattern.strip_prefix(dir_prefix) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.trim_start_matches('/'),
            _ if !Path::new(pattern).starts_with(root) => {
                return Err(format!(
                    "The pattern {pattern} points outside the workspace {root}. Only files \
                     under {root} can be searched.",
                    root = root.display()
                ));
            }
            _ => {
                return Err(format!(
                    "The pattern {pattern} is an absolute path outside the searched directory \
                     {dir}. Give a pattern relative to that directory, or set `path` to the \
                     directory the pattern starts in.",
                    dir = dir.display()
                ));
            }
        };
    }
    while let Some(rest) = relative.strip_prefix("./") {
        relative = rest;
    }
    if relative.is_empty() {
        return Err(
            "The pattern names the searched directory itself, not files in it. Add a file \
             pattern such as `**/*` or `*.txt`."
                .into(),
        );
    }
    if relative.split('/').any(|part| part == "..") {
        return Err(format!(
            "The pattern {pattern} contains `..`, which never matches: patterns are matched \
             against paths below the searched directory. Set `path` to the directory to \
             search instead."
        ));
    }
    Ok(relative.to_string())
}

/// Compiles `pattern` with `*` confined to one path component.
fn compile(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| format!("The glob pattern {pattern:?} is invalid: {error}"))
}

/// True when a pattern component can match more than its literal text.
fn is_wild(component: &str) -> bool {
    component.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// Every file under `dir` whose relative path matches `matcher`.
///
/// The walk starts at the pattern's literal leading directories (`src/lib/**/*.rs` only
/// walks `src/lib`) and, for patterns without `**` or braces, stops at the depth the
/// pattern can reach, so a narrow pattern costs few host calls.
fn walk(root: &Path, dir: &Path, pattern: &str, matcher: &GlobMatcher) -> Vec<Found> {
    let parts: Vec<&str> = pattern.split('/').filter(|part| !part.is_empty()).collect();
    let literal = parts
        .iter()
        .take(parts.len().saturating_sub(1))
        .take_while(|part| !is_wild(part) && **part != ".")
        .count();
    let start = parts[..literal]
        .iter()
        .fold(dir.to_path_buf(), |path, part| path.join(part));
    let bounded = !pattern.contains("**") && !pattern.contains('{');
    let filters = Filters {
        max_depth: bounded.then(|| parts.len() - literal),
        ..Filters::default()
    };
    let walker = match Walker::new(root, &start, filters) {
        Ok(walker) => walker,
        Err(error) => {
            // A missing start directory just means no match.
            host::debug(&format!("Glob: cannot list {}: {error}", start.display()));
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for file in walker {
        let Ok(relative) = file.path.strip_prefix(dir) else {
            continue;
        };
        if has_parent_or_root(relative) || !matcher.is_match(relative) {
            continue;
        }
        let display = display_relative(&file.path, dir);
        found.push(Found::new(&file, display));
    }
    found
}

/// Defensive: a walked path relative to its root never climbs or restarts.
fn has_parent_or_root(path: &Path) -> bool {
    path.components()
        .any(|part| matches!(part, Component::ParentDir | Component::RootDir))
}

/// The result text: the paths, capped, with a note when the cap applied.
fn render(files: Vec<Found>) -> String {
    if files.is_empty() {
        return "No files found".to_string();
    }
    let total = files.len();
    let mut out: Vec<String> = files
        .into_iter()
        .take(MAX_RESULTS)
        .map(|found| found.display)
        .collect();
    if total > MAX_RESULTS {
        out.push(String::new());
        out.push(format!(
            "(Results cut: showing the {MAX_RESULTS} most recently modified of {total} matching \
             files. Use a more specific pattern or a narrower path to see the others.)"
        ));
    }
    out.join("\n")
}
