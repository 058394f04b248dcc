//! A tool call made ready while the model still writes it.
//!
//! The model's stream names a tool before it writes the call's input; input takes tens of
//! milliseconds to seconds to arrive. [`super::PluginSet::prepare`] uses that time to make
//! the instances the call will run on (each policy's and the tool's, see
//! [`super::engine::ahead`]), and [`super::PluginSet::call_prepared`] runs the call on them
//! once the input is complete. A prepared call behaves exactly as an unprepared one: same
//! checks, same policies in the same order, same limits, same audit; only the instances'
//! making has moved earlier. Preparing is best effort: an instance that could not be made
//! ahead is made by the call, as always.

use crate::plugins::engine::ahead::Ready;
use crate::plugins::engine::bindings::policy::PolicyPlugin as PolicyInstance;
use crate::plugins::engine::bindings::tool::ToolPlugin as ToolInstance;
use crate::plugins::engine::sandbox::CallContext;

/// The instances one call of a tool will run on, made ahead of it for one workspace and
/// session. Dropping it gives them back (a turn that fails, a call never made).
pub struct PreparedCall {
    /// The set that made it: another set's policies are not these.
    pub(crate) set: u64,
    pub(crate) tool: String,
    pub(crate) context: CallContext,
    pub(crate) instances: MadeAhead,
}

impl PreparedCall {
    /// The tool it was prepared for.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// How many instances were made ahead (none when the tool is unknown or the cap on
    /// held instances was reached).
    pub fn instances(&self) -> usize {
        self.instances.count()
    }
}

/// Instances made ahead for one call: the tool's, and each policy's in chain order.
#[derive(Default)]
pub(crate) struct MadeAhead {
    pub(crate) tool: Option<Ready<ToolInstance>>,
    pub(crate) policies: Vec<Option<Ready<PolicyInstance>>>,
}

impl MadeAhead {
    fn count(&self) -> usize {
        usize::from(self.tool.is_some()) + self.policies.iter().flatten().count()
    }

    /// The instance made ahead for the policy at `index` of the chain, if any.
    pub(crate) fn take_policy(&mut self, index: usize) -> Option<Ready<PolicyInstance>> {
        self.policies.get_mut(index).and_then(Option::take)
    }
}
