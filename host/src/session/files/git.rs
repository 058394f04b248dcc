//! Git, run on a repository the model controls.
//!
//! Everything in `.git/` is the model's to write, and a repository's config can make git
//! run programs: `core.fsmonitor` on every index refresh, `filter.<driver>.clean` and
//! `.process` on worktree files, `diff.external` and `diff.<driver>.command`, textconv
//! drivers, `core.pager`, hooks (`post-index-change` fires when an index is written),
//! `core.sshCommand` when a partial clone lazily fetches, and `include.path` pulls in any
//! file. So git never runs in the host process: it runs as a confined command, exactly as
//! the Bash tool's commands do, where a program it starts can do no more than the model
//! could anyway. And every program a repository can name is switched off, so asking for a
//! diff never runs the model's code on the user's behalf:
//!
//! - no system or global config (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`:
//!   the command's `HOME` is in the workspace too), no translated messages (`LC_ALL=C`),
//!   no repository above the workspace (`GIT_CEILING_DIRECTORIES`);
//! - `--no-pager`, `core.fsmonitor=false`, `core.hooksPath=/dev/null`,
//!   `protocol.allow=never` and `GIT_NO_LAZY_FETCH`;
//! - every filter driver the config defines (listed first with `git config`, includes
//!   followed) gets empty `clean`, `smudge` and `process` and `required=false`, passed
//!   through `GIT_CONFIG_COUNT` so that no driver name, whatever its characters, can
//!   escape its key;
//! - the diff itself takes `--no-ext-diff --no-textconv` ([`super::diff`]).
//!
//! A command in the same workspace could add a filter between the listing and the diff;
//! what it would run then runs confined, as the model's own commands do.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diff::DiffError;
use crate::exec::{CommandOutput, CommandRequest, CommandRunner};

/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest script run (one argument of `bash -c`, which the kernel caps at 128 KiB).
const MAX_SCRIPT_BYTES: usize = 96 * 1024;

/// The exit code of the probe for "not a repository".
const NOT_A_REPOSITORY: i32 = 3;

/// The exit code of the prelude when git is missing (bash's own "command not found").
const GIT_MISSING: i32 = 127;

/// Git for one workspace, with the repository's filter drivers known and neutralised.
pub struct ConfinedGit<'a> {
    runner: &'a CommandRunner,
    /// The canonical workspace.
    workspace: PathBuf,
    /// The shell lines before each script: the environment and the function `g`.
    prelude: String,
}

impl<'a> ConfinedGit<'a> {
    /// Checks that `workspace` is a git repository with git installed, and lists its filter
    /// drivers so that every later command neutralises them.
    pub fn open(runner: &'a CommandRunner, workspace: &Path) -> Result<Self, DiffError> {
        let workspace = workspace.canonicalize().map_err(DiffError::Workspace)?;
        let mut git = Self {
            runner,
            prelude: prelude(&workspace, &BTreeSet::new()),
            workspace,
        };
        let probe = format!(
            "inside=$(g rev-parse --is-inside-work-tree 2>&1) || {{\n\
             case $inside in *'not a git repository'*) exit {NOT_A_REPOSITORY};; esac\n\
             printf '%s\\n' \"$inside\" >&2; exit 4; }}\n\
             [ \"$inside\" = true ] || exit {NOT_A_REPOSITORY}\n\
             g config -z --name-only --get-regexp '^filter\\.'\n\
             status=$?; [ $status -le 1 ] || exit $status\n"
        );
        let output = git.run(&probe)?;
        if output.truncated {
            return Err(DiffError::Git(
                "the repository's config lists more filter drivers than can be read; \
                 remove the unused ones from .git/config"
                    .into(),
            ));
        }
        let drivers = filter_drivers(&output.stdout)?;
        git.prelude = prelude(&git.workspace, &drivers);
        Ok(git)
    }

    /// The canonical workspace.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// Runs `script` with bash in the workspace after the prelude, where `g` is git with
    /// every repository-named program off. A non-zero exit is an error carrying git's
    /// message; the output is returned otherwise.
    pub fn run(&self, script: &str) -> Result<CommandOutput, DiffError> {
        let command_line = format!("{}{script}", self.prelude);
        if command_line.len() > MAX_SCRIPT_BYTES {
            return Err(DiffError::Git(
                "the repository's config defines too many filter drivers (or too long names) \
                 to switch off; remove the unused ones from .git/config"
                    .into(),
            ));
        }
        let output = self.runner.run(&CommandRequest {
            command_line: &command_line,
            workspace: &self.workspace,
            cwd: &self.workspace,
            timeout: GIT_TIMEOUT,
            cancel: None,
        })?;
        if output.timed_out {
            return Err(DiffError::TimedOut(GIT_TIMEOUT));
        }
        match output.exit_code {
            Some(0) => Ok(output),
            Some(GIT_MISSING) => Err(DiffError::GitMissing),
            Some(NOT_A_REPOSITORY) => Err(DiffError::NotARepository),
            Some(code) => Err(DiffError::Git(message(
                &output.stderr,
                &format!("exit code {code}"),
            ))),
            None => Err(DiffError::Git(message(
                &output.stderr,
                &format!("stopped by signal {}", output.signal.unwrap_or(0)),
            ))),
        }
    }
}

