//! A depth-first, name-ordered directory walk with ripgrep's filtering rules, built on the
//! [`crate::fs`] calls (one host call per directory entry).
//!
//! It does what the `ignore` crate's walker does for `rg`, using that crate's matchers
//! (`Gitignore`, `Override`, `Types`) with the same precedence: `glob` overrides first,
//! then ignore files (`.rgignore` over `.ignore` over `.gitignore` over
//! `.git/info/exclude`, the deepest directory winning within each kind, `.gitignore` only
//! inside a git repository), then `type`. The `ignore` walker itself is not used because
//! it lists directories through `std::fs`, which costs a `stat` per entry under WASI, and
//! it cannot see the ignore files above the search directory there (it needs
//! `canonicalize`, which WASI lacks).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use agent_plugin_sdk::host;
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder, Glob};
use ignore::overrides::Override;
use ignore::types::Types;

use crate::fs::{Dir, Entry, Kind};

/// Directories of version-control systems, which Grep never searches (their contents are
/// the system's own data; a `.git` directory holds compressed copies of everything).
const VCS_DIRECTORIES: [&str; 6] = [".git", ".hg", ".svn", ".bzr", ".jj", ".sl"];

/// Which entries a walk skips.
#[derive(Default)]
pub struct Filters {
    /// Apply `.gitignore`, `.ignore` and `.rgignore` files and skip VCS directories.
    pub ignore_rules: bool,
    /// `glob` patterns (ripgrep `--glob`).
    pub overrides: Option<Override>,
    /// `type` selection.
    pub types: Option<Types>,
    /// Deepest level of entries to visit (1 = the directory's own entries).
    pub max_depth: Option<usize>,
}

/// A file found by the walk.
pub struct FileEntry {
    /// The directory holding it (open, so the file is opened relative to it).
    pub dir: Rc<Dir>,
    /// Its name in that directory.
    pub name: String,
    /// Its absolute path.
    pub path: PathBuf,
}

/// The ignore rules of one directory.
#[derive(Default)]
struct Rules {
    custom: Option<Gitignore>,
    ignore: Option<Gitignore>,
    git: Option<Gitignore>,
    exclude: Option<Gitignore>,
    /// The directory is the root of a repository (it has a `.git` or `.jj`).
    has_git: bool,
}

/// A directory being listed.
struct Level {
    dir: Rc<Dir>,
    path: PathBuf,
    entries: std::vec::IntoIter<Entry>,
    depth: usize,
}

/// The walk: an iterator over the files that pass the filters, in path order.
pub struct Walker {
    filters: Filters,
    stack: Vec<Level>,
    /// Rules of the directories from the workspace root down to the one being listed
    /// (parents of the walk's root first, then one per level of `stack`).
    rules: Vec<Rc<Rules>>,
    /// How many of `rules` belong to directories above the walk's root.
    parent_rules: usize,
}

impl Walker {
    /// Walks the directory `dir` (inside the workspace `root`).
    pub fn new(root: &Path, dir: &Path, filters: Filters) -> std::io::Result<Walker> {
        let handle = Rc::new(Dir::open(root, dir)?);
        let entries = handle.entries()?;
        let mut rules = Vec::new();
        if filters.ignore_rules {
            rules = parent_rules(root, dir);
        }
        let parent_rules = rules.len();
        let mut walker = Walker {
            filters,
            stack: Vec::new(),
            rules,
            parent_rules,
        };
        walker.enter(handle, dir.to_path_buf(), entries, 0);
        Ok(walker)
    }

    fn enter(&mut self, dir: Rc<Dir>, path: PathBuf, entries: Vec<Entry>, depth: usize) {
        if self.filters.ignore_rules {
            self.rules
                .push(Rc::new(Rules::from_listing(&dir, &path, &entries)));
        }
        self.stack.push(Level {
            dir,
            path,
            entries: entries.into_iter(),
            depth,
        });
    }

    fn leave(&mut self) {
        self.stack.pop();
        if self.filters.ignore_rules && self.rules.len() > self.parent_rules {
            self.rules.pop();
        }
    }

    /// True when `path` is filtered out, by ripgrep's precedence.
    fn skipped(&self, path: &Path, is_dir: bool) -> bool {
        if let Some(overrides) = &self.filters.overrides {
            match overrides.matched(path, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        if self.filters.ignore_rules && self.ignored(path, is_dir) {
            return true;
        }
        if let Some(types) = &self.filters.types
            && types.matched(path, is_dir).is_ignore()
        {
            return true;
        }
        false
    }

    /// The ignore-file verdict for `path`: per kind of file the deepest rule decides, and
    /// `.gitignore` rules apply only inside a repository and not above its root.
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let any_git = self.rules.iter().any(|rules| rules.has_git);
        let (mut custom, mut ignore, mut git, mut exclude) =
            (Match::None, Match::None, Match::None, Match::None);
        let mut saw_git = false;
        fn matched<'g>(
            matcher: &'g Option<Gitignore>,
            path: &Path,
            is_dir: bool,
        ) -> Match<&'g Glob> {
            match matcher {
                Some(gitignore) => gitignore.matched(path, is_dir),
                None => Match::None,
            }
        }
        for rules in self.rules.iter().rev() {
            if custom.is_none() {
                custom = matched(&rules.custom, path, is_dir);
            }
            if ignore.is_none() {
                ignore = matched(&rules.ignore, path, is_dir);
            }
            if any_git && !saw_git {
                if git.is_none() {
                    git = matched(&rules.git, path, is_dir);
                }
                if exclude.is_none() {
                    exclude = matched(&rules.exclude, path, is_dir);
                }
            }
            saw_git = saw_git || rules.has_git;
        }
        custom.or(ignore).or(git).or(exclude).is_ignore()
    }
}

