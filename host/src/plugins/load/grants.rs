//! The operator's side of the two-key capability check: what each plugin *may* have.
//!
//! A capability is granted to a plugin only when its manifest asks for it **and** the
//! operator's configuration allows it. A plugin that asks for more than it is allowed is
//! refused at load, with the capability and the setting to change named, rather than
//! loaded with less than it expects.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::manifest::{Capabilities, Manifest, WorkspaceAccess};

/// The operator's settings for all plugins (`[plugins.<name>]` tables in the config).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct PluginSettings {
    /// Settings by plugin name; plugins not named get [`PluginGrant::default`].
    pub by_name: BTreeMap<String, PluginGrant>,
}

impl PluginSettings {
    /// The settings for plugin `name`.
    pub fn for_plugin(&self, name: &str) -> PluginGrant {
        self.by_name.get(name).cloned().unwrap_or_default()
    }
}

/// What the operator allows one plugin, and its configuration overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginGrant {
    /// Load the plugin at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The most workspace access it may have.
    #[serde(default = "read_write")]
    pub workspace: WorkspaceAccess,
    /// May it keep session state.
    #[serde(default = "yes")]
    pub session_state: bool,
    /// May it log.
    #[serde(default = "yes")]
    pub log: bool,
    /// May it run commands. Unset: only the built-in plugins that exist to run commands
    /// ([`EXEC_BY_DEFAULT`]) may; every other plugin needs `exec = true`.
    #[serde(default)]
    pub exec: Option<bool>,
    /// Overrides merged over the manifest's `[config]`.
    #[serde(default)]
    pub config: toml::Table,
}

/// The built-in plugins that run commands by default: `bash` (the Bash tool) and
/// `policy-validate` (the validation policy). `exec = false` under `[plugins.<name>]` revokes it.
///
/// The default goes to the components this host was built with, not to a name: any
/// component can call itself `bash` in its manifest, so the component's SHA-256 must
/// also be the one recorded at build time ([`builtin_digest`]).
pub const EXEC_BY_DEFAULT: &[&str] = &["bash", "policy-validate"];

/// `name=sha256,...` of every built-in component, recorded by the build script.
const BUILTIN_DIGESTS: &str = env!("AGENT_HOST_BUILTIN_DIGESTS");

/// The SHA-256 (lower-case hex) of the built-in component called `name`, if there is one.
pub fn builtin_digest(name: &str) -> Option<&'static str> {
    BUILTIN_DIGESTS
        .split(',')
        .filter_map(|entry| entry.split_once('='))
        .find_map(|(builtin, digest)| (builtin == name).then_some(digest))
}

/// One capability, what a manifest asks of it, and whether the operator's grant allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantCheck {
    /// The capability as the manifest and the configuration name it: `workspace`,
    /// `session_state`, `log` or `exec`.
    pub capability: &'static str,
    /// What the manifest asks for: `none`, `read-only` or `read-write` for the workspace,
    /// `yes` or `no` for the others.
    pub asked: String,
    /// `None` when the grant allows what is asked; else why not, naming the setting that
    /// would.
    pub refusal: Option<String>,
}

impl GrantCheck {
    /// Whether the manifest asks for the capability at all.
    pub fn is_asked(&self) -> bool {
        !matches!(self.asked.as_str(), "no" | "none")
    }
}

fn yes() -> bool {
    true
}
fn read_write() -> WorkspaceAccess {
    WorkspaceAccess::ReadWrite
}

impl Default for PluginGrant {
    /// Plugins in the operator's plugin directory get the workspace, session state and
    /// log; running commands needs an explicit grant (but see [`EXEC_BY_DEFAULT`]).
    fn default() -> Self {
        Self {
            enabled: true,
            workspace: WorkspaceAccess::ReadWrite,
            session_state: true,
            log: true,
            exec: None,
            config: toml::Table::new(),
        }
    }
}

impl PluginGrant {
    /// The capabilities the plugin gets: exactly what its manifest asks for, or an error
    /// naming the first capability it asks for that is not granted. `digest` is the
    /// component's SHA-256 (lower-case hex), which decides the built-in defaults.
    pub fn resolve(&self, manifest: &Manifest, digest: &str) -> Result<Capabilities, String> {
        match self
            .check_each(manifest, digest)
            .into_iter()
            .find_map(|check| check.refusal)
        {
            Some(refusal) => Err(refusal),
            None => Ok(manifest.capabilities.clone()),
        }
    }

