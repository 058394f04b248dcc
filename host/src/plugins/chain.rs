//! The policy chain: every tool call passes each loaded policy's `check-call`, in order,
//! before it runs; a policy whose manifest names the tools it checks is skipped for the
//! others (no instance is made, and no decision recorded).
//!
//! - `allow`: on to the next policy;
//! - `deny(reason)`: the call never reaches the tool; the model gets an error result
//!   naming the policy and its reason. The first deny wins;
//! - `rewrite(input)`: the new input is checked against the tool's schema again (a
//!   rewrite the tool would refuse is a deny), and later policies see the rewritten call.
//!
//! A policy that traps, times out or exceeds its memory denies (see
//! [`super::policy::PolicyPlugin::check_call`]): a broken guardrail never lets a call
//! through. Every verdict is returned so the caller can log and audit it.

use std::time::{Duration, Instant};

use super::policy::PolicyPlugin;
use super::prepared::MadeAhead;
use super::tools::{ToolOutcome, ToolRegistry};
use crate::plugins::engine::bindings::Verdict;
use crate::plugins::engine::sandbox::CallContext;

/// One policy's decision on a call, as recorded for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// The policy's name.
    pub policy: String,
    /// What it decided.
    pub decision: Decision,
}

/// The kinds of decisions, with what the operator needs to know about each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the call through.
    Allow,
    /// Stopped the call, for this reason.
    Deny(String),
    /// Changed the call's input to this.
    Rewrite(String),
}

impl Decision {
    /// `allow`, `deny` or `rewrite`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny(_) => "deny",
            Decision::Rewrite(_) => "rewrite",
        }
    }
}

/// What happened to one tool call.
#[derive(Debug, Clone)]
pub struct CheckedCall {
    /// The result the model sees.
    pub outcome: ToolOutcome,
    /// Each policy consulted, in order (stops at the first deny; policies whose scope
    /// leaves the tool out are not consulted).
    pub decisions: Vec<PolicyDecision>,
    /// Whether the tool itself ran.
    pub ran: bool,
    /// The input the tool ran with (after rewrites), when it ran.
    pub final_input: Option<String>,
    /// Time spent in the policies.
    pub policy_time: Duration,
    /// How many of the instances it ran on were made ahead (see
    /// [`super::PreparedCall`]).
    pub made_ahead: usize,
}

impl CheckedCall {
    /// The policy that denied the call, if one did.
    pub fn denied_by(&self) -> Option<&str> {
        self.decisions
            .iter()
            .find(|d| matches!(d.decision, Decision::Deny(_)))
            .map(|d| d.policy.as_str())
    }
}

/// Checks `input` for `tool`, runs the policies in order, and runs the tool if none
/// denied, each on its instance in `ahead` when one was made ahead for this call. Blocks
/// the thread (plugins run here): call it from a blocking thread.
pub(crate) fn call_with_policies(
    tools: &ToolRegistry,
    policies: &[std::sync::Arc<PolicyPlugin>],
    tool: &str,
    input: &str,
    context: &CallContext,
    mut ahead: MadeAhead,
) -> CheckedCall {
    let mut made_ahead = 0;
    let refused = |outcome, decisions, policy_time, made_ahead| CheckedCall {
        outcome,
        decisions,
        ran: false,
        final_input: None,
        policy_time,
        made_ahead,
    };
    // Policies only ever see calls the tool would accept.
    if let Err(message) = tools.check_input(tool, input) {
        return refused(ToolOutcome::Error(message), Vec::new(), Duration::ZERO, 0);
    }
    let started = Instant::now();
    let mut input = input.to_string();
    let mut decisions = Vec::with_capacity(policies.len());
    for (index, policy) in policies.iter().enumerate() {
        if !policy.scope().covers(tool) {
            continue;
        }
        let name = policy.identity().name.clone();
        let ready = ahead.take_policy(index);
        made_ahead += usize::from(ready.is_some());
        let deny = |mut decisions: Vec<PolicyDecision>, name: String, reason: String| {
            let message = format!("Denied by policy {name}: {reason}");
            decisions.push(PolicyDecision {
                policy: name,
                decision: Decision::Deny(reason),
            });
            refused(
                ToolOutcome::Error(message),
                decisions,
                started.elapsed(),
                made_ahead,
            )
        };
        match policy.check_call_on(tool, &input, context, ready) {
            Verdict::Allow => decisions.push(PolicyDecision {
                policy: name,
                decision: Decision::Allow,
            }),
            Verdict::Deny(reason) => {
                tracing::info!(policy = %name, tool, "policy denied a call: {reason}");
                return deny(decisions, name, reason);
            }
            Verdict::Rewrite(rewritten) => {
                if let Err(problem) = tools.check_input(tool, &rewritten) {
                    let reason = format!(
                        "it rewrote the call into one {tool} does not accept, so the call is \
                         denied ({problem})"
                    );
                    tracing::warn!(policy = %name, tool, "{reason}");
                    return deny(decisions, name, reason);
                }
                tracing::info!(policy = %name, tool, "policy rewrote a call");
                decisions.push(PolicyDecision {
                    policy: name,
                    decision: Decision::Rewrite(rewritten.clone()),
                });
                input = rewritten;
            }
        }
    }
    let policy_time = started.elapsed();
    // `input` passed the tool's schema above: at the start, or after the last rewrite.
    made_ahead += usize::from(ahead.tool.is_some());
    let outcome = tools.call_checked(tool, &input, context, ahead.tool);
    CheckedCall {
        outcome,
        decisions,
        ran: true,
        final_input: Some(input),
        policy_time,
        made_ahead,
    }
}
