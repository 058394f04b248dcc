//! What a plugin author gets from the host binary itself, so a plugin can be started,
//! built and tried from any directory with no checkout of this repository:
//! `agent-host plugin new` (a project with the guest SDK and the WIT package vendored) and
//! `agent-host plugin wit` (the WIT package, for other languages' tooling).
//!
//! The templates live in `plugins/templates/`, the SDK in `plugins/sdk/`, the contract in
//! `wit/`; all are compiled into the binary, so a project matches the host that made it.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::plugins::load::loader::WIT_VERSION;

/// The WIT package (`agent:plugin`) of each version this host speaks, newest first.
const WIT_PACKAGES: &[(&str, &str)] = &[(WIT_VERSION, include_str!("../../../wit/plugin.wit"))];

/// The guest SDK's version (`plugins/sdk/Cargo.toml`).
pub const SDK_VERSION: &str = "0.1.0";

/// The guest SDK, file by file, as vendored into a Rust project (`vendor/agent-plugin-sdk/`).
const SDK_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugins/sdk/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "src/host.rs",
        include_str!("../../../plugins/sdk/src/host.rs"),
    ),
    (
        "src/paths.rs",
        include_str!("../../../plugins/sdk/src/paths.rs"),
    ),
    (
        "src/state.rs",
        include_str!("../../../plugins/sdk/src/state.rs"),
    ),
];

/// The componentize-py the Python policies are built with (pinned once, for the built-in
/// Python test policy and every scaffolded one).
const PYTHON_REQUIREMENTS: &str =
    include_str!("../../../plugins/python/policy-example-py/requirements.txt");

/// What a plugin offers the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Tools the model calls (`tool-plugin` world).
    Tool,
    /// A guardrail every tool call passes (`policy-plugin` world).
    Policy,
}

/// The language a new plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginLanguage {
    /// A cargo project with the guest SDK.
    Rust,
    /// A componentize-py project.
    Python,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Tool => "tool",
            PluginKind::Policy => "policy",
        })
    }
}

/// One file of a template: where it goes in the project, its text, and whether it runs.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> TemplateFile {
    TemplateFile {
        path,
        text,
        executable: false,
    }
}

const RUST_TOOL: &[TemplateFile] = &[
    file(
        "Cargo.toml",
        include_str!("../../../plugins/templates/rust-tool/Cargo.toml.tmpl"),
    ),
    file(
        "plugin.toml",
        include_str!("../../../plugins/templates/rust-tool/plugin.toml.tmpl"),
    ),
    file(
        "README.md",
        include_str!("../../../plugins/templates/rust-tool/README.md.tmpl"),
    ),
    file(
        "src/lib.rs",
        include_str!("../../../plugins/templates/rust-tool/src/lib.rs"),
    ),
    file(
        ".gitignore",
        include_str!("../../../plugins/templates/rust-tool/gitignore"),
    ),
];

const RUST_POLICY: &[TemplateFile] = &[
    file(
        "Cargo.toml",
        include_str!("../../../plugins/templates/rust-policy/Cargo.toml.tmpl"),
    ),
    file(
        "plugin.toml",
        include_str!("../../../plugins/templates/rust-policy/plugin.toml.tmpl"),
    ),
    file(
        "README.md",
        include_str!("../../../plugins/templates/rust-policy/README.md.tmpl"),
    ),
    file(
        "src/lib.rs",
        include_str!("../../../plugins/templates/rust-policy/src/lib.rs"),
    ),
    file(
        ".gitignore",
        include_str!("../../../plugins/templates/rust-policy/gitignore"),
    ),
];

/// The build script of both Python kinds: the world is called `plugin` in each.
const PYTHON_BUILD: TemplateFile = TemplateFile {
    path: "build.sh",
    text: include_str!("../../../plugins/templates/python-policy/build.sh.tmpl"),
    executable: true,
};

const PYTHON_GITIGNORE: TemplateFile = file(
    ".gitignore",
    include_str!("../../../plugins/templates/python-policy/gitignore"),
);

