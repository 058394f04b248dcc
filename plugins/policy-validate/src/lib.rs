//! `policy-validate`: after a model turn that changed files, runs the operator's check
//! commands (`cargo check`, `npm test`, ...) through the host's `exec` capability, in the
//! workspace root and in order. The first one that fails makes `check-changes` fail with
//! its exit code and the end of its output, which the host hands to the model so it can
//! fix its work. Tool calls are never blocked (`check-call` allows everything).

mod checks;

use agent_plugin_sdk::host;
use agent_plugin_sdk::policy::{Policy, ToolCall, Verdict, export_policy_plugin};

use checks::{Checks, report_failure};

struct Validate;

impl Policy for Validate {
    fn check_call(_call: ToolCall) -> Verdict {
        Verdict::Allow
    }

    fn check_changes(_paths: Vec<String>) -> Result<(), String> {
        let checks = Checks::from_config(&host::config())?;
        let root = host::workspace_root();
        for command in &checks.commands {
            let output = host::exec(command, &root, checks.timeout_ms)
                .map_err(|why| format!("policy-validate could not run `{command}`: {why}"))?;
            if output.exit_code != Some(0) || output.timed_out {
                return Err(report_failure(command, &output, &checks));
            }
        }
        Ok(())
    }

    fn guidance() -> String {
        match Checks::from_config(&host::config()) {
            Ok(checks) if checks.commands.is_empty() => String::new(),
            Ok(checks) => format!(
                "After every turn in which you change files, the host runs these checks in the \
                 workspace root: {}. If one fails you get its output instead of a reply: fix \
                 the cause before going on. Repeated failures stop the task.",
                checks
                    .commands
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(problem) => format!("(policy-validate is misconfigured: {problem})"),
        }
    }
}

export_policy_plugin!(Validate);
