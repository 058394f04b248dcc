//! Which files a search reads: the given file, or the files under the given directory
//! that ripgrep would search (hidden files included, ignore files honoured, VCS
//! directories and symlinks skipped), filtered by `glob` and `type`, in path order.

use std::path::{Path, PathBuf};

use agent_plugin_sdk::host;
use ignore::overrides::{Override, OverrideBuilder};
use ignore::types::{Types, TypesBuilder};
use ignore::{Walk, WalkBuilder};

use crate::relpath::display_relative;

/// Directories of version-control systems: never searched (their contents are the
/// system's own data, and a `.git` directory holds compressed copies of everything).
const VCS_DIRECTORIES: [&str; 6] = [".git", ".hg", ".svn", ".bzr", ".jj", ".sl"];

/// One file to search.
pub struct Target {
    /// Absolute path.
    pub path: PathBuf,
    /// The path shown in results: relative to the workspace root.
    pub display: String,
}

/// The files to search, one at a time.
pub enum Targets {
    /// A single file named by `path` (searched whatever the filters say, as `rg` does).
    File(Option<Target>),
    /// A directory walk.
    Walk { walk: Walk, root: PathBuf },
}

impl Targets {
    /// A single file.
    pub fn file(path: PathBuf, root: &Path) -> Targets {
        let display = display_relative(&path, root);
        Targets::File(Some(Target { path, display }))
    }

    /// The files under `dir` that pass the filters. `root` is the workspace root: paths are
    /// shown relative to it and `glob` patterns containing `/` are anchored there.
    pub fn walk(
        dir: &Path,
        root: &Path,
        globs: &[String],
        types: &[String],
    ) -> Result<Targets, String> {
        let mut builder = WalkBuilder::new(dir);
        builder
            .hidden(false)
            // The walker's own lookup of parent directories needs `canonicalize`, which
            // WASI lacks; `parent_rules` does that job instead.
            .parents(false)
            .ignore(true)
            .git_ignore(true)
            .git_exclude(true)
            // The user's global git excludes live outside the sandbox.
            .git_global(false)
            .follow_links(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|entry| {
                entry.depth() == 0 || !VCS_DIRECTORIES.iter().any(|vcs| entry.file_name() == *vcs)
            });
        builder.add_custom_ignore_filename(".rgignore");
        let in_repo = parent_rules(&mut builder, dir, root);
        // Inside a repository found above `dir`, every `.gitignore` in the walk applies;
        // otherwise only those of repositories the walk itself enters (as rg does).
        builder.require_git(!in_repo);
        if let Some(types) = file_types(types)? {
            builder.types(types);
        }
        if let Some(overrides) = glob_filters(globs, root)? {
            builder.overrides(overrides);
        }
        Ok(Targets::Walk {
            walk: builder.build(),
            root: root.to_path_buf(),
        })
    }
}

impl Iterator for Targets {
    type Item = Target;

    fn next(&mut self) -> Option<Target> {
        match self {
            Targets::File(file) => file.take(),
            Targets::Walk { walk, root } => loop {
                let entry = match walk.next()? {
                    Ok(entry) => entry,
                    Err(error) => {
                        // Unreadable directories are skipped, as rg does (it says so on
                        // stderr, which the model would not see either).
                        host::debug(&format!("Grep: skipped {error}"));
                        continue;
                    }
                };
                if entry.file_type().is_some_and(|kind| kind.is_file()) {
                    let display = display_relative(entry.path(), root);
                    return Some(Target {
                        path: entry.into_path(),
                        display,
                    });
                }
            },
        }
    }
}

/// Adds the ignore files of the directories between the workspace root and `dir` (both
/// included, `dir` excluded) to `builder`, as rg does for the parents of a search path:
/// `.ignore` and `.rgignore` always, `.gitignore` and `.git/info/exclude` only inside a
/// git repository. Returns whether such a repository encloses `dir`.
///
/// Directories above the workspace root are outside the sandbox, so a repository whose
/// root lies above the workspace is not seen.
fn parent_rules(builder: &mut WalkBuilder, dir: &Path, root: &Path) -> bool {
    let Ok(below_root) = dir.strip_prefix(root) else { return false };
    let mut parents = vec![root.to_path_buf()];
    let components: Vec<_> = below_root.components().collect();
    for component in components.iter().take(components.len().saturating_sub(1)) {
        let next = parents[parents.len() - 1].join(component);
        parents.push(next);
    }
    if components.is_empty() {
        return false;
    }
    let mut in_repo = false;
    for parent in &parents {
        let mut files = Vec::new();
        if parent.join(".git").symlink_metadata().is_ok() || parent.join(".jj").is_dir() {
            in_repo = true;
            files.push(parent.join(".git/info/exclude"));
        }
        // Lowest precedence first: later files override earlier ones.
        if in_repo {
            files.push(parent.join(".gitignore"));
        }
        files.push(parent.join(".ignore"));
        files.push(parent.join(".rgignore"));
        for file in files {
            if file.is_file() {
                builder.current_dir(parent);
                if let Some(error) = builder.add_ignore(&file) {
                    host::debug(&format!("Grep: ignore file {}: {error}", file.display()));
                }
            }
        }
    }
    in_repo
}

/// The `type` filter, with an error listing valid names when one is unknown.
fn file_types(names: &[String]) -> Result<Option<Types>, String> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut builder = TypesBuilder::new();
    builder.add_defaults();
    for name in names {
        builder.select(name);
    }
    match builder.build() {
        Ok(types) => Ok(Some(types)),
        Err(error) => {
            let unknown = names
                .iter()
                .find(|name| {
                    !builder
                        .definitions()
                        .iter()
                        .any(|def| def.name() == name.as_str())
                })
                .cloned()
                .unwrap_or_default();
            if unknown.is_empty() {
                return Err(format!("The `type` filter could not be built: {error}"));
            }
            Err(unknown_type_message(&unknown, &builder))
        }
    }
}

/// Says `name` is not a known type, suggests near names, and lists common ones.
fn unknown_type_message(name: &str, builder: &TypesBuilder) -> String {
    let definitions = builder.definitions();
    let lower = name.to_lowercase();
    let extension = format!("*.{lower}");
    let mut suggestions: Vec<&str> = definitions
        .iter()
        .filter(|def| {
            def.globs().iter().any(|glob| *glob == extension)
                || (lower.len() >= 2
                    && def.name().starts_with(&lower[..2])
                    && lower.starts_with(def.name()))
                || def.name().starts_with(&lower)
        })
        .map(|def| def.name())
        .collect();
    suggestions.dedup();
    suggestions.truncate(5);
    let mut message = format!("Unknown file type {name:?} for `type`.");
    if !suggestions.is_empty() {
        message.push_str(&format!(" Did you mean: {}?", suggestions.join(", ")));
    }
    message.push_str(
        " `type` takes ripgrep's type names, for example: rust, py, js, ts, go, java, c, cpp, \
         cs, rb, php, sh, md, json, yaml, toml, html, css, sql. For any other kind of file use \
         `glob` instead (e.g. `*.ext`).",
    );
    message
}

/// The `glob` filters as ripgrep `--glob` overrides, anchored at the workspace root.
fn glob_filters(globs: &[String], root: &Path) -> Result<Option<Override>, String> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = OverrideBuilder::new(root);
    for glob in globs {
        builder
            .add(glob)
            .map_err(|error| format!("The `glob` filter {glob:?} is invalid: {error}"))?;
    }
    builder
        .build()
        .map(Some)
        .map_err(|error| format!("The `glob` filter could not be built: {error}"))
}
