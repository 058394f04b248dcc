//! Policy plugins: guardrails that see tool calls before they run.
//!
//! Calling one policy lives here: `check-call` before a tool call (of the tools its
//! manifest names, or every call), `check-changes` after calls that may have changed the
//! workspace, `guidance` for the system prompt. [`super::chain`] runs them, in order, for
//! every tool call. Whatever goes wrong in a
//! policy — a trap, a timeout, a memory limit — is a **deny**: a broken guardrail must
//! never let a call through.

use crate::plugins::engine::ahead::Ready;
use crate::plugins::engine::bindings::policy::{PolicyPlugin as PolicyInstance, PolicyPluginPre};
use crate::plugins::engine::bindings::{ToolCall, Verdict};
use crate::plugins::engine::sandbox::{CallContext, CallState, PluginIdentity, Sandbox};
use crate::plugins::load::manifest::CallScope;

/// A loaded policy plugin.
pub struct PolicyPlugin {
    sandbox: Sandbox,
    pre: PolicyPluginPre<CallState>,
    scope: CallScope,
}

impl PolicyPlugin {
    pub(crate) fn new(sandbox: Sandbox, pre: PolicyPluginPre<CallState>, scope: CallScope) -> Self {
        Self {
            sandbox,
            pre,
            scope,
        }
    }

    /// The calls its `check-call` sees (its manifest's `[policy] tools`).
    pub fn scope(&self) -> &CallScope {
        &self.scope
    }

    /// Name, file, grants and limits.
    pub fn identity(&self) -> &PluginIdentity {
        &self.sandbox.identity
    }

    /// The policy's verdict on `tool` called with `input`. Fails closed.
    pub fn check_call(&self, tool: &str, input: &str, context: &CallContext) -> Verdict {
        self.check_call_on(tool, input, context, None)
    }

    /// An instance made now for a `check-call` to come in `context` (see
    /// [`super::engine::ahead`]); `None` when none can be held.
    pub(crate) fn ready(&self, context: &CallContext) -> Option<Ready<PolicyInstance>> {
        self.sandbox
            .ready(context, |store| self.pre.instantiate(&mut *store))
    }

    /// [`Self::check_call`] on `ready`, when it was made ahead for this call.
    pub(crate) fn check_call_on(
        &self,
        tool: &str,
        input: &str,
        context: &CallContext,
        ready: Option<Ready<PolicyInstance>>,
    ) -> Verdict {
        let call = ToolCall {
            tool: tool.to_string(),
            input: input.to_string(),
        };
        let verdict = self.sandbox.call(
            Some(context),
            ready,
            |store| self.pre.instantiate(&mut *store),
            |store, instance| {
                instance
                    .agent_plugin_policy()
                    .call_check_call(&mut *store, &call)
            },
        );
        match verdict {
            Ok(verdict) => verdict,
            Err(failure) => {
                tracing::warn!(policy = %self.identity().name, tool, "policy failed, denying the call: {failure}");
                Verdict::Deny(format!(
                    "policy {} could not check this call ({failure}), so it is denied",
                    self.identity().name
                ))
            }
        }
    }

    /// Validates the changes to `paths`; `Err` is the message for the model. Fails closed.
    pub fn check_changes(&self, paths: &[String], context: &CallContext) -> Result<(), String> {
        let result = self.sandbox.run(Some(context), |store| {
            let instance = self.pre.instantiate(&mut *store)?;
            instance
                .agent_plugin_policy()
                .call_check_changes(&mut *store, paths)
        });
        match result {
            Ok(verdict) => verdict,
            Err(failure) => Err(format!(
                "policy {} could not validate the changes: {failure}",
                self.identity().name
            )),
        }
    }

    /// The policy's rules in words, for the system prompt. A policy that cannot say is
    /// reported in the text rather than silently left out.
    pub fn guidance(&self, context: &CallContext) -> String {
        let result = self.sandbox.run(Some(context), |store| {
            let instance = self.pre.instantiate(&mut *store)?;
            instance.agent_plugin_policy().call_guidance(&mut *store)
        });
        result.unwrap_or_else(|failure| {
            format!(
                "(policy {} could not describe its rules: {failure})",
                self.identity().name
            )
        })
    }
}
