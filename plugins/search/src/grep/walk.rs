//! Which files a search reads: the given file, or the files under the given directory
//! that ripgrep would search (hidden files included, ignore files honoured, VCS
//! directories and symlinks skipped), filtered by `glob` and `type`, in path order.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ignore::overrides::{Override, OverrideBuilder};
use ignore::types::{Types, TypesBuilder};

use crate::fs::{Dir, File};
use crate::relpath::display_relative;
use crate::walk::{FileEntry, Filters, Walker};

/// One file to search.
pub struct Target {
    /// Where it is.
    pub file: FileEntry,
    /// The path shown in results: relative to the workspace root.
    pub display: String,
    /// Named by `path` itself (then a symlink is followed, as `rg` does).
    explicit: bool,
}

impl Target {
    /// True when `path` named this file (rather than a directory holding it).
    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// Opens the file for reading.
    pub fn open(&self) -> io::Result<File> {
        if self.explicit {
            self.file.dir.open_file_following(&self.file.name)
        } else {
            self.file.dir.open_file(&self.file.name)
        }
    }
}

/// The files to search, one at a time.
pub enum Targets {
    /// A single file named by `path` (searched whatever the filters say, as `rg` does).
    File(Option<Target>),
    /// A directory walk.
    Walk { walker: Walker, root: PathBuf },
}

impl Targets {
    /// The single file at `path`.
    pub fn file(path: PathBuf, root: &Path) -> Result<Targets, io::Error> {
        let parent = path.parent().unwrap_or(root);
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = Rc::new(Dir::open(root, parent)?);
        let display = display_relative(&path, root);
        Ok(Targets::File(Some(Target {
            file: FileEntry { dir, name, path },
            display,
            explicit: true,
        })))
    }

    /// The files under `dir` that pass `filters` (see [`filters`]). `root` is the
    /// workspace root: paths are shown relative to it.
    pub fn walk(dir: &Path, root: &Path, filters: Filters) -> Result<Targets, String> {
        let walker = Walker::new(root, dir, filters)
            .map_err(|error| agent_plugin_sdk::paths::describe_io_error(&error, dir))?;
        Ok(Targets::Walk {
            walker,
            root: root.to_path_buf(),
        })
    }
}

/// The walk filters for `glob` and `type` (with ripgrep's ignore rules). `glob` patterns
/// containing `/` are anchored at the workspace `root`. Fails on an unknown type or an
/// invalid glob, whether or not a walk follows.
pub fn filters(root: &Path, globs: &[String], types: &[String]) -> Result<Filters, String> {
    Ok(Filters {
        ignore_rules: true,
        overrides: glob_filters(globs, root)?,
        types: file_types(types)?,
        max_depth: None,
    })
}

impl Iterator for Targets {
    type Item = Target;

    fn next(&mut self) -> Option<Target> {
        match self {
            Targets::File(file) => file.take(),
            Targets::Walk { walker, root } => {
                let file = walker.next()?;
                let display = display_relative(&file.path, root);
                Some(Target {
                    file,
                    display,
                    explicit: false,
                })
            }
        }
    }
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
            def.globs().contains(&extension)
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
