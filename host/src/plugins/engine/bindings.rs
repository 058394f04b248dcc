//! Host-side bindings of the two plugin worlds in `wit/plugin.wit`.
//!
//! Imports are trappable: a host function returns `wasmtime::Result<T>`, where an `Err`
//! means the host itself failed and traps the call; anything the guest should handle is
//! part of the WIT signature (`result<_, string>`).

/// The `tool-plugin` world: the shared interfaces (types, context, log, session-state,
/// exec) are generated here once.
pub mod tool {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tool-plugin",
        imports: { default: trappable },
    });
}

/// The `policy-plugin` world, reusing the interfaces generated for [`tool`].
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy-plugin",
        imports: { default: trappable },
        with: {
            "agent:plugin/types": super::tool::agent::plugin::types,
            "agent:plugin/context": super::tool::agent::plugin::context,
            "agent:plugin/log": super::tool::agent::plugin::log,
            "agent:plugin/session-state": super::tool::agent::plugin::session_state,
            "agent:plugin/exec": super::tool::agent::plugin::exec,
        },
    });
}

pub use tool::agent::plugin::types::{ToolCall, ToolSpec, Verdict};
