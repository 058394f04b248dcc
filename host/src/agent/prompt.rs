//! The system prompt: the base rules, each policy's guidance, and the operator's text.
//!
//! It is part of the cached prefix of every request, so it must be the same bytes on every
//! turn of a task: no timestamps, no map iteration, nothing that varies.

use std::path::Path;

/// What the base prompt is built from.
pub struct PromptParts<'a> {
    /// The user's workspace (absolute).
    pub workspace: &'a Path,
    /// The names of the loaded tools, in order.
    pub tools: &'a [&'a str],
    /// `(policy name, guidance)` in policy order.
    pub guidance: &'a [(String, String)],
    /// Extra instructions from the operator's configuration.
    pub operator: Option<&'a str>,
}

/// Assembles the system prompt.
pub fn system_prompt(parts: &PromptParts<'_>) -> String {
    let workspace = parts.workspace.display();
    let mut prompt = format!(
        "You are a coding agent working in the user's workspace at {workspace}. The user talks to \
         you through a chat; they cannot see your tool calls, only your final answer.\n\
         \n\
         How to work:\n\
         - Use the tools ({tools}) to look before you change anything; use absolute paths under \
         {workspace}.\n\
         - Read a file before you Edit or overwrite it; keep edits small and exact.\n\
         - Files outside {workspace} cannot be reached: the sandbox refuses them.\n\
         - When a tool returns an error, read it and adjust; do not repeat the same call.\n\
         - Finish with a short answer for the user: what you did, what you found, and anything \
         they must do next. Do not paste whole files into the answer.\n",
        tools = parts.tools.join(", ")
    );
    // A policy with nothing to say (e.g. a validator with no checks configured) adds no line.
    let guidance: Vec<_> = parts
        .guidance
        .iter()
        .filter(|(_, text)| !text.trim().is_empty())
        .collect();
    if !guidance.is_empty() {
        prompt.push_str(
            "\nRules enforced by the host's policies (calls that break them are denied):\n",
        );
        for (name, text) in guidance {
            prompt.push_str(&format!("- {name}: {}\n", text.trim()));
        }
    }
    if let Some(operator) = parts.operator.filter(|t| !t.trim().is_empty()) {
        prompt.push_str("\nInstructions from the operator of this agent:\n");
        prompt.push_str(operator.trim());
        prompt.push('\n');
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_the_workspace_tools_and_rules() {
        let guidance = vec![("files".to_string(), "Never touch .env files.".to_string())];
        let parts = PromptParts {
            workspace: Path::new("/ws/42"),
            tools: &["Read", "Edit"],
            guidance: &guidance,
            operator: Some("Answer in French."),
        };
        let prompt = system_prompt(&parts);
        assert!(prompt.contains("/ws/42") && prompt.contains("Read, Edit"));
        assert!(prompt.contains("- files: Never touch .env files."));
        assert!(prompt.ends_with("Answer in French.\n"));
        assert_eq!(
            prompt,
            system_prompt(&parts),
            "the same parts give the same bytes"
        );
    }

    #[test]
    fn a_policy_with_no_guidance_adds_no_line() {
        let guidance = vec![
            ("policy-validate".to_string(), "  ".to_string()),
            ("files".to_string(), "Never touch .env files.".to_string()),
        ];
        let parts = PromptParts {
            workspace: Path::new("/ws/42"),
            tools: &["Read"],
            guidance: &guidance,
            operator: None,
        };
        let prompt = system_prompt(&parts);
        assert!(!prompt.contains("policy-validate"), "{prompt}");
        assert!(prompt.contains("- files: Never touch .env files."));
        let silent = vec![("policy-validate".to_string(), String::new())];
        let prompt = system_prompt(&PromptParts {
            guidance: &silent,
            ..parts
        });
        assert!(!prompt.contains("Rules enforced"), "{prompt}");
    }
}