const PYTHON_POLICY: &[TemplateFile] = &[
    file(
        "app.py",
        include_str!("../../../plugins/templates/python-policy/app.py"),
    ),
    file(
        "rules.py",
        include_str!("../../../plugins/templates/python-policy/rules.py"),
    ),
    file(
        "test_rules.py",
        include_str!("../../../plugins/templates/python-policy/test_rules.py"),
    ),
    file(
        "plugin.toml",
        include_str!("../../../plugins/templates/python-policy/plugin.toml.tmpl"),
    ),
    file(
        "wit/world.wit",
        include_str!("../../../plugins/templates/python-policy/world.wit.tmpl"),
    ),
    file("requirements.txt", PYTHON_REQUIREMENTS),
    PYTHON_BUILD,
    file(
        "README.md",
        include_str!("../../../plugins/templates/python-policy/README.md.tmpl"),
    ),
    PYTHON_GITIGNORE,
];

const PYTHON_TOOL: &[TemplateFile] = &[
    file(
        "app.py",
        include_str!("../../../plugins/templates/python-tool/app.py"),
    ),
    file(
        "words.py",
        include_str!("../../../plugins/templates/python-tool/words.py"),
    ),
    file(
        "test_words.py",
        include_str!("../../../plugins/templates/python-tool/test_words.py"),
    ),
    file(
        "plugin.toml",
        include_str!("../../../plugins/templates/python-tool/plugin.toml.tmpl"),
    ),
    file(
        "wit/world.wit",
        include_str!("../../../plugins/templates/python-tool/world.wit.tmpl"),
    ),
    file("requirements.txt", PYTHON_REQUIREMENTS),
    PYTHON_BUILD,
    file(
        "README.md",
        include_str!("../../../plugins/templates/python-tool/README.md.tmpl"),
    ),
    PYTHON_GITIGNORE,
];

/// A new plugin project, as `agent-host plugin new` asks for it.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// The plugin's name: its manifest name, package name and installed file names.
    pub name: String,
    /// Tool or policy.
    pub kind: PluginKind,
    /// Rust or Python.
    pub language: PluginLanguage,
    /// Where the project goes; must not exist or be empty.
    pub dir: PathBuf,
}

/// What [`scaffold`] wrote.
#[derive(Debug)]
pub struct Scaffolded {
    /// The project directory.
    pub dir: PathBuf,
    /// Every file written, relative to `dir`, in order.
    pub files: Vec<PathBuf>,
    /// The commands that build, test and try the project, for the user to run next.
    pub next_steps: Vec<String>,
}

/// Writes a new plugin project. Refuses a bad name and a directory that already holds
/// anything, before writing a byte: nothing of the user's is overwritten.
pub fn scaffold(request: &NewPlugin) -> anyhow::Result<Scaffolded> {
    check_plugin_name(&request.name)?;
    let (template, vendored) = match (request.language, request.kind) {
        (PluginLanguage::Rust, PluginKind::Tool) => (RUST_TOOL, Vendored::RustSdk),
        (PluginLanguage::Rust, PluginKind::Policy) => (RUST_POLICY, Vendored::RustSdk),
        (PluginLanguage::Python, PluginKind::Policy) => (PYTHON_POLICY, Vendored::PythonWit),
        (PluginLanguage::Python, PluginKind::Tool) => (PYTHON_TOOL, Vendored::PythonWit),
    };
    let dir = &request.dir;
    check_empty_or_missing(dir)?;
    let values = Placeholders::for_request(request);
    let mut files = Vec::new();
    for entry in template {
        write_file(
            dir,
            entry.path,
            &values.render(entry.text),
            entry.executable,
        )?;
        files.push(PathBuf::from(entry.path));
    }
    match vendored {
        Vendored::RustSdk => {
            write_file(dir, "wit/plugin.wit", WIT_PACKAGES[0].1, false)?;
            files.push(PathBuf::from("wit/plugin.wit"));
            for (path, text) in SDK_FILES {
                let path = format!("vendor/agent-plugin-sdk/{path}");
                write_file(dir, &path, text, false)?;
                files.push(PathBuf::from(path));
            }
        }
        Vendored::PythonWit => {
            let path = "wit/deps/agent-plugin/plugin.wit";
            write_file(dir, path, WIT_PACKAGES[0].1, false)?;
            files.push(PathBuf::from(path));
        }
    }
    Ok(Scaffolded {
        dir: dir.clone(),
        files,
        next_steps: next_steps(request),
    })
}

