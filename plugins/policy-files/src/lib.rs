//! The `policy-files` policy: which workspace paths the file tools may read and write,
//! and how big a written file may be.
//!
//! # What is checked
//!
//! - `Read` (`file_path`): the read rules.
//! - `Write` (`file_path`, `content`) and `Edit` (`file_path`, …): the write rules, and
//!   the size: `Write`'s `content` may not be over `max_write_bytes`; an `Edit` may not
//!   leave the file over `max_write_bytes` *and* bigger than it was. The size after an
//!   `Edit` is estimated from the file on disk (this policy has the workspace read-only):
//!   current size + (`new_string` − `old_string`) × occurrences (1 without `replace_all`;
//!   counted in the file with it — files over 16 MiB are not read and every possible
//!   occurrence is assumed). CRLF and curly-quote normalisation of `Edit` is ignored,
//!   so the estimate is close, not exact.
//! - `Glob` and `Grep` (`path`, default the workspace root): the read rules on the search
//!   directory. A directory is denied when it, or any file directly in it, matches a
//!   `read_deny` glob, and it must be wholly inside `read_allow` (a file in it and one in a
//!   sub-directory of it both match). A `Grep` of a single file is checked as a `Read`.
//!   A `Grep` of a directory that may hold denied files is **rewritten** to exclude them:
//!   every `read_deny` glob is appended to its `glob` filter as an exclusion (`!/secrets/**`,
//!   anchored at the workspace root as the search plugin anchors filters), so the files'
//!   contents never show. `Grep`'s own `glob` and `type` filters only narrow a search and
//!   are not checked. `Glob` lists names only and is not rewritten: it may list the names
//!   of read-denied files.
//! - Anything else (`Bash` included) is allowed: paths a shell command touches are not
//!   known here (the host's sandbox confines commands to the workspace).
//!
//! # Paths and globs
//!
//! A path is made relative to the workspace root after lexical normalisation (`.` and
//! `..` applied, so `src/../.env` is `.env`). When symlinks inside the workspace lead it
//! elsewhere in the workspace, the rules are checked on both the path and where it
//! leads, and either being denied denies. A path outside the workspace is left to the
//! tools, which refuse it themselves.
//!
//! Globs use `globset` (ripgrep's glob crate): `*` and `?` never match `/`, `**` matches
//! any number of directories (`**/.env` matches `.env` and `a/b/.env`; `.git/**` matches
//! everything inside `.git`), `{a,b}` alternates, `[abc]` classes, `\` escapes; matching
//! is case-sensitive.
//!
//! # Configuration
//!
//! `read_allow` (default `["**"]`), `read_deny` (`[]`), `write_allow` (`["**"]`),
//! `write_deny` (`["**/.git", "**/.git/**", "**/.env", "**/*.pem"]`), `max_write_bytes`
//! (1048576). A path is allowed when it matches an `*_allow` glob and no `*_deny` glob.
//! An invalid configuration (a bad glob, a wrong type, an unknown key) denies every tool
//! call with a message naming the key, until the operator fixes it.

mod paths;

use std::path::Path;
use std::sync::OnceLock;

use agent_plugin_sdk::serde_json::{self, Map, Value};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

pub use paths::{Target, target};

/// The plugin's name, as the model sees it in denials.
const NAME: &str = "policy-files";
/// The glob that matches every path.
const EVERYTHING: &str = "**";

/// A file name standing for "any file" when checking a whole directory.
const PROBE: &str = "__policy_files_probe__";

/// Files bigger than this are not read to count an `Edit`'s occurrences.
const MAX_COUNTED_FILE: u64 = 16 << 20;

/// The configuration keys and their defaults (the manifest carries the same).
const KEYS: &[&str] = &[
    "read_allow",
    "read_deny",
    "write_allow",
    "write_deny",
    "max_write_bytes",
];

