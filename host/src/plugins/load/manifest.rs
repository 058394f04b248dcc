//! The plugin manifest: the TOML file next to a component (`files.toml` beside
//! `files.wasm`) that names the plugin, its world, what it asks for and its limits.
//!
//! ```toml
//! name = "files"
//! world = "tool-plugin"
//! version = "0.1.0"
//! description = "Read, Write and Edit files in the workspace"
//!
//! [capabilities]
//! workspace = "read-write"   # "none" | "read-only" | "read-write"
//! session_state = true
//! log = true
//! exec = false
//!
//! [limits]
//! memory_mb = 256
//! timeout_ms = 30000
//! max_result_kb = 1024
//!
//! [config]                   # handed to the plugin as JSON; the operator may override
//! ```

use std::path::Path;

use serde::Deserialize;

pub use crate::plugins::engine::permissions::{
    Capabilities, Limits, MAX_MEMORY_MB, MAX_RESULT_KB, MAX_TIMEOUT_MS, WorkspaceAccess,
};

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum World {
    /// Exports `agent:plugin/tools`.
    #[serde(rename = "tool-plugin")]
    Tool,
    /// Exports `agent:plugin/policy`.
    #[serde(rename = "policy-plugin")]
    Policy,
}

impl World {
    /// The name used in WIT and manifests.
    pub fn name(self) -> &'static str {
        match self {
            World::Tool => "tool-plugin",
            World::Policy => "policy-plugin",
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed and validated manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name: `[a-z0-9-]{1,64}`, unique among loaded plugins.
    pub name: String,
    /// The world the component must implement.
    pub world: World,
    /// The plugin's own version (informational).
    #[serde(default)]
    pub version: Option<String>,
    /// One line about the plugin.
    #[serde(default)]
    pub description: Option<String>,
    /// What it asks for.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Its per-call limits.
    #[serde(default)]
    pub limits: Limits,
    /// Its default configuration, overlaid by the operator's.
    #[serde(default)]
    pub config: toml::Table,
}

impl Manifest {
    /// Parses and validates manifest text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Self> {
        let manifest: Manifest = toml::from_str(text).map_err(|error| {
            anyhow::anyhow!(
                "manifest {} is not valid: {}",
                origin.display(),
                error.message()
            )
        })?;
        manifest.validate().map_err(|problem| {
            anyhow::anyhow!("manifest {} is not valid: {problem}", origin.display())
        })?;
        Ok(manifest)
    }

    /// Reads and parses the manifest at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            anyhow::anyhow!(
                "cannot read manifest {}: {error} (every plugin needs a <name>.toml next to its <name>.wasm)",
                path.display()
            )
        })?;
        Self::parse(&text, path)
    }

    fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(format!(
                "name {:?} must be 1-64 characters of a-z, 0-9 and '-'",
                self.name
            ));
        }
        let limits = &self.limits;
        let checks = [
            ("limits.memory_mb", limits.memory_mb, MAX_MEMORY_MB),
            ("limits.timeout_ms", limits.timeout_ms, MAX_TIMEOUT_MS),
            ("limits.max_result_kb", limits.max_result_kb, MAX_RESULT_KB),
        ];
        for (key, value, max) in checks {
            if value == 0 || value > max {
                return Err(format!("{key} = {value} must be between 1 and {max}"));
            }
        }
        if self.world == World::Policy && self.capabilities.workspace == WorkspaceAccess::ReadWrite
        {
            return Err(
                "a policy-plugin may only ask for workspace = \"read-only\": policies judge, they do not write"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Manifest> {
        Manifest::parse(text, Path::new("x.toml"))
    }

    #[test]
    fn a_full_manifest_parses() {
        let manifest = parse(
            r#"
            name = "files"
            world = "tool-plugin"
            [capabilities]
            workspace = "read-write"
            session_state = true
            [limits]
            memory_mb = 64
            [config]
            answer = 42
            "#,
        )
        .unwrap();
        assert_eq!(manifest.world, World::Tool);
        assert_eq!(manifest.capabilities.workspace, WorkspaceAccess::ReadWrite);
        assert!(manifest.capabilities.log && !manifest.capabilities.exec);
        assert_eq!(manifest.limits.memory_bytes(), 64 << 20);
        assert_eq!(manifest.limits.timeout_ms, 30_000);
        assert_eq!(manifest.config["answer"].as_integer(), Some(42));
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let cases = [
            ("name = \"x\"\nworld = \"other\"", "unknown variant"),
            ("name = \"Bad Name\"\nworld = \"tool-plugin\"", "a-z, 0-9"),
            (
                "name = \"x\"\nworld = \"tool-plugin\"\n[limits]\nmemory_mb = 0",
                "limits.memory_mb",
            ),
            (
                "name = \"x\"\nworld = \"tool-plugin\"\nsurprise = 1",
                "unknown field",
            ),
            ("world = \"tool-plugin\"", "missing field `name`"),
            (
                "name = \"p\"\nworld = \"policy-plugin\"\n[capabilities]\nworkspace = \"read-write\"",
                "read-only",
            ),
        ];
        for (text, expected) in cases {
            let message = format!("{:#}", parse(text).unwrap_err());
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(message.contains("x.toml"), "{message}");
        }
    }
}
