//! Errors as JSON responses, shaped like the Python SDK's: `{"error": ..., "details": ...}`.
//! Client errors say what was wrong and what to do; internal errors stay generic in the
//! response while the cause is logged.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::payload::PayloadError;
use crate::session::UserError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    details: Option<String>,
}

impl ApiError {
    /// An error with a status, a short title and details.
    pub fn new(status: StatusCode, error: &str, details: impl Into<String>) -> Self {
        Self {
            status,
            error: error.to_string(),
            details: Some(details.into()),
        }
    }

    /// A 500 whose cause was logged.
    pub fn internal(details: &str) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", details)
    }

    /// A 503: the host cannot serve this kind of request as configured.
    pub fn unavailable(details: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", details)
    }

    /// A task that failed (the SDK's "handler raised": 500 with the message).
    pub fn task_failed(message: &str) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: message.to_string(),
            details: None,
        }
    }

    /// A user that may not start a task now.
    pub fn from_user(error: UserError) -> Self {
        let (status, title) = match &error {
            UserError::InvalidKey(_) => (StatusCode::BAD_REQUEST, "Invalid user"),
            UserError::NotAllowed(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            UserError::Busy(_) => (StatusCode::CONFLICT, "Busy"),
        };
        Self::new(status, title, error.to_string())
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<PayloadError> for ApiError {
    fn from(error: PayloadError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, &error.to_string(), error.details())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.details {
            Some(details) => json!({"error": self.error, "details": details}),
            None => json!({"error": self.error}),
        };
        (self.status, Json(body)).into_response()
    }
}

/// Reads the whole body, refusing with 413 anything over `limit` bytes (by its declared
/// length first, so a huge upload is refused before it is read).
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = |size: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("the body is {size}, over the limit of {limit} bytes (setting max_body_bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > limit as u64
    {
        return Err(too_large(format!("{length} bytes")));
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let over = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if over {
            too_large("larger".to_string())
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "Unreadable body",
                format!("the body could not be read: {error}"),
            )
        }
    })
}