/// A list of globs under one configuration key. Each glob is checked when the
/// configuration loads; the matcher is built on first use, so a call compiles only the
/// lists it needs (a fresh instance serves each call, and building a matcher is most of
/// this policy's cost: a `Read` never needs the write lists).
#[derive(Debug, Clone)]
struct Globs {
    key: &'static str,
    globs: Vec<String>,
    parsed: Vec<Glob>,
    set: OnceLock<Result<GlobSet, String>>,
}

impl Globs {
    fn load(
        table: &Map<String, Value>,
        key: &'static str,
        default: &[&str],
    ) -> Result<Self, String> {
        let globs: Vec<String> = match table.get(key) {
            None => default.iter().map(|g| g.to_string()).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Value::String(glob) => Ok(glob.clone()),
                    other => Err(format!(
                        "`{key}[{index}]` must be a glob string, got {other}"
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("`{key}` must be a list of globs, got {other}")),
        };
        let parsed = globs
            .iter()
            .enumerate()
            .map(|(index, glob)| {
                GlobBuilder::new(glob)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|error| {
                        format!("`{key}[{index}]` {glob:?} is not a valid glob: {error}")
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Globs {
            key,
            globs,
            parsed,
            set: OnceLock::new(),
        })
    }

    /// Whether any glob matches `path`. A list holding `**` (the default allow lists)
    /// matches every path without compiling a matcher: building the `GlobSet` compiles a
    /// regex, the largest part of this policy's cost in a call.
    fn matches(&self, path: &str) -> Result<bool, String> {
        if self.holds_everything() {
            return Ok(true);
        }
        Ok(self.first_match(path)?.is_some())
    }

    /// Whether the list holds `**`, which matches every path.
    fn holds_everything(&self) -> bool {
        self.globs.iter().any(|glob| glob == EVERYTHING)
    }

    /// The first glob matching `path`; an error when the list cannot be compiled (the
    /// call is then denied, naming the key).
    fn first_match(&self, path: &str) -> Result<Option<&str>, String> {
        // An empty list (the default `read_deny`) matches nothing: no matcher to build.
        if self.parsed.is_empty() {
            return Ok(None);
        }
        let set = self.set.get_or_init(|| {
            let mut builder = GlobSetBuilder::new();
            for glob in &self.parsed {
                builder.add(glob.clone());
            }
            builder
                .build()
                .map_err(|error| format!("`{}` could not be compiled: {error}", self.key))
        });
        let set = set
            .as_ref()
            .map_err(|problem| agent_plugin_sdk::policy::misconfigured(NAME, problem))?;
        Ok(set
            .matches(path)
            .first()
            .map(|&index| self.globs[index].as_str()))
    }

    fn quoted(&self) -> String {
        self.globs
            .iter()
            .map(|glob| format!("{glob:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reading or writing, with its rules.
#[derive(Debug, Clone)]
struct Rules {
    allow: Globs,
    deny: Globs,
    /// `read` or `write`, for the hint.
    writing: bool,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    read: Rules,
    write: Rules,
    /// The largest file `Write` or `Edit` may produce, in bytes.
    pub max_write_bytes: u64,
}

/// What to do with one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
    /// Run it with this input instead.
    Rewrite(String),
}

impl Config {
    /// Checks the configuration JSON (`host::config()`); the error names the bad key.
    pub fn load(config: &Value) -> Result<Config, String> {
        let Some(table) = config.as_object() else {
            return Err("the configuration is not a table".into());
        };
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "unknown key `{unknown}` (the keys are {})",
                KEYS.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let max_write_bytes = match table.get("max_write_bytes") {
            None => 1 << 20,
            Some(value) => value.as_u64().ok_or_else(|| {
                format!("`max_write_bytes` must be a whole number of bytes, got {value}")
            })?,
        };
        Ok(Config {
            read: Rules {
                allow: Globs::load(table, "read_allow", &["**"])?,
                deny: Globs::load(table, "read_deny", &[])?,
                writing: false,
            },
            write: Rules {
                allow: Globs::load(table, "write_allow", &["**"])?,
                deny: Globs::load(
                    table,
                    "write_deny",
                    &["**/.git", "**/.git/**", "**/.env", "**/*.pem"],
                )?,
                writing: true,
            },
            max_write_bytes,
        })
    }

    /// Decides on one tool call in the workspace `root`.
    pub fn check(&self, root: &Path, tool: &str, input: &str) -> Decision {
        if !matches!(tool, "Read" | "Write" | "Edit" | "Glob" | "Grep") {
            return Decision::Allow;
        }
        if root.as_os_str().is_empty() {
            return Decision::Deny(format!(
                "{NAME} was given no workspace, so it cannot check paths; tell the user"
            ));
        }
        let input: Value = serde_json::from_str(input).unwrap_or_default();
        let text = |key: &str| input.get(key).and_then(Value::as_str);
        let outcome = match tool {
            "Read" => self.file(root, &self.read, "reading", text("file_path")),
            "Write" => self
                .file(root, &self.write, "writing", text("file_path"))
                .and_then(|()| self.write_size(text("file_path"), text("content"))),
            "Edit" => self
                .file(root, &self.write, "editing", text("file_path"))
                .and_then(|()| self.edit_size(root, &input)),
            "Glob" => self
                .directory(root, "listing files in", text("path"))
                .map(|_| ()),
            _ => return self.grep(root, &input),
        };
        match outcome {
            Ok(()) => Decision::Allow,
            Err(reason) => Decision::Deny(reason),
        }
    }

    /// The rules for one file path.
    fn file(
        &self,
        root: &Path,
        rules: &Rules,
        verb: &str,
        path: Option<&str>,
    ) -> Result<(), String> {
        let Some(target) = path.and_then(|path| target(root, path)) else {
            return Ok(());
        };
        for form in target.forms() {
            let shown = target.show(form);
            if let Some(glob) = rules.deny.first_match(form)? {
                return Err(denied(verb, &shown, rules, glob));
            }
            if !rules.allow.matches(form)? {
                return Err(not_allowed(verb, &shown, rules));
            }
        }
        Ok(())
    }

    /// The read rules for a search directory (`None`: the root); the target when allowed.
    fn directory(
        &self,
        root: &Path,
        verb: &str,
        path: Option<&str>,
    ) -> Result<Option<Target>, String> {
        let Some(target) = target(root, path.unwrap_or("")) else {
            return Ok(None);
        };
        let rules = &self.read;
        for form in target.forms() {
            let shown = target.show(form);
            let child = join(form, PROBE);
            let grandchild = join(&child, PROBE);
            let denied_by = match rules.deny.first_match(form)? {
                Some(glob) => Some(glob),
                None => rules.deny.first_match(&child)?,
            };
            if let Some(glob) = denied_by {
                return Err(denied(verb, &shown, rules, glob));
            }
            if !rules.allow.matches(&child)? || !rules.allow.matches(&grandchild)? {
                return Err(format!(
                    "{verb} {shown} is not allowed by {NAME}: only these paths may be read \
                     (read_allow {}), and not everything in {shown} matches them; search a \
                     directory inside them, or Read the allowed files",
                    rules.allow.quoted()
                ));
            }
        }
        Ok(Some(target))
    }

    /// `Grep`: a file is checked as a `Read`; a directory as a search directory, with
    /// the denied files excluded through its `glob` filter.
    fn grep(&self, root: &Path, input: &Value) -> Decision {
        let path = input.get("path").and_then(Value::as_str);
        let is_file = path
            .and_then(|path| target(root, path))
            .is_some_and(|target| {
                std::fs::metadata(root.join(&target.lexical)).is_ok_and(|m| m.is_file())
            });
        let outcome = if is_file {
            self.file(root, &self.read, "searching", path)
                .map(|()| None)
        } else {
            self.directory(root, "searching", path)
        };
        match outcome {
            Ok(Some(_)) => {}
            Ok(None) => return Decision::Allow,
            Err(reason) => return Decision::Deny(reason),
        }
        if is_file || self.read.deny.globs.is_empty() {
            return Decision::Allow;
        }
        let mut exclusions = Vec::new();
        for glob in &self.read.deny.globs {
            match exclusion(glob) {
                Some(exclusion) => exclusions.push(exclusion),
                None => {
                    return Decision::Deny(format!(
                        "searching a directory is not allowed by {NAME} while read_deny holds \
                         {glob:?}, which cannot be passed to Grep as an exclusion (it has a \
                         space or a comma outside braces); Grep single files, or ask the user \
                         to fix the glob"
                    ));
                }
            }
        }
        let mut rewritten = input.clone();
        let filter = match input.get("glob").and_then(Value::as_str) {
            Some(existing) if !existing.trim().is_empty() => {
                format!("{existing} {}", exclusions.join(" "))
            }
            _ => exclusions.join(" "),
        };
        rewritten["glob"] = Value::String(filter);
        Decision::Rewrite(rewritten.to_string())
    }

    /// `Write`'s content against the size limit.
    fn write_size(&self, path: Option<&str>, content: Option<&str>) -> Result<(), String> {
        let size = content.map_or(0, str::len) as u64;
        if size <= self.max_write_bytes {
            return Ok(());
        }
        Err(format!(
            "writing {size} bytes to {} is over {NAME}'s max_write_bytes ({}); write smaller \
             files (split the content) or ask the user",
            path.unwrap_or("the file"),
            self.max_write_bytes
        ))
    }

    /// The size an `Edit` leaves the file at, against the size limit.
    fn edit_size(&self, root: &Path, input: &Value) -> Result<(), String> {
        let text = |key: &str| input.get(key).and_then(Value::as_str).unwrap_or("");
        let (old, new) = (text("old_string"), text("new_string"));
        let replace_all = input
            .get("replace_all")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let path = text("file_path");
        let file = if Path::new(path).is_absolute() {
            Path::new(path).to_path_buf()
        } else {
            root.join(path)
        };
        let current = std::fs::metadata(&file).map_or(0, |meta| meta.len());
        let after = edit_result_size(&file, current, old, new, replace_all);
        if after <= self.max_write_bytes || after <= current {
            return Ok(());
        }
        Err(format!(
            "editing {path} would make it about {after} bytes, over {NAME}'s max_write_bytes \
             ({}); keep files smaller (split them) or ask the user",
            self.max_write_bytes
        ))
    }

    /// The rules in words, for the system prompt.
    pub fn guidance(&self) -> String {
        let mut text = format!(
            "File tools are checked by the {NAME} guardrail (paths relative to the workspace \
             root; `**` is any number of directories, `*` any part of one name):"
        );
        for (rules, tools) in [
            (&self.read, "Read, Glob and Grep"),
            (&self.write, "Write and Edit"),
        ] {
            let (verb, done) = if rules.writing {
                ("write", "written")
            } else {
                ("read", "read")
            };
            if rules.deny.globs.is_empty() {
                text.push_str(&format!("\n- {tools}: no path is denied"));
            } else {
                text.push_str(&format!(
                    "\n- {tools} may not {verb} paths matching {}",
                    rules.deny.quoted()
                ));
            }
            if rules.allow.holds_everything() {
                text.push('.');
            } else {
                text.push_str(&format!(
                    "; only paths matching {} may be {done}.",
                    rules.allow.quoted()
                ));
            }
        }
        if !self.read.deny.globs.is_empty() {
            text.push_str(" Grep leaves files denied for reading out of its results.");
        }
        text.push_str(&format!(
            "\n- Write and Edit may not make a file bigger than {} bytes.\n\
             Paths touched by Bash commands are NOT checked by this policy (the sandbox confines \
             Bash to the workspace); do not use Bash to get around these rules.",
            self.max_write_bytes
        ));
        text
    }
}

/// `dir/name`, or `name` in the root.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// A `read_deny` glob as a Grep `glob` exclusion anchored at the workspace root, or
/// `None` when Grep's filter syntax would split it (whitespace, or a comma outside braces).
fn exclusion(glob: &str) -> Option<String> {
    if glob.contains(char::is_whitespace) {
        return None;
    }
    let mut depth = 0usize;
    for c in glob.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return None,
            _ => {}
        }
    }
    if glob.starts_with("**") || glob.starts_with('/') {
        Some(format!("!{glob}"))
    } else {
        Some(format!("!/{glob}"))
    }
}

/// The size of `file` (now `current` bytes) after replacing `old` with `new`.
fn edit_result_size(file: &Path, current: u64, old: &str, new: &str, replace_all: bool) -> u64 {
    let (old_len, new_len) = (old.len() as u64, new.len() as u64);
    if new_len <= old_len {
        return current;
    }
    let occurrences = if !replace_all || old.is_empty() {
        1
    } else if current <= MAX_COUNTED_FILE {
        match std::fs::read(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).matches(old).count().max(1) as u64,
            Err(_) => 1,
        }
    } else {
        (current / old_len).max(1)
    };
    current.saturating_add((new_len - old_len).saturating_mul(occurrences))
}

/// A denial by a deny glob, with what to do instead.
fn denied(verb: &str, shown: &str, rules: &Rules, glob: &str) -> String {
    let lower = glob.to_ascii_lowercase();
    let hint = if lower.contains(".git") {
        if rules.writing {
            "the repository's internals are changed with git commands, not by editing its files"
        } else {
            "use git commands to inspect the repository"
        }
    } else if [
        ".env",
        ".pem",
        "key",
        "secret",
        "credential",
        ".ssh",
        "token",
        "password",
    ]
    .iter()
    .any(|word| lower.contains(word))
    {
        if rules.writing {
            "secrets must not be written by the agent"
        } else {
            "secrets must not be read by the agent"
        }
    } else {
        "leave it alone, or ask the user"
    };
    format!(
        "{verb} {shown} is not allowed by {NAME} ({}_deny {glob:?}); {hint}",
        if rules.writing { "write" } else { "read" }
    )
}

/// A denial because no allow glob matches.
fn not_allowed(verb: &str, shown: &str, rules: &Rules) -> String {
    format!(
        "{verb} {shown} is not allowed by {NAME}: it matches none of {} ({}); stay within \
         those paths or ask the user",
        rules.allow.key,
        rules.allow.quoted()
    )
}

mod component {
    use std::path::PathBuf;

    use agent_plugin_sdk::host;
    use agent_plugin_sdk::policy::{Policy, ToolCall, Verdict, export_policy_plugin};

    use agent_plugin_sdk::policy::misconfigured;

    use super::{Config, Decision, NAME};

    struct Files;

    impl Policy for Files {
        fn check_call(call: ToolCall) -> Verdict {
            let config = match Config::load(&host::config()) {
                Ok(config) => config,
                Err(problem) => return Verdict::Deny(misconfigured(NAME, &problem)),
            };
            let root = PathBuf::from(host::workspace_root());
            match config.check(&root, &call.tool, &call.input) {
                Decision::Allow => Verdict::Allow,
                Decision::Deny(reason) => Verdict::Deny(reason),
                Decision::Rewrite(input) => Verdict::Rewrite(input),
            }
        }

        fn check_changes(_paths: Vec<String>) -> Result<(), String> {
            Ok(())
        }

        fn guidance() -> String {
            match Config::load(&host::config()) {
                Ok(config) => config.guidance(),
                Err(problem) => misconfigured(NAME, &problem),
            }
        }
    }

    export_policy_plugin!(Files);
}

#[cfg(test)]
mod tests;