/// The lines run before every script.
fn prelude(workspace: &Path, filter_drivers: &BTreeSet<String>) -> String {
    let mut lines = vec![
        // Variables an operator might pass through that would point git elsewhere.
        "unset GIT_DIR GIT_WORK_TREE GIT_COMMON_DIR GIT_INDEX_FILE GIT_OBJECT_DIRECTORY \
         GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_CONFIG GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT \
         GIT_EXTERNAL_DIFF GIT_DIFF_OPTS GIT_ATTR_SOURCE GIT_NAMESPACE"
            .to_string(),
        "export LC_ALL=C GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_OPTIONAL_LOCKS=0 \
         GIT_NO_LAZY_FETCH=1 GIT_TERMINAL_PROMPT=0"
            .to_string(),
    ];
    if let Some(parent) = workspace.parent() {
        lines.push(format!(
            "export GIT_CEILING_DIRECTORIES={}",
            shell_quote(&parent.to_string_lossy())
        ));
    }
    let mut count = 0;
    for driver in filter_drivers {
        for (key, value) in [
            ("clean", ""),
            ("smudge", ""),
            ("process", ""),
            ("required", "false"),
        ] {
            lines.push(format!(
                "export GIT_CONFIG_KEY_{count}={} GIT_CONFIG_VALUE_{count}={value}",
                shell_quote(&format!("filter.{driver}.{key}"))
            ));
            count += 1;
        }
    }
    if count > 0 {
        lines.push(format!("export GIT_CONFIG_COUNT={count}"));
    }
    lines.push(format!(
        "command -v git >/dev/null 2>&1 || {{ echo 'git is not installed' >&2; exit {GIT_MISSING}; }}"
    ));
    lines.push(
        "g() { git --no-pager -c core.fsmonitor=false -c core.hooksPath=/dev/null \
         -c core.pager=cat -c protocol.allow=never \"$@\"; }"
            .to_string(),
    );
    let mut prelude = lines.join("\n");
    prelude.push('\n');
    prelude
}

/// The filter driver names in `git config -z --name-only` output (`filter.<driver>.<key>`
/// entries, NUL-terminated).
fn filter_drivers(listing: &[u8]) -> Result<BTreeSet<String>, DiffError> {
    let mut drivers = BTreeSet::new();
    for entry in listing.split(|&b| b == 0).filter(|entry| !entry.is_empty()) {
        let entry = std::str::from_utf8(entry).map_err(|_| {
            DiffError::Git(
                "the repository's config defines a filter driver whose name is not UTF-8; \
                 remove it from .git/config"
                    .into(),
            )
        })?;
        let Some(rest) = entry.strip_prefix("filter.") else {
            continue;
        };
        if let Some((driver, _key)) = rest.rsplit_once('.') {
            drivers.insert(driver.to_string());
        }
    }
    Ok(drivers)
}

/// `text` in single quotes for bash.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The last lines of git's standard error, or `fallback` when it said nothing.
fn message(stderr: &[u8], fallback: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    if tail.is_empty() {
        fallback.to_string()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names_come_from_the_listing_whatever_they_hold() {
        let listing = b"filter.lfs.clean\0filter.lfs.smudge\0filter.a.b=c.process\0filter.x\0";
        let drivers = filter_drivers(listing).unwrap();
        assert_eq!(drivers.into_iter().collect::<Vec<_>>(), ["a.b=c", "lfs"]);
        assert!(filter_drivers(b"filter.\xff.clean\0").is_err());
    }

    #[test]
    fn overrides_quote_every_driver_name() {
        let drivers: BTreeSet<String> = ["it's".to_string()].into();
        let prelude = prelude(Path::new("/ws/user"), &drivers);
        assert!(prelude.contains("GIT_CONFIG_KEY_0='filter.it'\\''s.clean' GIT_CONFIG_VALUE_0="));
        assert!(
            prelude
                .contains("GIT_CONFIG_KEY_3='filter.it'\\''s.required' GIT_CONFIG_VALUE_3=false")
        );
        assert!(prelude.contains("export GIT_CONFIG_COUNT=4"));
        assert!(prelude.contains("GIT_CEILING_DIRECTORIES='/ws'"));
    }
}