impl Iterator for Walker {
    type Item = FileEntry;

    fn next(&mut self) -> Option<FileEntry> {
        loop {
            let level = self.stack.last_mut()?;
            let Some(entry) = level.entries.next() else {
                self.leave();
                continue;
            };
            let depth = level.depth + 1;
            let dir = level.dir.clone();
            let path = level.path.join(&entry.name);
            if self.filters.ignore_rules && VCS_DIRECTORIES.contains(&entry.name.as_str()) {
                continue;
            }
            match entry.kind {
                Kind::File => {
                    if !self.skipped(&path, false) {
                        return Some(FileEntry {
                            dir,
                            name: entry.name,
                            path,
                        });
                    }
                }
                Kind::Dir => {
                    if self.filters.max_depth.is_some_and(|max| depth >= max)
                        || self.skipped(&path, true)
                    {
                        continue;
                    }
                    let listed = dir
                        .open_dir(&entry.name)
                        .and_then(|sub| Ok((sub.entries()?, sub)));
                    match listed {
                        Ok((entries, sub)) => self.enter(Rc::new(sub), path, entries, depth),
                        // Unreadable directories are skipped, as rg does (it says so on
                        // stderr, which the model would not see either).
                        Err(error) => {
                            host::debug(&format!("search: skipped {}: {error}", path.display()))
                        }
                    }
                }
                // Symlinks are not followed; devices, sockets and pipes are not searched.
                Kind::Symlink | Kind::Other => {}
            }
        }
    }
}

impl Rules {
    /// The rules of the directory `path` whose entries are `entries`.
    fn from_listing(dir: &Dir, path: &Path, entries: &[Entry]) -> Rules {
        let find = |name: &str| {
            entries
                .iter()
                .find(|entry| entry.name == name)
                .map(|entry| entry.kind)
        };
        let load = |name: &str| match find(name) {
            Some(Kind::File) => parse(path, name, dir.read_small(name)),
            _ => None,
        };
        let git_dir = find(".git");
        let has_git = git_dir.is_some() || find(".jj") == Some(Kind::Dir);
        Rules {
            custom: load(".rgignore"),
            ignore: load(".ignore"),
            git: load(".gitignore"),
            exclude: match git_dir {
                Some(Kind::Dir) => parse(
                    path,
                    ".git/info/exclude",
                    dir.read_small(".git/info/exclude"),
                ),
                _ => None,
            },
            has_git,
        }
    }

    /// The rules of a directory above the walk's root, found by trying each file.
    fn probe(dir: &Dir, path: &Path) -> Rules {
        let has_git = dir.exists(".git") || dir.exists(".jj");
        let load = |name: &str| parse(path, name, dir.read_small(name));
        Rules {
            custom: load(".rgignore"),
            ignore: load(".ignore"),
            git: load(".gitignore"),
            exclude: if has_git {
                load(".git/info/exclude")
            } else {
                None
            },
            has_git,
        }
    }
}

/// The rules of the directories from the workspace root down to `dir`'s parent: rg
/// applies the ignore files above the directory it searches.
fn parent_rules(root: &Path, dir: &Path) -> Vec<Rc<Rules>> {
    let Ok(below) = dir.strip_prefix(root) else {
        return Vec::new();
    };
    let mut rules = Vec::new();
    let mut current = root.to_path_buf();
    let components: Vec<_> = below.components().collect();
    for (index, component) in components.iter().enumerate() {
        match Dir::open(root, &current) {
            Ok(handle) => rules.push(Rc::new(Rules::probe(&handle, &current))),
            Err(error) => host::debug(&format!(
                "search: no rules from {}: {error}",
                current.display()
            )),
        }
        if index + 1 < components.len() {
            current.push(component);
        }
    }
    rules
}

/// A gitignore-format file's matcher, rooted at the directory holding it (`dir`), or
/// `None` when the file is missing or has no rules. Invalid lines are skipped, as rg does.
fn parse(dir: &Path, name: &str, bytes: Option<Vec<u8>>) -> Option<Gitignore> {
    let bytes = bytes?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let source = dir.join(name);
    let mut builder = GitignoreBuilder::new(dir);
    for line in text.lines() {
        if let Err(error) = builder.add_line(Some(source.clone()), line) {
            host::debug(&format!("search: {}: {error}", source.display()));
        }
    }
    let gitignore = builder.build().ok()?;
    (!gitignore.is_empty()).then_some(gitignore)
}
