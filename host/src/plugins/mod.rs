//! The plugin runtime: WASI 0.2 components that give the agent its tools and guardrails.
//!
//! - [`runtime`]: the one engine (pooling allocator, epoch ticker) and compile cache.
//! - [`manifest`] and [`grants`]: what a plugin asks for and what the operator allows.
//! - [`loader`]: checks a component against its manifest and grants, pre-links it.
//! - [`sandbox`]: a fresh store per call with only the workspace preopened, and limits.
//! - [`tools`] and [`policy`]: the two worlds; [`set`]: a directory of plugins;
//!   [`chain`]: every tool call through each policy before it runs; [`live`]: the set in
//!   force, swapped when the plugin directory changes; [`audit`]: the audit log.

pub mod audit;
pub mod bindings;
mod cache;
mod capabilities;
pub mod chain;
pub mod grants;
pub mod live;
pub mod loader;
pub mod manifest;
mod output;
pub mod policy;
pub mod runtime;
pub mod sandbox;
pub mod set;
pub mod tools;
mod validation;

use std::path::PathBuf;

pub use audit::AuditLog;
pub use bindings::{ToolCall, ToolSpec, Verdict};
pub use chain::{CheckedCall, Decision, PolicyDecision};
pub use grants::{PluginGrant, PluginSettings};
pub use live::LivePlugins;
pub use loader::{ComponentFacts, LoadedPlugin, WIT_VERSION, load_plugin};
pub use manifest::{Capabilities, Limits, Manifest, WorkspaceAccess, World};
pub use policy::PolicyPlugin;
pub use runtime::{CacheUse, PluginRuntime};
pub use sandbox::{CallContext, CallFailure, PluginIdentity};
pub use set::PluginSet;
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
