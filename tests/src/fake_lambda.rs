//! A fake of the AWS Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`), served on 127.0.0.1,
//! so a Lambda function's real binary runs as Lambda runs it: it long-polls
//! `GET /2018-06-01/runtime/invocation/next` for an event and posts the result to
//! `/runtime/invocation/<request id>/response` (or `/error`; `/runtime/init/error` when it
//! cannot start). Tests queue events and wait for the results.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::Notify;

/// What the function posted for one event.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The request id the event was given.
    pub request_id: String,
    /// `response` or `error`.
    pub kind: String,
    /// The posted body, as JSON (or a JSON string when it was not JSON).
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    events: VecDeque<(String, Value)>,
    outcomes: Vec<Outcome>,
    next_id: u64,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake; dropped with the test's runtime.
pub struct FakeLambda {
    addr: SocketAddr,
    shared: Shared,
}

impl FakeLambda {
    /// Starts the fake on an ephemeral port of 127.0.0.1, with no events queued.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Lambda runtime API binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let shared = Shared::default();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` (`host:port`, no scheme).
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `event`; returns the request id it will be given.
    pub fn invoke(&self, event: Value) -> String {
        let id = {
            let mut inner = self.shared.lock();
            inner.next_id += 1;
            let id = format!("req-{}", inner.next_id);
            inner.events.push_back((id.clone(), event));
            id
        };
        self.shared.changed.notify_waiters();
        id
    }

    /// Waits for what the function posted for `request_id` (or an init error, whose
    /// request id is `init`); `None` after `timeout`.
    pub async fn outcome(&self, request_id: &str, timeout: Duration) -> Option<Outcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            let found = self
                .shared
                .lock()
                .outcomes
                .iter()
                .find(|o| o.request_id == request_id || o.request_id == "init")
                .cloned();
            if found.is_some() {
                return found;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let body = to_bytes(request.into_body(), 10 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let rest = path
        .strip_prefix("/2018-06-01/runtime/")
        .unwrap_or_default();
    match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
        (Method::GET, ["invocation", "next"]) => loop {
            let changed = shared.changed.notified();
            let next = shared.lock().events.pop_front();
            if let Some((id, event)) = next {
                let deadline = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |now| now.as_millis())
                    + 30_000;
                return (
                    StatusCode::OK,
                    [
                        ("content-type", "application/json".to_string()),
                        ("lambda-runtime-aws-request-id", id),
                        ("lambda-runtime-deadline-ms", deadline.to_string()),
                        (
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:relay".to_string(),
                        ),
                        (
                            "lambda-runtime-trace-id",
                            "Root=1-67890abc-0123456789abcdef01234567;Sampled=0".to_string(),
                        ),
                    ],
                    event.to_string(),
                )
                    .into_response();
            }
            changed.await;
        },
        (Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            record(&shared, id, kind, &body);
            StatusCode::ACCEPTED.into_response()
        }
        (Method::POST, ["init", "error"]) => {
            record(&shared, "init", "error", &body);
            StatusCode::ACCEPTED.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn record(shared: &Shared, id: &str, kind: &str, body: &[u8]) {
    let body = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    shared.lock().outcomes.push(Outcome {
        request_id: id.to_string(),
        kind: kind.to_string(),
        body,
    });
    shared.changed.notify_waiters();
}
