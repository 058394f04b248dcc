//! A plugin directory loaded as one set: every `<name>.wasm` with its `<name>.toml`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;

use super::audit::AuditLog;
use super::chain::{CheckedCall, call_with_policies};
use super::policy::PolicyPlugin;
use super::prepared::{MadeAhead, PreparedCall};
use super::tools::{ToolOutcome, ToolPlugin, ToolRegistry};
use crate::plugins::engine::runtime::PluginRuntime;
use crate::plugins::engine::sandbox::{CallContext, PluginIdentity};
use crate::plugins::load::grants::PluginSettings;
use crate::plugins::load::loader::{PreparedPlugin, manifest_path, prepare_plugin};
use crate::plugins::load::manifest::{CallScope, World};

/// A loaded plugin of either world.
pub enum LoadedPlugin {
    /// Offers tools.
    Tool(ToolPlugin),
    /// Checks tool calls.
    Policy(PolicyPlugin),
}

impl LoadedPlugin {
    /// The world it implements.
    pub fn world(&self) -> World {
        match self {
            LoadedPlugin::Tool(_) => World::Tool,
            LoadedPlugin::Policy(_) => World::Policy,
        }
    }

    /// The plugin's identity (name, file, grants, limits).
    pub fn identity(&self) -> &PluginIdentity {
        match self {
            LoadedPlugin::Tool(plugin) => plugin.identity(),
            LoadedPlugin::Policy(plugin) => plugin.identity(),
        }
    }
}

/// Loads the plugin whose component is `wasm` in a plugin directory (its manifest beside
/// it), with the operator's `settings`; an error names the plugin, the file and the problem.
pub fn load_plugin(
    runtime: &Arc<PluginRuntime>,
    wasm: &Path,
    settings: &PluginSettings,
) -> anyhow::Result<LoadedPlugin> {
    load_plugin_with_manifest(runtime, wasm, &manifest_path(wasm), settings)
}

/// [`load_plugin`] with the manifest at `manifest` (see
/// [`crate::plugins::manifest_for_component`]).
pub fn load_plugin_with_manifest(
    runtime: &Arc<PluginRuntime>,
    wasm: &Path,
    manifest: &Path,
    settings: &PluginSettings,
) -> anyhow::Result<LoadedPlugin> {
    Ok(match prepare_plugin(runtime, wasm, manifest, settings)? {
        PreparedPlugin::Tool(sandbox, pre) => {
            let name = sandbox.identity.name.clone();
            let plugin = ToolPlugin::new(sandbox, pre)
                .with_context(|| format!("plugin {name} ({}) is refused", wasm.display()))?;
            LoadedPlugin::Tool(plugin)
        }
        PreparedPlugin::Policy(sandbox, pre, scope) => {
            LoadedPlugin::Policy(PolicyPlugin::new(sandbox, pre, scope))
        }
    })
}

/// The tools and policies of one plugin directory.
pub struct PluginSet {
    /// Tells this set's prepared calls from another's.
    id: u64,
    tools: ToolRegistry,
    policies: Vec<Arc<PolicyPlugin>>,
    audit: Option<Arc<AuditLog>>,
}

