//! Why a model request failed, in kinds the agent acts on (retry, compact, give up) and
//! messages that tell the operator what to fix. Each provider's client maps its own error
//! codes onto these kinds.

/// Why a model request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The provider is rate-limiting: worth another try after a pause.
    #[error("{0}")]
    Throttled(String),
    /// A temporary failure (5xx, timeout, broken stream): worth another try.
    #[error("{0}")]
    Transient(String),
    /// The conversation does not fit the model's context: drop old turns and try again.
    #[error("{0}")]
    ContextTooLong(String),
    /// The host's identity may not use the model (permissions, model access).
    #[error("{0}")]
    AccessDenied(String),
    /// The configured model does not exist here (id, region).
    #[error("{0}")]
    UnknownModel(String),
    /// The provider refused the request as malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// Credentials or region are missing: the message says how to provide them.
    #[error("{0}")]
    NotConfigured(String),
    /// The task was cancelled while waiting for the model.
    #[error("cancelled while waiting for the model")]
    Cancelled,
}

impl ModelError {
    /// True when the same request may succeed if tried again after a pause.
    pub fn is_transient(&self) -> bool {
        matches!(self, ModelError::Throttled(_) | ModelError::Transient(_))
    }
}
