//! Bedrock's errors as [`ModelError`] kinds, classified by the service's error code (what
//! the service says, not the HTTP status), with messages that say what to fix.

use aws_credential_types::provider::error::CredentialsError;

use crate::model::ModelError;
use crate::shared::error_chain;

/// What the person at the keyboard reads when no AWS credentials were found.
pub const NO_CREDENTIALS: &str = "no AWS credentials were found: set AWS_PROFILE to a \
     profile in ~/.aws/config (and run `aws sso login` for an SSO profile), or set \
     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";

/// What the person at the keyboard reads when no AWS region is set.
pub const NO_REGION: &str = "no AWS region is set: set AWS_REGION (e.g. AWS_REGION=us-east-1) \
     or a region in your AWS profile";

/// Classifies a service error by its code (`ThrottlingException`, ...).
pub fn from_code(code: Option<&str>, message: Option<&str>, model_id: &str) -> ModelError {
    let message = message.unwrap_or("no message");
    match code.unwrap_or("") {
        "ThrottlingException" | "ServiceQuotaExceededException" => {
            ModelError::Throttled(format!("Bedrock is throttling requests ({message})"))
        }
        "InternalServerException"
        | "ServiceUnavailableException"
        | "ModelNotReadyException"
        | "ModelTimeoutException"
        | "ModelStreamErrorException"
        | "ModelErrorException" => ModelError::Transient(format!(
            "Bedrock had a temporary failure: {} ({message})",
            code.unwrap_or("")
        )),
        "AccessDeniedException" => ModelError::AccessDenied(format!(
            "Bedrock denied access to model {model_id} ({message}). Check that the runtime's role \
             allows bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream on it, and that \
             access to the model is enabled in the Bedrock console for this region."
        )),
        "UnrecognizedClientException" | "ExpiredTokenException" | "InvalidSignatureException" => {
            ModelError::AccessDenied(format!(
                "Bedrock did not accept the AWS credentials ({message}). Refresh them (e.g. \
                 `aws sso login`) or check AWS_PROFILE."
            ))
        }
        "ResourceNotFoundException" => ModelError::UnknownModel(format!(
            "Bedrock does not know model {model_id} in this region ({message}). Set model_id to a \
             model or inference profile available here, e.g. us.anthropic.claude-sonnet-4-5-20250929-v1:0."
        )),
        "ValidationException" if message.contains("on-demand throughput") => {
            ModelError::UnknownModel(format!(
                "model {model_id} cannot be invoked on demand ({message}). Use its cross-region \
                 inference profile id (prefix us., eu., apac. or global.) as model_id."
            ))
        }
        "ValidationException" if is_context_overflow(message) => ModelError::ContextTooLong(
            format!("the conversation is too long for model {model_id} ({message})"),
        ),
        "ValidationException" => {
            ModelError::InvalidRequest(format!("Bedrock rejected the request: {message}"))
        }
        "" => ModelError::Transient(format!("the request to Bedrock failed: {message}")),
        other => ModelError::InvalidRequest(format!("Bedrock answered {other}: {message}")),
    }
}

/// Whether a validation message says the input does not fit the context window.
fn is_context_overflow(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "too long",
        "too many input tokens",
        "context window",
        "context length",
    ]
    .iter()
    .any(|phrase| message.contains(phrase))
}

/// [`ModelError::NotConfigured`] when `error`'s chain says the credentials are missing:
/// no retry helps, and the person who can fix it needs one clear line.
pub fn missing_configuration(error: &(dyn std::error::Error + 'static)) -> Option<ModelError> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(credentials) = current.downcast_ref::<CredentialsError>() {
            return Some(credentials_missing(credentials));
        }
        cause = current.source();
    }
    None
}

/// [`NO_CREDENTIALS`], with what the credential chain said last (which provider failed
/// and why: an expired SSO session, an unreadable profile, ...).
pub fn credentials_missing(error: &CredentialsError) -> ModelError {
    ModelError::NotConfigured(format!(
        "{NO_CREDENTIALS} (the AWS credential chain said: {})",
        error_chain(error)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_the_kind_and_the_advice() {
        assert!(from_code(Some("ThrottlingException"), None, "m").is_transient());
        assert!(matches!(
            from_code(Some("ThrottlingException"), None, "m"),
            ModelError::Throttled(_)
        ));
        assert!(from_code(Some("InternalServerException"), None, "m").is_transient());
        let denied = from_code(Some("AccessDeniedException"), Some("no"), "m");
        assert!(
            matches!(&denied, ModelError::AccessDenied(m) if m.contains("bedrock:InvokeModel"))
        );
        let missing = from_code(Some("ResourceNotFoundException"), None, "x");
        assert!(matches!(&missing, ModelError::UnknownModel(m) if m.contains("model_id")));
        let profile = from_code(
            Some("ValidationException"),
            Some("Invocation with on-demand throughput isn't supported"),
            "anthropic.claude",
        );
        assert!(matches!(&profile, ModelError::UnknownModel(m) if m.contains("inference profile")));
        let long = from_code(
            Some("ValidationException"),
            Some("Input is too long for requested model."),
            "m",
        );
        assert!(matches!(long, ModelError::ContextTooLong(_)));
        let invalid = from_code(Some("ValidationException"), Some("messages: bad role"), "m");
        assert!(matches!(invalid, ModelError::InvalidRequest(_)));
        assert!(!invalid.is_transient());
    }

    #[test]
    fn missing_credentials_are_named_with_the_fix() {
        let error = CredentialsError::not_loaded("no providers in chain provided credentials");
        let found = missing_configuration(&error).unwrap();
        assert!(
            matches!(&found, ModelError::NotConfigured(m) if m.contains("AWS_PROFILE") && m.contains("aws sso login"))
        );
        assert!(missing_configuration(&std::io::Error::other("connection reset")).is_none());
    }
}
