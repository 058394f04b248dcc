//! Tool plugins and the registry the agent calls tools through.
//!
//! A call goes: look the tool up → validate the input against its schema → run the
//! plugin in a fresh sandbox → check the result's size. Whatever happens, the caller gets
//! a [`ToolOutcome`]: the text the model sees, marked as success or error. Plugin crashes
//! and limits are errors the model can read, and are logged for the operator.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::plugins::engine::ahead::Ready;
use crate::plugins::engine::bindings::ToolSpec;
use crate::plugins::engine::bindings::tool::{ToolPlugin as ToolInstance, ToolPluginPre};
use crate::plugins::engine::sandbox::{
    CallContext, CallFailure, CallState, PluginIdentity, Sandbox,
};
use crate::plugins::load::input_schema::InputSchema;

/// The result of a tool call, as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutcome {
    /// The tool's result text.
    Success(String),
    /// An error result: what went wrong and how to do better.
    Error(String),
}

impl ToolOutcome {
    /// The text, whichever kind.
    pub fn text(&self) -> &str {
        match self {
            ToolOutcome::Success(text) | ToolOutcome::Error(text) => text,
        }
    }

    /// True for an error result.
    pub fn is_error(&self) -> bool {
        matches!(self, ToolOutcome::Error(_))
    }
}

/// One tool of a loaded plugin.
pub struct LoadedTool {
    /// Its spec as the plugin gave it.
    pub spec: ToolSpec,
    schema: InputSchema,
}

/// A loaded tool plugin.
pub struct ToolPlugin {
    sandbox: Sandbox,
    pre: ToolPluginPre<CallState>,
    tools: Vec<LoadedTool>,
}

impl ToolPlugin {
    /// Wraps a pre-linked component and asks it for its tools (refusing bad specs).
    pub(crate) fn new(sandbox: Sandbox, pre: ToolPluginPre<CallState>) -> anyhow::Result<Self> {
        let specs = sandbox
            .run(None, |store| {
                let instance = pre.instantiate(&mut *store)?;
                instance.agent_plugin_tools().call_list(&mut *store)
            })
            .map_err(|failure| anyhow::anyhow!("listing its tools failed: {failure}"))?;
        if specs.is_empty() {
            anyhow::bail!("it offers no tools (its `list` returned nothing)");
        }
        let mut tools = Vec::with_capacity(specs.len());
        for spec in specs {
            check_tool_name(&spec.name)?;
            if spec.description.trim().is_empty() {
                anyhow::bail!("tool {} has no description; the model needs one", spec.name);
            }
            let schema =
                InputSchema::compile(&spec.name, &spec.input_schema).map_err(anyhow::Error::msg)?;
            tools.push(LoadedTool { spec, schema });
        }
        Ok(Self {
            sandbox,
            pre,
            tools,
        })
    }

    /// Name, file, grants and limits.
    pub fn identity(&self) -> &PluginIdentity {
        &self.sandbox.identity
    }

    /// The tools it offers.
    pub fn tools(&self) -> &[LoadedTool] {
        &self.tools
    }

    /// An instance made now for a call to come in `context` (see
    /// [`super::engine::ahead`]); `None` when none can be held.
    pub(crate) fn ready(&self, context: &CallContext) -> Option<Ready<ToolInstance>> {
        self.sandbox
            .ready(context, |store| self.pre.instantiate(&mut *store))
    }

    /// Runs the tool `name` of this plugin (its input already checked against its schema)
    /// on `ready`, when it was made ahead for this call, else in a fresh sandbox.
    fn run(
        &self,
        name: &str,
        input: &str,
        context: &CallContext,
        ready: Option<Ready<ToolInstance>>,
    ) -> Result<ToolOutcome, CallFailure> {
        let result = self.sandbox.call(
            Some(context),
            ready,
            |store| self.pre.instantiate(&mut *store),
            |store, instance| {
                instance
                    .agent_plugin_tools()
                    .call_call(&mut *store, name, input)
            },
        )?;
        let outcome = match result {
            Ok(text) => ToolOutcome::Success(text),
            Err(text) => ToolOutcome::Error(text),
        };
        self.sandbox.check_result_size(outcome.text())?;
        Ok(outcome)
    }
}

