//! Bedrock errors, classified by their error code (what the service says, not the HTTP
//! status), with messages that tell an operator what to fix.

/// Why a model request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Worth another try after a pause: throttling, 5xx, timeouts, broken streams.
    #[error("{0}")]
    Transient(String),
    /// Will fail again until someone changes something; the message says what.
    #[error("{0}")]
    Fatal(String),
    /// The task was cancelled while waiting for the model.
    #[error("cancelled while waiting for the model")]
    Cancelled,
}

impl ModelError {
    /// True when retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ModelError::Transient(_))
    }

    /// Classifies a service error by its code (`ThrottlingException`, ...).
    pub fn from_code(code: Option<&str>, message: Option<&str>, model_id: &str) -> Self {
        let message = message.unwrap_or("no message");
        match code.unwrap_or("") {
            "ThrottlingException" => {
                Self::Transient(format!("Bedrock is throttling requests ({message})"))
            }
            "InternalServerException"
            | "ServiceUnavailableException"
            | "ModelNotReadyException"
            | "ModelTimeoutException"
            | "ModelStreamErrorException"
            | "ModelErrorException" => Self::Transient(format!(
                "Bedrock had a temporary failure: {} ({message})",
                code.unwrap_or("")
            )),
            "AccessDeniedException" => Self::Fatal(format!(
                "Bedrock denied access to model {model_id} ({message}). Check that the runtime's role \
                 allows bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream on it, and that \
                 access to the model is enabled in the Bedrock console for this region."
            )),
            "ResourceNotFoundException" => Self::Fatal(format!(
                "Bedrock does not know model {model_id} in this region ({message}). Set model_id to a \
                 model or inference profile available here, e.g. us.anthropic.claude-sonnet-4-5-20250929-v1:0."
            )),
            "ValidationException" if message.contains("on-demand throughput") => {
                Self::Fatal(format!(
                    "model {model_id} cannot be invoked on demand ({message}). Use its cross-region \
                 inference profile id (prefix us., eu., apac. or global.) as model_id."
                ))
            }
            "ValidationException" => {
                Self::Fatal(format!("Bedrock rejected the request: {message}"))
            }
            "" => Self::Transient(format!("the request to Bedrock failed: {message}")),
            other => Self::Fatal(format!("Bedrock answered {other}: {message}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_retry_and_advice() {
        assert!(ModelError::from_code(Some("ThrottlingException"), None, "m").is_transient());
        assert!(ModelError::from_code(Some("InternalServerException"), None, "m").is_transient());
        let denied =
            ModelError::from_code(Some("AccessDeniedException"), Some("no"), "m").to_string();
        assert!(denied.contains("bedrock:InvokeModel"), "{denied}");
        let missing =
            ModelError::from_code(Some("ResourceNotFoundException"), None, "x").to_string();
        assert!(missing.contains("model_id"), "{missing}");
        let profile = ModelError::from_code(
            Some("ValidationException"),
            Some("Invocation with on-demand throughput isn't supported"),
            "anthropic.claude",
        );
        assert!(profile.to_string().contains("inference profile"));
    }
}
