//! The guest SDK for agent-host plugins.
//!
//! A tool plugin is a WASI 0.2 component implementing the `tool-plugin` world of
//! `wit/plugin.wit`. With this crate it is a type per tool and one macro:
//!
//! ```ignore
//! use agent_plugin_sdk::{Tool, export_tools, serde_json::{json, Value}};
//!
//! #[derive(serde::Deserialize)]
//! struct HelloInput { name: String }
//!
//! struct Hello;
//! impl Tool for Hello {
//!     const NAME: &'static str = "Hello";
//!     type Input = HelloInput;
//!     fn description() -> String { "Greets someone.".into() }
//!     fn input_schema() -> Value {
//!         json!({"type": "object", "properties": {"name": {"type": "string"}},
//!                "required": ["name"], "additionalProperties": false})
//!     }
//!     fn call(input: HelloInput) -> Result<String, String> {
//!         Ok(format!("Hello, {}!", input.name))
//!     }
//! }
//!
//! export_tools!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and put the `.wasm` next to
//! a manifest. `agent-host plugin new NAME --kind tool|policy` makes a project with this crate
//! vendored, a manifest, a working example and a README that walks through building, trying
//! (`agent-host tools call --plugin`) and installing it.
//!
//! - [`Tool`] and [`export_tools!`]: a tool plugin (feature `tool`, the default);
//! - `policy`: a policy plugin (feature `policy`);
//! - [`host`]: the workspace root, the plugin's configuration, logging, running commands;
//! - [`paths`]: inputs made workspace paths, sandbox refusals made sentences;
//! - [`state`]: what a plugin keeps between calls of one session.
//!
//! The host validates every input against the tool's schema before `call` runs, so `call`
//! receives well-formed input; a deserialisation failure that slips through still comes
//! back to the model as an `InputValidationError` it can act on.

#![warn(missing_docs)]

#[cfg(not(any(feature = "tool", feature = "policy")))]
compile_error!("enable the `tool` or the `policy` feature of agent-plugin-sdk");

// The generated bindings name this crate by its public name, also from inside it.
extern crate self as agent_plugin_sdk;

pub mod host;
pub mod paths;
pub mod state;

pub use serde;
pub use serde_json;

// `../../wit` from this crate is the repository's `wit/` here, and the project's `wit/` in a
// project made by `agent-host plugin new` (which vendors this crate in vendor/agent-plugin-sdk).

/// Bindings for the `tool-plugin` world, generated from `wit/plugin.wit`.
#[cfg(feature = "tool")]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod tool_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "tool-plugin",
        pub_export_macro: true,
        export_macro_name: "export_tool_plugin",
        default_bindings_module: "agent_plugin_sdk::tool_bindings",
        runtime_path: "agent_plugin_sdk::__wit_bindgen_rt::rt",
    });
}

/// Bindings for the `policy-plugin` world, generated from `wit/plugin.wit`.
#[cfg(feature = "policy")]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod policy_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "policy-plugin",
        pub_export_macro: true,
        export_macro_name: "export_policy_plugin",
        default_bindings_module: "agent_plugin_sdk::policy_bindings",
        runtime_path: "agent_plugin_sdk::__wit_bindgen_rt::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen_rt;

#[cfg(all(feature = "policy", not(feature = "tool")))]
pub(crate) use policy_bindings::agent::plugin as imports;
/// The host imports, from whichever world this crate was built for.
#[cfg(feature = "tool")]
pub(crate) use tool_bindings::agent::plugin as imports;

/// Types a policy plugin implements (`policy-plugin` world).
#[cfg(feature = "policy")]
pub mod policy {
    pub use crate::policy_bindings::agent::plugin::types::{ToolCall, Verdict};
    pub use crate::policy_bindings::export_policy_plugin;
    pub use crate::policy_bindings::exports::agent::plugin::policy::Guest as Policy;

    /// The reason a policy denies every call with while its configuration is invalid
    /// (failing closed): the problem, and where the operator fixes it.
    pub fn misconfigured(policy: &str, problem: &str) -> String {
        format!(
            "{policy} is misconfigured: {problem}. Every call it checks is denied until the \
             operator fixes [plugins.{policy}.config] in the agent-host configuration; tell \
             the user"
        )
    }
}

/// One tool a tool plugin offers.
#[cfg(feature = "tool")]
pub trait Tool {
    /// The name the model calls it by.
    const NAME: &'static str;
    /// The input, deserialised from the JSON the model sent.
    type Input: serde::de::DeserializeOwned;
    /// What the tool does and its rules, for the model.
    fn description() -> String;
    /// JSON Schema of the input object.
    fn input_schema() -> serde_json::Value;
    /// Runs the tool: `Ok` is the result text, `Err` an error result, both for the model.
    fn call(input: Self::Input) -> Result<String, String>;
}

/// The spec the host sees for tool `T`.
#[cfg(feature = "tool")]
#[doc(hidden)]
pub fn spec<T: Tool>() -> tool_bindings::agent::plugin::types::ToolSpec {
    tool_bindings::agent::plugin::types::ToolSpec {
        name: T::NAME.to_string(),
        description: T::description(),
        input_schema: T::input_schema().to_string(),
    }
}

/// Deserialises `input` for tool `T` and runs it.
#[cfg(feature = "tool")]
#[doc(hidden)]
pub fn dispatch<T: Tool>(input: &str) -> Result<String, String> {
    match serde_json::from_str::<T::Input>(input) {
        Ok(input) => T::call(input),
        Err(error) => Err(tool_use_error(&format!(
            "InputValidationError: {} failed due to the following issue:\n{error}",
            T::NAME
        ))),
    }
}

/// Wraps `message` the way the model expects for a call it should correct and retry.
pub fn tool_use_error(message: &str) -> String {
    format!("<tool_use_error>{message}</tool_use_error>")
}

/// Exports the listed [`Tool`] types as this component's `tools` interface.
#[cfg(feature = "tool")]
#[macro_export]
macro_rules! export_tools {
    ($($tool:ty),+ $(,)?) => {
        struct __AgentPluginTools;

        impl $crate::tool_bindings::exports::agent::plugin::tools::Guest for __AgentPluginTools {
            fn list() -> ::std::vec::Vec<$crate::tool_bindings::agent::plugin::types::ToolSpec> {
                ::std::vec![$($crate::spec::<$tool>()),+]
            }

            fn call(
                name: ::std::string::String,
                input: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                $(
                    if name == <$tool as $crate::Tool>::NAME {
                        return $crate::dispatch::<$tool>(&input);
                    }
                )+
                Err(::std::format!("This plugin has no tool named {name:?}."))
            }
        }

        $crate::tool_bindings::export_tool_plugin!(__AgentPluginTools);
    };
}
