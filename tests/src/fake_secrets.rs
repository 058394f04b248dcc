//! A fake of AWS Secrets Manager, served on 127.0.0.1: `GetSecretValue` (and
//! `PutSecretValue`) over the awsJson1.1 protocol the SDK speaks (`POST /` with
//! `X-Amz-Target: secretsmanager.<Operation>`), with Secrets Manager's error shapes.
//! Reads are counted per secret, so a test can check what is cached.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Default)]
struct Inner {
    secrets: HashMap<String, String>,
    reads: HashMap<String, usize>,
    failing: bool,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake; dropped with the test's runtime.
pub struct FakeSecrets {
    addr: SocketAddr,
    shared: Shared,
}

impl FakeSecrets {
    /// Starts the fake, with no secrets, on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Secrets Manager binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let shared = Shared::default();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    /// The endpoint URL for the SDK (`endpoint_url`, or `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Puts `value` as the secret `id`'s current text.
    pub fn put(&self, id: &str, value: &str) {
        lock(&self.shared)
            .secrets
            .insert(id.to_string(), value.to_string());
    }

    /// The secret `id`'s current text.
    pub fn get(&self, id: &str) -> Option<String> {
        lock(&self.shared).secrets.get(id).cloned()
    }

    /// How many times `GetSecretValue` read `id`.
    pub fn reads(&self, id: &str) -> usize {
        lock(&self.shared).reads.get(id).copied().unwrap_or(0)
    }

    /// While set, every call fails with `InternalServiceError`.
    pub fn set_failing(&self, failing: bool) {
        lock(&self.shared).failing = failing;
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let signed = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("AWS4-HMAC-SHA256 "));
    let body: Bytes = to_bytes(request.into_body(), 1024 * 1024)
        .await
        .unwrap_or_default();
    if !signed {
        return error(
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    }
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "SerializationException", "the body is not JSON");
    };
    let mut inner = lock(&shared);
    if inner.failing {
        return error(500, "InternalServiceError", "the fake was told to fail");
    }
    let id = input
        .get("SecretId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match target.as_str() {
        "secretsmanager.GetSecretValue" => {
            *inner.reads.entry(id.clone()).or_default() += 1;
            match inner.secrets.get(&id) {
                Some(value) => ok(json!({
                    "ARN": arn(&id),
                    "Name": id,
                    "SecretString": value,
                    "VersionId": "v1",
                    "VersionStages": ["AWSCURRENT"],
                    "CreatedDate": 1.7e9,
                })),
                None => not_found(),
            }
        }
        "secretsmanager.PutSecretValue" => {
            let Some(value) = input.get("SecretString").and_then(Value::as_str) else {
                return error(400, "InvalidParameterException", "SecretString is required");
            };
            if !inner.secrets.contains_key(&id) {
                return not_found();
            }
            inner.secrets.insert(id.clone(), value.to_string());
            ok(json!({"ARN": arn(&id), "Name": id, "VersionId": "v2",
                "VersionStages": ["AWSCURRENT"]}))
        }
        _ => error(
            400,
            "UnknownOperationException",
            &format!("the fake does not serve {target:?}"),
        ),
    }
}

fn arn(id: &str) -> String {
    if id.starts_with("arn:") {
        id.to_string()
    } else {
        format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{id}-AbCdEf")
    }
}

fn ok(value: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        value.to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    error(
        400,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}
