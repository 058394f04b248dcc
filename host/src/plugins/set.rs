//! A plugin directory loaded as one set: every `<name>.wasm` with its `<name>.toml`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chain::{CheckedCall, call_with_policies};
use super::grants::PluginSettings;
use super::loader::{LoadedPlugin, load_plugin};
use super::policy::PolicyPlugin;
use super::runtime::PluginRuntime;
use super::sandbox::CallContext;
use super::tools::{ToolOutcome, ToolRegistry};

/// The tools and policies of one plugin directory.
pub struct PluginSet {
    tools: ToolRegistry,
    policies: Vec<Arc<PolicyPlugin>>,
}

impl PluginSet {
    /// Loads every component in `dir` that the operator's `settings` enable (sorted by
    /// file name, so tool order is stable). Any refused plugin fails the whole load, with
    /// every problem listed: a host must not start with a guardrail silently missing.
    pub fn load_dir(
        runtime: &Arc<PluginRuntime>,
        dir: &Path,
        settings: &PluginSettings,
    ) -> anyhow::Result<Self> {
        let files = component_files(dir)?;
        let mut set = Self {
            tools: ToolRegistry::default(),
            policies: Vec::new(),
        };
        let mut problems = Vec::new();
        for wasm in files {
            let stem = wasm
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if !settings.for_plugin(stem).enabled {
                tracing::info!(plugin = stem, "plugin disabled by configuration");
                continue;
            }
            match load_plugin(runtime, &wasm, settings) {
                Ok(LoadedPlugin::Tool(plugin)) => {
                    if let Err(error) = set.tools.add(plugin) {
                        problems.push(format!("{error:#}"));
                    }
                }
                Ok(LoadedPlugin::Policy(plugin)) => set.policies.push(Arc::new(plugin)),
                Err(error) => problems.push(format!("{error:#}")),
            }
        }
        if !problems.is_empty() {
            anyhow::bail!(
                "{} plugin(s) in {} could not be loaded:\n- {}",
                problems.len(),
                dir.display(),
                problems.join("\n- ")
            );
        }
        Ok(set)
    }

    /// Calls a tool through the policy chain (see [`super::chain`]). Blocks the thread.
    /// The call is recorded in the context's audit log, if it has one.
    pub fn call(&self, tool: &str, input: &str, context: &CallContext) -> CheckedCall {
        let started = std::time::Instant::now();
        let checked = call_with_policies(&self.tools, &self.policies, tool, input, context);
        if let Some((log, user)) = context.audit() {
            log.record(
                user,
                context.workspace(),
                tool,
                input,
                &checked,
                started.elapsed(),
            );
        }
        checked
    }

    /// [`Self::call`] from async code: the call runs on tokio's blocking pool, never on the
    /// executor, so a slow or looping plugin cannot stall other users' requests.
    pub async fn call_tool(
        self: &Arc<Self>,
        tool: &str,
        input: &str,
        context: &CallContext,
    ) -> CheckedCall {
        let set = self.clone();
        let (name, input, context) = (tool.to_string(), input.to_string(), context.clone());
        let call = tokio::task::spawn_blocking(move || set.call(&name, &input, &context));
        match call.await {
            Ok(checked) => checked,
            Err(error) => CheckedCall {
                outcome: ToolOutcome::Error(format!(
                    "Tool {tool} failed: its call thread ended abnormally ({error})"
                )),
                decisions: Vec::new(),
                ran: false,
                final_input: None,
                policy_time: std::time::Duration::ZERO,
            },
        }
    }

    /// The tools, by name.
    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
    }

    /// The policies, in load order.
    pub fn policies(&self) -> &[Arc<PolicyPlugin>] {
        &self.policies
    }

    /// The tools' names, in load order.
    pub fn tool_names(&self) -> Vec<&str> {
        self.tools
            .specs()
            .into_iter()
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The policies' names, in the order they run.
    pub fn policy_names(&self) -> Vec<&str> {
        self.policies
            .iter()
            .map(|p| p.identity().name.as_str())
            .collect()
    }
}

/// The `.wasm` files of `dir`, sorted.
fn component_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        anyhow::anyhow!(
            "cannot read the plugin directory {}: {error} (set plugins_dir / AGENT_HOST_PLUGINS_DIR)",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}