/// What besides the template a project carries.
enum Vendored {
    /// The guest SDK in `vendor/agent-plugin-sdk/` and the WIT package in `wit/`.
    RustSdk,
    /// The WIT package as a dependency of the project's own world, in `wit/deps/`.
    PythonWit,
}

/// The commands that build and try a new project, as its README gives them.
fn next_steps(request: &NewPlugin) -> Vec<String> {
    let name = &request.name;
    let (build, wasm) = match request.language {
        PluginLanguage::Rust => (
            vec![
                "cargo build --release --target wasm32-wasip2".to_string(),
                "cargo test".to_string(),
            ],
            format!("target/wasm32-wasip2/release/{}.wasm", file_stem(name)),
        ),
        PluginLanguage::Python => (
            vec![
                "python3 -m pip install -r requirements.txt".to_string(),
                "./build.sh".to_string(),
                "python3 -m unittest".to_string(),
            ],
            format!("build/{name}.wasm"),
        ),
    };
    let mut steps = vec![format!("cd {}", request.dir.display())];
    steps.extend(build);
    steps.push(format!("agent-host plugin check {wasm}"));
    steps.push(match request.kind {
        PluginKind::Tool => {
            format!("agent-host tools call --plugin {wasm} WordCount '{{\"path\": \"README.md\"}}' --workspace .")
        }
        PluginKind::Policy => format!(
            "agent-host tools call --policy {wasm} Write '{{\"file_path\": \"'\"$PWD\"'/Cargo.lock\", \"content\": \"\"}}' --workspace ."
        ),
    });
    steps
}

/// The values filled into the templates' `{{key}}` placeholders.
struct Placeholders {
    pairs: Vec<(&'static str, String)>,
}

impl Placeholders {
    fn for_request(request: &NewPlugin) -> Self {
        let componentize_py = PYTHON_REQUIREMENTS
            .lines()
            .find_map(|line| line.trim().strip_prefix("componentize-py=="))
            .unwrap_or("(see requirements.txt)")
            .to_string();
        Self {
            pairs: vec![
                ("name", request.name.clone()),
                ("file_stem", file_stem(&request.name)),
                ("kind", request.kind.to_string()),
                ("wit_version", WIT_VERSION.to_string()),
                ("sdk_version", SDK_VERSION.to_string()),
                ("host_version", env!("CARGO_PKG_VERSION").to_string()),
                ("componentize_py", componentize_py),
            ],
        }
    }

