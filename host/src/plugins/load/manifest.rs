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
//!
//! A `policy-plugin` may name the tools whose calls its `check-call` judges; every other
//! call skips it (no instance is made), which is most of a call's cost when a policy has
//! nothing to say about it. Left out, the policy sees every call.
//!
//! ```toml
//! [policy]
//! tools = ["Bash"]
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
    /// Which calls a policy checks (`[policy]`; policies only).
    #[serde(default)]
    pub policy: Option<PolicySection>,
}

/// A policy's `[policy]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// The tools whose calls `check-call` sees; `None`: every call.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

/// Which tool calls a policy's `check-call` is consulted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallScope {
    /// Every call (no `[policy] tools` in the manifest).
    Every,
    /// Only calls of these tools (possibly none: a policy that only checks changes).
    Only(Vec<String>),
}

impl CallScope {
    /// Whether a call of `tool` goes through the policy's `check-call`.
    pub fn covers(&self, tool: &str) -> bool {
        match self {
            CallScope::Every => true,
            CallScope::Only(tools) => tools.iter().any(|t| t == tool),
        }
    }
}

impl std::fmt::Display for CallScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallScope::Every => f.write_str("every tool call"),
            CallScope::Only(tools) if tools.is_empty() => {
                f.write_str("no tool call (it only checks changes)")
            }
            CallScope::Only(tools) => write!(f, "calls of {}", tools.join(", ")),
        }
    }
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

    /// The calls a policy's `check-call` sees.
    pub fn call_scope(&self) -> CallScope {
        match self.policy.as_ref().and_then(|p| p.tools.clone()) {
            None => CallScope::Every,
            Some(tools) => CallScope::Only(tools),
        }
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
        if let Some(section) = &self.policy {
            if self.world != World::Policy {
                return Err(
                    "[policy] is for a policy-plugin only: tools are not checked by other tools"
                        .into(),
                );
            }
            let tools = section.tools.as_deref().unwrap_or_default();
            for (index, tool) in tools.iter().enumerate() {
                if !crate::shared::is_plain_name(tool) {
                    return Err(format!(
                        "policy.tools[{index}] {tool:?} is not a tool name (1-64 characters of \
                         A-Z, a-z, 0-9, '_' and '-')"
                    ));
                }
                if tools[..index].contains(tool) {
                    return Err(format!("policy.tools names {tool:?} twice"));
                }
            }
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
        assert_eq!(manifest.call_scope(), CallScope::Every);
    }

    #[test]
    fn a_policy_names_the_tools_it_checks() {
        let scoped = parse(
            "name = \"p\"\nworld = \"policy-plugin\"\n[policy]\ntools = [\"Bash\", \"Write\"]",
        )
        .unwrap();
        let scope = scoped.call_scope();
        assert!(scope.covers("Bash") && scope.covers("Write"));
        // Names are exact, as the model calls them.
        assert!(!scope.covers("bash") && !scope.covers("Read"));
        assert_eq!(scope.to_string(), "calls of Bash, Write");
        let none = parse("name = \"p\"\nworld = \"policy-plugin\"\n[policy]\ntools = []")
            .unwrap()
            .call_scope();
        assert!(!none.covers("Bash"));
        assert!(none.to_string().contains("only checks changes"));
        // An empty table is the same as none: every call.
        let every = parse("name = \"p\"\nworld = \"policy-plugin\"\n[policy]").unwrap();
        assert_eq!(every.call_scope(), CallScope::Every);
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
            (
                "name = \"x\"\nworld = \"tool-plugin\"\n[policy]\ntools = [\"Bash\"]",
                "policy-plugin only",
            ),
            (
                "name = \"x\"\nworld = \"policy-plugin\"\n[policy]\ntools = [\"Ba sh\"]",
                "policy.tools[0] \"Ba sh\" is not a tool name",
            ),
            (
                "name = \"x\"\nworld = \"policy-plugin\"\n[policy]\ntools = [\"Bash\", \"Bash\"]",
                "names \"Bash\" twice",
            ),
            (
                "name = \"x\"\nworld = \"policy-plugin\"\n[policy]\ntools = \"Bash\"",
                "invalid type",
            ),
            (
                "name = \"x\"\nworld = \"policy-plugin\"\n[policy]\ntool = [\"Bash\"]",
                "unknown field `tool`",
            ),
        ];
        for (text, expected) in cases {
            let message = format!("{:#}", parse(text).unwrap_err());
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(message.contains("x.toml"), "{message}");
        }
    }
}
