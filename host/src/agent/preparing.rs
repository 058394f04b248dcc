//! Tool calls made ready while the model still writes them.
//!
//! The model's stream names each tool call before its input arrives. The agent starts
//! making that call's plugin instances then, on a blocking thread (see
//! [`crate::plugins::PreparedCall`]), and the call runs on them once the turn is
//! complete, so the instances' making is not on the call's path. A preparation that is
//! not used (a turn that failed or was asked again, a cancelled task) is dropped with
//! this, which gives its instances back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::lock;
use crate::plugins::{CallContext, PluginSet, PreparedCall};

/// The calls of one task being prepared, by tool call id.
pub(super) struct Preparing {
    context: CallContext,
    calls: Mutex<HashMap<String, JoinHandle<PreparedCall>>>,
}

impl Preparing {
    /// Preparations of calls made in `context`.
    pub(super) fn new(context: CallContext) -> Self {
        Self {
            context,
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// Starts making the instances of the call `id` of `tool` on `set` (the set in force
    /// as the model writes it).
    pub(super) fn start(&self, set: Arc<PluginSet>, id: &str, tool: &str) {
        let (context, tool) = (self.context.clone(), tool.to_string());
        let preparation = tokio::task::spawn_blocking(move || set.prepare(&tool, &context));
        lock(&self.calls).insert(id.to_string(), preparation);
    }

    /// The call `id` as prepared for `tool`, if it was (waiting for its preparation to
    /// end when it has not yet).
    pub(super) async fn take(&self, id: &str, tool: &str) -> Option<PreparedCall> {
        let preparation = lock(&self.calls).remove(id)?;
        let prepared = preparation.await.ok()?;
        (prepared.tool() == tool).then_some(prepared)
    }

    /// Drops every preparation not taken (those still being made drop theirs when done).
    pub(super) fn clear(&self) {
        lock(&self.calls).clear();
    }
}