    fn render(&self, template: &str) -> String {
        self.pairs
            .iter()
            .fold(template.to_string(), |text, (key, value)| {
                text.replace(&format!("{{{{{key}}}}}"), value)
            })
    }
}

/// The file cargo names a cdylib after: the package name with `-` made `_`.
fn file_stem(name: &str) -> String {
    name.replace('-', "_")
}

/// A plugin name is also a cargo package name, a WIT package name and a file name: lower
/// case letters, digits and single `-` between words, starting with a letter.
fn check_plugin_name(name: &str) -> anyhow::Result<()> {
    let well_formed = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !well_formed {
        anyhow::bail!(
            "the plugin name {name:?} must be 1-64 lower-case letters, digits and single '-' \
             between words, starting with a letter (e.g. word-count): it becomes the cargo \
             package, the WIT package and the installed file names"
        );
    }
    Ok(())
}

fn check_empty_or_missing(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                anyhow::bail!(
                    "{} already exists and is not empty; choose a new directory (nothing was \
                     written)",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot use {}", dir.display())),
    }
}

fn write_file(dir: &Path, path: &str, text: &str, executable: bool) -> anyhow::Result<()> {
    let path = dir.join(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

/// The versions of the WIT package this host can write, newest first.
pub fn wit_versions() -> Vec<&'static str> {
    WIT_PACKAGES.iter().map(|(version, _)| *version).collect()
}

/// Writes the WIT package of `version` (default: the newest) as `out/plugin.wit`, and
/// returns the file written.
pub fn write_wit(version: Option<&str>, out: &Path) -> anyhow::Result<PathBuf> {
    let (version, text) = match version {
        None => WIT_PACKAGES[0],
        Some(wanted) => *WIT_PACKAGES
            .iter()
            .find(|(version, _)| *version == wanted)
            .with_context(|| {
                format!(
                    "this host does not speak agent:plugin@{wanted}; it speaks {}",
                    wit_versions().join(", ")
                )
            })?,
    };
    let path = out.join("plugin.wit");
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::debug!(version, file = %path.display(), "wrote the WIT package");
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, kind: PluginKind, language: PluginLanguage, dir: &Path) -> NewPlugin {
        NewPlugin {
            name: name.into(),
            kind,
            language,
            dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn every_placeholder_of_every_template_is_filled() {
        let temp = tempfile::tempdir().unwrap();
        for (language, kind) in [
            (PluginLanguage::Rust, PluginKind::Tool),
            (PluginLanguage::Rust, PluginKind::Policy),
            (PluginLanguage::Python, PluginKind::Tool),
            (PluginLanguage::Python, PluginKind::Policy),
        ] {
            let dir = temp.path().join(format!("{language:?}-{kind}"));
            let made = scaffold(&request("my-plugin", kind, language, &dir)).unwrap();
            for file in &made.files {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                assert!(!text.contains("{{"), "{}: {text}", file.display());
            }
            let manifest = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
            assert!(manifest.contains("name = \"my-plugin\""), "{manifest}");
            assert!(manifest.contains(&format!("agent:plugin@{WIT_VERSION}")));
        }
    }

    #[test]
    fn the_vendored_sdk_names_the_wit_it_was_generated_from() {
        let sdk = SDK_FILES[0].1;
        assert!(
            sdk.contains(&format!("version = \"{SDK_VERSION}\"")),
            "{sdk}"
        );
        assert!(sdk.contains(&format!("wit = \"agent:plugin@{WIT_VERSION}\"")));
        assert!(
            WIT_PACKAGES[0]
                .1
                .contains(&format!("package agent:plugin@{WIT_VERSION};"))
        );
    }

    #[test]
    fn bad_requests_write_nothing() {
        let temp = tempfile::tempdir().unwrap();
        for bad in ["", "Word", "1st", "a_b", "a--b", "a-", "a b", "../x"] {
            let dir = temp.path().join("x");
            let error = scaffold(&request(bad, PluginKind::Tool, PluginLanguage::Rust, &dir));
            assert!(
                error.unwrap_err().to_string().contains("plugin name"),
                "{bad:?}"
            );
            assert!(!dir.exists());
        }
        std::fs::write(temp.path().join("keep.txt"), "mine").unwrap();
        let occupied = request("x", PluginKind::Tool, PluginLanguage::Rust, temp.path());
        let error = scaffold(&occupied).unwrap_err().to_string();
        assert!(error.contains("not empty"), "{error}");
        assert_eq!(
            std::fs::read_dir(temp.path()).unwrap().count(),
            1,
            "only keep.txt"
        );
    }

    #[test]
    fn wit_is_written_per_version() {
        let temp = tempfile::tempdir().unwrap();
        let written = write_wit(None, temp.path()).unwrap();
        let text = std::fs::read_to_string(written).unwrap();
        assert!(text.contains(&format!("package agent:plugin@{WIT_VERSION};")));
        let error = write_wit(Some("9.9.9"), temp.path()).unwrap_err();
        assert!(error.to_string().contains(WIT_VERSION), "{error}");
    }
}
