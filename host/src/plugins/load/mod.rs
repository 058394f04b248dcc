//! Accepting a plugin: its manifest, the operator's grants, the checks a component must
//! pass, and the input schemas its tools declare.

pub mod grants;
pub(crate) mod input_schema;
pub mod loader;
pub mod manifest;