/// Bedrock accepts tool names of `[a-zA-Z0-9_-]{1,64}`.
fn check_tool_name(name: &str) -> anyhow::Result<()> {
    let ok = crate::shared::is_plain_name(name);
    if !ok {
        anyhow::bail!("tool name {name:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'");
    }
    Ok(())
}

/// Every tool of every loaded tool plugin, by name.
#[derive(Default)]
pub struct ToolRegistry {
    plugins: Vec<Arc<ToolPlugin>>,
    /// Tool name → (plugin index, tool index).
    by_name: BTreeMap<String, (usize, usize)>,
}

impl ToolRegistry {
    /// Adds `plugin`'s tools; refuses a tool name that is already taken.
    pub fn add(&mut self, plugin: ToolPlugin) -> anyhow::Result<()> {
        self.add_shared(Arc::new(plugin))
    }

    /// The registry without the plugin called `name` (for trying a new build of it).
    pub fn without_plugin(&self, name: &str) -> ToolRegistry {
        let mut rest = ToolRegistry::default();
        for plugin in &self.plugins {
            if plugin.identity().name != name {
                rest.add_shared(plugin.clone())
                    .expect("tool names were unique in the full registry");
            }
        }
        rest
    }

    fn add_shared(&mut self, plugin: Arc<ToolPlugin>) -> anyhow::Result<()> {
        for tool in plugin.tools() {
            if let Some((other, _)) = self.by_name.get(&tool.spec.name) {
                anyhow::bail!(
                    "plugin {} ({}) offers tool {}, which plugin {} already offers; tool names must be unique",
                    plugin.identity().name,
                    plugin.identity().file.display(),
                    tool.spec.name,
                    self.plugins[*other].identity().name
                );
            }
        }
        let index = self.plugins.len();
        for (tool_index, tool) in plugin.tools().iter().enumerate() {
            self.by_name
                .insert(tool.spec.name.clone(), (index, tool_index));
        }
        self.plugins.push(plugin);
        Ok(())
    }

    /// Every tool's spec, in load order (stable, so the model's prompt prefix is too).
    pub fn specs(&self) -> Vec<&ToolSpec> {
        self.plugins
            .iter()
            .flat_map(|p| p.tools().iter().map(|t| &t.spec))
            .collect()
    }

    /// The loaded tool plugins.
    pub fn plugins(&self) -> &[Arc<ToolPlugin>] {
        &self.plugins
    }

    /// The plugin offering `tool`.
    pub fn plugin_of(&self, tool: &str) -> Option<&Arc<ToolPlugin>> {
        self.by_name
            .get(tool)
            .map(|(plugin, _)| &self.plugins[*plugin])
    }

    /// Whether `tool` exists and accepts `input`; `Err` is the message for the model.
    pub fn check_input(&self, tool: &str, input: &str) -> Result<(), String> {
        let Some(&(plugin_index, tool_index)) = self.by_name.get(tool) else {
            let known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            return Err(format!(
                "<tool_use_error>No such tool available: {tool}. The tools are: {}</tool_use_error>",
                known.join(", ")
            ));
        };
        self.plugins[plugin_index].tools[tool_index]
            .schema
            .check(input)
            .map(drop)
    }

    /// Calls `tool` with `input` (a JSON text that passed [`Self::check_input`]), without
    /// policies and without the audit log: only the chain does, having checked the input
    /// and every rewrite of it (see [`super::chain`]); everyone else calls through
    /// [`super::PluginSet::call`]. Runs on `ready` when it was made ahead for this call.
    /// Blocks the thread.
    pub(crate) fn call_checked(
        &self,
        tool: &str,
        input: &str,
        context: &CallContext,
        ready: Option<Ready<ToolInstance>>,
    ) -> ToolOutcome {
        let Some(plugin) = self.plugin_of(tool) else {
            return ToolOutcome::Error(format!(
                "<tool_use_error>No such tool: {tool}</tool_use_error>"
            ));
        };
        match plugin.run(tool, input, context, ready) {
            Ok(outcome) => outcome,
            Err(failure) => {
                tracing::warn!(tool, plugin = %plugin.identity().name, "tool call failed: {failure}");
                ToolOutcome::Error(format!("Tool {tool} failed: {failure}"))
            }
        }
    }
}