/// A new [`PluginSet::id`], never given before in this process.
fn next_set_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
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
            id: next_set_id(),
            tools: ToolRegistry::default(),
            policies: Vec::new(),
            audit: None,
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
        for (policy, tool) in set.judged_tools_not_offered() {
            tracing::warn!(
                policy,
                tool,
                "policy {policy} judges calls of {tool}, which no loaded plugin offers: if the \
                 name is misspelt in its manifest's [policy] tools, those calls go unjudged"
            );
        }
        Ok(set)
    }

    /// Each (policy, tool) where a policy's manifest names a tool no loaded plugin offers:
    /// harmless when that plugin is disabled, a hole in the guardrail when the name is
    /// misspelt, so the load warns of each.
    pub fn judged_tools_not_offered(&self) -> Vec<(&str, &str)> {
        let mut missing = Vec::new();
        for policy in &self.policies {
            if let CallScope::Only(tools) = policy.scope() {
                for tool in tools {
                    if self.tools.plugin_of(tool).is_none() {
                        missing.push((policy.identity().name.as_str(), tool.as_str()));
                    }
                }
            }
        }
        missing
    }

    /// Adds `plugin` to try it (`agent-host tools call --plugin/--policy`): a tool plugin
    /// takes the place of a configured plugin of the same name (a new build of it); a
    /// policy runs first, before the configured ones (again replacing one of its name), so
    /// its decision is always seen.
    pub fn with_trial(mut self, plugin: LoadedPlugin) -> anyhow::Result<Self> {
        let name = plugin.identity().name.clone();
        self.id = next_set_id();
        match plugin {
            LoadedPlugin::Tool(plugin) => {
                let mut tools = self.tools.without_plugin(&name);
                tools.add(plugin)?;
                self.tools = tools;
            }
            LoadedPlugin::Policy(plugin) => {
                self.policies
                    .retain(|policy| policy.identity().name != name);
                self.policies.insert(0, Arc::new(plugin));
            }
        }
        Ok(self)
    }

    /// Records every call made through this set in `audit`, when there is one.
    pub fn with_audit(mut self, audit: Option<Arc<AuditLog>>) -> Self {
        self.audit = audit;
        self
    }

    /// Calls a tool through the policy chain (see [`super::chain`]). Blocks the thread.
    /// The call is recorded in the set's audit log, if it has one.
    pub fn call(&self, tool: &str, input: &str, context: &CallContext) -> CheckedCall {
        self.call_on(tool, input, context, MadeAhead::default())
    }

    /// Makes the instances a call of `tool` in `context` will run on: each policy's and the
    /// tool's (see [`super::prepared`]). Nothing is made for a tool the set does not have
    /// (the call is refused before any plugin runs), nor past the cap on held instances.
    /// Blocks the thread.
    pub fn prepare(&self, tool: &str, context: &CallContext) -> PreparedCall {
        let mut instances = MadeAhead::default();
        if let Some(plugin) = self.tools.plugin_of(tool) {
            instances.policies = self
                .policies
                .iter()
                .map(|policy| {
                    policy
                        .scope()
                        .covers(tool)
                        .then(|| policy.ready(context))
                        .flatten()
                })
                .collect();
            instances.tool = plugin.ready(context);
        }
        PreparedCall {
            set: self.id,
            tool: tool.to_string(),
            context: context.clone(),
            instances,
        }
    }

    /// Runs a call made ready by [`Self::prepare`], now that its `input` is complete,
    /// exactly as [`Self::call`] would. Instances another set made (this one was swapped in
    /// since) are dropped, and the call makes its own. Blocks the thread.
    pub fn call_prepared(&self, prepared: PreparedCall, input: &str) -> CheckedCall {
        let PreparedCall {
            set,
            tool,
            context,
            instances,
        } = prepared;
        let instances = if set == self.id {
            instances
        } else {
            MadeAhead::default()
        };
        self.call_on(&tool, input, &context, instances)
    }

    fn call_on(
        &self,
        tool: &str,
        input: &str,
        context: &CallContext,
        ahead: MadeAhead,
    ) -> CheckedCall {
        let started = std::time::Instant::now();
        let checked = call_with_policies(&self.tools, &self.policies, tool, input, context, ahead);
        if let Some(log) = &self.audit {
            log.record(
                context.user().unwrap_or("-"),
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
        on_blocking_thread(tool, call).await
    }

    /// [`Self::call_prepared`] from async code, on tokio's blocking pool.
    pub async fn call_prepared_tool(
        self: &Arc<Self>,
        prepared: PreparedCall,
        input: &str,
    ) -> CheckedCall {
        let set = self.clone();
        let tool = prepared.tool.clone();
        let input = input.to_string();
        let call = tokio::task::spawn_blocking(move || set.call_prepared(prepared, &input));
        on_blocking_thread(&tool, call).await
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

/// The result of a call run on a blocking thread; an error result when that thread ended
/// abnormally.
async fn on_blocking_thread(tool: &str, call: tokio::task::JoinHandle<CheckedCall>) -> CheckedCall {
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
            made_ahead: 0,
        },
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
