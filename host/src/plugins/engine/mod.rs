//! Running one plugin call: the engine, the sandbox around each call, and what a plugin
//! may import. Nothing here knows about manifests, policies or tools.

pub(crate) mod ahead;
pub mod bindings;
pub mod cache;
mod host_functions;
pub(crate) mod output;
pub mod permissions;
pub mod runtime;
pub mod sandbox;
pub mod session_state;