    /// Each capability, what the manifest asks of it, and whether this grant allows that
    /// (what `agent-host plugin check` shows an author).
    pub fn check_each(&self, manifest: &Manifest, digest: &str) -> Vec<GrantCheck> {
        let asks = &manifest.capabilities;
        let name = &manifest.name;
        let refuse = |what: &str, setting: &str| {
            Some(format!(
                "it asks for {what}, which the operator's configuration does not grant \
                 (set `{setting}` under [plugins.{name}] to grant it)"
            ))
        };
        let yes_no = |asked: bool| if asked { "yes" } else { "no" }.to_string();
        let workspace = GrantCheck {
            capability: "workspace",
            asked: asks.workspace.to_string(),
            refusal: (asks.workspace > self.workspace)
                .then(|| {
                    refuse(
                        &format!(
                            "workspace = \"{}\" (granted: \"{}\")",
                            asks.workspace, self.workspace
                        ),
                        &format!("workspace = \"{}\"", asks.workspace),
                    )
                })
                .flatten(),
        };
        let session_state = GrantCheck {
            capability: "session_state",
            asked: yes_no(asks.session_state),
            refusal: (asks.session_state && !self.session_state)
                .then(|| refuse("session_state", "session_state = true"))
                .flatten(),
        };
        let log = GrantCheck {
            capability: "log",
            asked: yes_no(asks.log),
            refusal: (asks.log && !self.log)
                .then(|| refuse("log", "log = true"))
                .flatten(),
        };
        let builtin = EXEC_BY_DEFAULT.contains(&name.as_str());
        let exec_granted = self
            .exec
            .unwrap_or_else(|| builtin && builtin_digest(name) == Some(digest));
        let exec_refusal = match (asks.exec && !exec_granted, builtin && self.exec.is_none()) {
            (false, _) => None,
            (true, true) => Some(format!(
                "it asks for exec under the name of the built-in plugin {name}, but it is \
                 not the component this host was built with (SHA-256 {digest}); only the \
                 built-in one runs commands by default (set `exec = true` under \
                 [plugins.{name}] to grant it to this one)"
            )),
            (true, false) => refuse("exec", "exec = true"),
        };
        let exec = GrantCheck {
            capability: "exec",
            asked: yes_no(asks.exec),
            refusal: exec_refusal,
        };
        vec![workspace, session_state, log, exec]
    }

    /// The plugin's configuration: the manifest's `[config]` overlaid by the operator's.
    pub fn merged_config(&self, manifest: &Manifest) -> serde_json::Value {
        let mut merged = manifest.config.clone();
        for (key, value) in &self.config {
            merged.insert(key.clone(), value.clone());
        }
        serde_json::to_value(merged).unwrap_or_else(|_| serde_json::json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The digest of a component that is not built in.
    const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn manifest(capabilities: &str) -> Manifest {
        let text = format!(
            "name = \"p\"\nworld = \"tool-plugin\"\n[capabilities]\n{capabilities}\n[config]\na = 1\nb = 2"
        );
        Manifest::parse(&text, Path::new("p.toml")).unwrap()
    }

    #[test]
    fn both_keys_are_needed() {
        let asks_exec = manifest("exec = true");
        let error = PluginGrant::default()
            .resolve(&asks_exec, OTHER)
            .unwrap_err();
        assert!(
            error.contains("exec") && error.contains("[plugins.p]"),
            "{error}"
        );
        let grant = PluginGrant {
            exec: Some(true),
            ..Default::default()
        };
        assert!(grant.resolve(&asks_exec, OTHER).unwrap().exec);
        // Granted but not asked for: not given.
        assert!(!grant.resolve(&manifest(""), OTHER).unwrap().exec);
    }

    #[test]
    fn the_bash_plugin_runs_commands_unless_revoked() {
        let bash = Manifest::parse(
            "name = \"bash\"\nworld = \"tool-plugin\"\n[capabilities]\nexec = true",
            Path::new("bash.toml"),
        )
        .unwrap();
        let builtin = builtin_digest("bash").expect("the build records the bash plugin");
        assert!(PluginGrant::default().resolve(&bash, builtin).unwrap().exec);
        let revoked = PluginGrant {
            exec: Some(false),
            ..Default::default()
        };
        assert!(
            revoked
                .resolve(&bash, builtin)
                .unwrap_err()
                .contains("exec")
        );
    }

    #[test]
    fn another_component_calling_itself_bash_does_not_run_commands() {
        let bash = Manifest::parse(
            "name = \"bash\"\nworld = \"tool-plugin\"\n[capabilities]\nexec = true",
            Path::new("bash.toml"),
        )
        .unwrap();
        let error = PluginGrant::default().resolve(&bash, OTHER).unwrap_err();
        assert!(
            error.contains("not the component this host was built with") && error.contains(OTHER),
            "{error}"
        );
        let granted = PluginGrant {
            exec: Some(true),
            ..Default::default()
        };
        assert!(granted.resolve(&bash, OTHER).unwrap().exec);
    }

    #[test]
    fn workspace_access_is_capped_by_the_grant() {
        let grant = PluginGrant {
            workspace: WorkspaceAccess::ReadOnly,
            ..Default::default()
        };
        let error = grant
            .resolve(&manifest("workspace = \"read-write\""), OTHER)
            .unwrap_err();
        assert!(error.contains("read-write"), "{error}");
        assert!(
            grant
                .resolve(&manifest("workspace = \"read-only\""), OTHER)
                .is_ok()
        );
    }

    #[test]
    fn operator_config_overrides_the_manifest() {
        let mut grant = PluginGrant::default();
        grant.config.insert("b".into(), toml::Value::Integer(3));
        let config = grant.merged_config(&manifest(""));
        assert_eq!(config, serde_json::json!({"a": 1, "b": 3}));
    }
}
