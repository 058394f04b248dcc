//! The plugin runtime: WASI 0.2 components that give the agent its tools and guardrails.
//!
//! Three rooms, each using only the ones below it:
//! - [`engine`]: running one call — the wasmtime engine and its compile cache, the sandbox
//!   (a fresh store per call with only the workspace preopened, and limits), the host
//!   functions plugins import, and the plugin session state they keep.
//! - [`load`]: accepting a component — its manifest, the operator's grants, the checks
//!   and pre-linking, the tools' input schemas.
//! - the call path, here: [`tools`] and [`policy`] (the two worlds); [`set`] (a directory
//!   of plugins); [`chain`] (every tool call through each policy before it runs);
//!   [`prepared`] (a call's instances made while the model still writes it);
//!   [`live`] (the set in force, swapped when the directory changes); [`audit`]; and
//!   [`authoring`] (what plugin authors get: new projects, the WIT package).

pub mod engine;
pub mod load;

pub mod audit;
pub mod authoring;
pub mod chain;
pub mod live;
pub mod policy;
pub mod prepared;
pub mod set;
pub mod tools;

use std::path::PathBuf;

pub use audit::AuditLog;
pub use chain::{CheckedCall, Decision, PolicyDecision};
pub use engine::ahead::MAX_HELD_AHEAD;
pub use engine::bindings::{ToolCall, ToolSpec, Verdict};
pub use engine::cache::CacheUse;
pub use engine::permissions::{Capabilities, Limits, WorkspaceAccess};
pub use engine::runtime::{CpuFeatures, PluginRuntime};
pub use engine::sandbox::{CallContext, CallFailure, PluginIdentity};
pub use engine::session_state::SessionState;
pub use live::LivePlugins;
pub use load::grants::{GrantCheck, PluginGrant, PluginSettings};
pub use load::loader::{ComponentFacts, WIT_VERSION, manifest_for_component};
pub use load::manifest::{CallScope, Manifest, World};
pub use policy::PolicyPlugin;
pub use prepared::PreparedCall;
pub use set::{LoadedPlugin, PluginSet, load_plugin, load_plugin_with_manifest};
pub use tools::{ToolOutcome, ToolPlugin, ToolRegistry};

/// Where the build put the built-in plugins of this checkout (`target/plugins/builtin`).
const BUILT_IN_PLUGINS_DIR: &str = env!("AGENT_HOST_BUILTIN_PLUGINS_DIR");

/// Where the build put the test-only components (hostile plugins, example policies).
#[doc(hidden)]
pub const TESTING_PLUGINS_DIR: &str = env!("AGENT_HOST_TESTING_PLUGINS_DIR");

/// The built-in plugins this binary was built with, when they are still where the build
/// put them (a binary run from its checkout finds them without configuration).
pub fn builtin_plugins_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(BUILT_IN_PLUGINS_DIR);
    dir.is_dir().then_some(dir)
}
