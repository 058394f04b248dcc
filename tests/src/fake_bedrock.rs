//! A scripted fake of Amazon Bedrock Runtime's Converse API, served on 127.0.0.1.
//!
//! Tests point the real `aws-sdk-bedrockruntime` client at [`FakeBedrock::endpoint`], so the
//! host's production model code (request building, SigV4, retries, event-stream decoding)
//! runs unchanged and only the service is fake. The fake speaks the real wire format:
//! Converse answers in JSON, ConverseStream in `application/vnd.amazon.eventstream` frames
//! (encoded by `aws-smithy-eventstream`, the SDK's own codec), and errors carry the
//! `x-amzn-ErrorType` header the SDK uses to pick the error variant.
//!
//! Each request, to either endpoint, records its body and consumes the next [`Step`] of the
//! script. An exhausted script answers `500 InternalServerException` with the message
//! [`SCRIPT_EXHAUSTED`], so a test that sends more requests than it scripted fails loudly.
//!
//! Images are checked as Bedrock checks them (see [`check_images`]): a request with an image
//! the service would refuse gets `400 ValidationException` without using up a step, so a
//! test whose requests are answered proves every image in them was acceptable.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue as HttpHeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::Gate;

/// The message of the error answered once the script has no steps left.
pub const SCRIPT_EXHAUSTED: &str = "fake bedrock: script exhausted";

/// The `latencyMs` every answer reports: fixed, so recorded metrics are deterministic.
pub const LATENCY_MS: u64 = 100;

/// The largest image Bedrock takes, in bytes once decoded ("3.75 MB", read strictly).
pub const MAX_IMAGE_BYTES: usize = 3_750_000;
/// The longest image side Bedrock takes, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8000;
/// The most images Bedrock takes in one request.
pub const MAX_IMAGES: usize = 20;

/// The largest request body read: room for [`MAX_IMAGES`] images of the largest size in
/// base64, so the image checks, not the HTTP layer, decide.
const REQUEST_BODY_LIMIT: usize = 128 * 1024 * 1024;

/// The scripted Bedrock server. It stops when dropped.
pub struct FakeBedrock {
    addr: SocketAddr,
    state: Shared,
    server: JoinHandle<()>,
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Which endpoint was called.
    pub operation: Operation,
    /// The model id from the path, percent-decoded (`us.anthropic...-v1:0`, not `%3A0`).
    pub model_id: String,
    /// The request body; a body that is not JSON is kept as a JSON string of its text.
    pub body: Value,
    /// The body exactly as sent (for byte-level checks such as a stable cached prefix).
    pub raw: String,
}

/// An image block of a recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentImage {
    /// The index of the message holding it in the request's `messages`.
    pub message: usize,
    /// The `format` it was declared with (`png`, `jpeg`, `gif`, `webp`).
    pub format: String,
    /// The image bytes, decoded from the request's base64.
    pub bytes: Vec<u8>,
}

impl Recorded {
    /// The image blocks of the request's messages, in order (an undecodable one has no
    /// bytes; such a request was refused).
    pub fn images(&self) -> Vec<SentImage> {
        image_blocks(&self.body)
            .map(|(message, _, image)| SentImage {
                message,
                format: image["format"].as_str().unwrap_or_default().to_string(),
                bytes: image_bytes(image).unwrap_or_default(),
            })
            .collect()
    }

    /// The texts of the request's messages, in order (tool results' texts included).
    pub fn texts(&self) -> Vec<String> {
        let messages = self.body["messages"].as_array().into_iter().flatten();
        let blocks = messages.flat_map(|m| m["content"].as_array().into_iter().flatten());
        blocks
            .flat_map(|block| {
                let results = block["toolResult"]["content"]
                    .as_array()
                    .into_iter()
                    .flatten();
                std::iter::once(&block["text"]).chain(results.map(|r| &r["text"]))
            })
            .filter_map(|text| text.as_str().map(str::to_string))
            .collect()
    }
}

/// Every `image` block of `body`'s messages, with the index and role of its message.
fn image_blocks(body: &Value) -> impl Iterator<Item = (usize, &str, &Value)> {
    let messages = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate();
    messages.flat_map(|(index, message)| {
        let role = message["role"].as_str().unwrap_or_default();
        let blocks = message["content"].as_array().into_iter().flatten();
        blocks.filter_map(move |block| block.get("image").map(|image| (index, role, image)))
    })
}

/// The bytes of an image block (`source.bytes`, base64), or why they cannot be had.
fn image_bytes(image: &Value) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let text = image["source"]["bytes"]
        .as_str()
        .ok_or("the image has no source.bytes")?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("the image bytes are not base64: {e}"))
}

/// Refuses what Bedrock refuses in a request's images: more than [`MAX_IMAGES`], an image
/// outside a user message, a format other than png, jpeg, gif and webp, bytes that are not
/// that format, more than [`MAX_IMAGE_BYTES`], or a side over [`MAX_IMAGE_SIDE`] (read from
/// the image's header).
pub fn check_images(body: &Value) -> Result<(), String> {
    let mut count = 0;
    for (index, role, image) in image_blocks(body) {
        count += 1;
        let at = format!("messages.{index}: ");
        if role != "user" {
            return Err(format!("{at}images are only allowed in user messages"));
        }
        let format = image["format"].as_str().unwrap_or_default();
        let codec = match format {
            "png" => image::ImageFormat::Png,
            "jpeg" => image::ImageFormat::Jpeg,
            "gif" => image::ImageFormat::Gif,
            "webp" => image::ImageFormat::WebP,
            other => return Err(format!("{at}unsupported image format {other:?}")),
        };
        let bytes = image_bytes(image).map_err(|e| format!("{at}{e}"))?;
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(format!(
                "{at}image exceeds max size of 3.75 MB ({} bytes)",
                bytes.len()
            ));
        }
        if image::guess_format(&bytes).ok() != Some(codec) {
            return Err(format!(
                "{at}the image bytes do not match the specified format {format}"
            ));
        }
        let (width, height) = image::ImageReader::with_format(Cursor::new(&bytes), codec)
            .into_dimensions()
            .map_err(|e| format!("{at}the image could not be read: {e}"))?;
        if width.max(height) > MAX_IMAGE_SIDE {
            return Err(format!(
                "{at}image dimensions {width}x{height} exceed max allowed {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}"
            ));
        }
    }
    if count > MAX_IMAGES {
        return Err(format!(
            "too many images: {count}, at most {MAX_IMAGES} are allowed"
        ));
    }
    Ok(())
}

/// The Converse endpoint a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /model/{modelId}/converse`.
    Converse,
    /// `POST /model/{modelId}/converse-stream`.
    ConverseStream,
}

/// What the fake does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A normal answer, as JSON or as an event stream depending on the endpoint.
    Reply(Turn),
    /// An HTTP error as the real service sends it: `status`, `x-amzn-ErrorType: error_type`
    /// and `{"message": message}`.
    Error {
        status: u16,
        error_type: String,
        message: String,
    },
    /// Waits at `gate` (see [`Gate`]) until the test opens it, then answers with `then`;
    /// other requests are served meanwhile. The test can wait until the request got there
    /// with [`Gate::reached`]; a gate never opened is a request that never gets an answer.
    Gate { gate: Gate, then: Turn },
    /// On converse-stream: answers with `turn`, but waits at `gate` right after the
    /// `contentBlockStart` of its first tool use, before that call's input (the model is
    /// still writing it). On converse: as [`Step::Reply`].
    GateInToolUse { gate: Gate, turn: Turn },
    /// On converse-stream: a valid `messageStart` frame, then a frame whose checksum is
    /// wrong. On converse: a 200 with truncated JSON.
    MalformedStream,
    /// On converse-stream: the first `after_events` events of [`interrupted_turn`], then an
    /// exception frame (`:message-type: exception`). The frame names the error in
    /// lowerCamelCase as the real service does (`ThrottlingException` is sent as
    /// `throttlingException`), so either spelling may be given. On converse: an HTTP error
    /// of that type.
    StreamException {
        after_events: usize,
        error_type: String,
        message: String,
    },
}

/// One assistant answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The content blocks, in order.
    pub content: Vec<FakeBlock>,
    /// `end_turn`, `tool_use`, `max_tokens`, ... (any string: unknown ones are allowed).
    pub stop_reason: String,
    /// The token counts reported for this answer.
    pub usage: Usage,
}

/// One content block of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeBlock {
    /// Text; streamed as several `text` deltas.
    Text(String),
    /// A tool call; streamed as a `contentBlockStart` and its input JSON in fragments.
    ToolUse {
        /// `toolUseId`, which the next request's `toolResult` must repeat.
        id: String,
        /// The tool's name.
        name: String,
        /// The tool input (an object).
        input: Value,
    },
    /// The model's reasoning (extended thinking), as models with reasoning enabled put it
    /// before their answer. Streamed as `reasoningContent` deltas: the text in several
    /// fragments, then the signature in one delta of its own; on Converse one
    /// `reasoningContent.reasoningText` block. Clients must send it back unchanged, signature
    /// included, when the turn continues with tool results, so the signature is kept apart
    /// from the text.
    Reasoning {
        /// The reasoning text.
        text: String,
        /// The opaque signature the service vouches for the text with; empty for models
        /// that sign nothing, in which case no signature is sent at all.
        signature: String,
    },
}

/// Token counts; `totalTokens` is reported as the sum of all four.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `inputTokens`: input not read from or written to the prompt cache.
    pub input: u64,
    /// `outputTokens`.
    pub output: u64,
    /// `cacheReadInputTokens`.
    pub cache_read: u64,
    /// `cacheWriteInputTokens`.
    pub cache_write: u64,
}

impl Turn {
    /// A text answer that ends the turn (`end_turn`).
    pub fn text(t: &str) -> Turn {
        Turn {
            content: vec![FakeBlock::Text(t.to_string())],
            stop_reason: "end_turn".to_string(),
            usage: Usage::default(),
        }
    }

    /// One tool call (`tool_use`).
    pub fn tool_use(id: &str, name: &str, input: Value) -> Turn {
        Turn::tool_uses(vec![(id, name, input)])
    }

    /// Several tool calls in one answer (`tool_use`), as models do for parallel calls.
    pub fn tool_uses(calls: Vec<(&str, &str, Value)>) -> Turn {
        let content = calls
            .into_iter()
            .map(|(id, name, input)| FakeBlock::ToolUse {
                id: id.to_string(),
                name: name.to_string(),
                input,
            })
            .collect();
        Turn {
            content,
            stop_reason: "tool_use".to_string(),
            usage: Usage::default(),
        }
    }

    /// A text answer that ends the turn (`end_turn`), preceded by `reasoning` signed with
    /// [`reasoning_signature`]: what a model with reasoning enabled answers.
    pub fn reasoning_then_text(reasoning: &str, text: &str) -> Turn {
        Turn::text(text).with_reasoning(reasoning)
    }

    /// The same answer preceded by a reasoning block with `reasoning` signed with
    /// [`reasoning_signature`] (e.g. `Turn::tool_use(..).with_reasoning("I need the file")`
    /// for a model that thinks before calling a tool). Each call prepends another block.
    pub fn with_reasoning(mut self, reasoning: &str) -> Turn {
        let block = FakeBlock::Reasoning {
            text: reasoning.to_string(),
            signature: reasoning_signature(reasoning),
        };
        self.content.insert(0, block);
        self
    }

    /// The same answer reporting `usage`.
    pub fn with_usage(self, usage: Usage) -> Turn {
        Turn { usage, ..self }
    }

    /// The same answer with another stop reason (e.g. `max_tokens`).
    pub fn with_stop_reason(self, stop_reason: &str) -> Turn {
        Turn {
            stop_reason: stop_reason.to_string(),
            ..self
        }
    }
}

impl Step {
    /// `429 ThrottlingException`, what Bedrock sends when a quota is hit.
    pub fn throttle() -> Step {
        Step::error(
            429,
            "ThrottlingException",
            "Too many requests, please wait.",
        )
    }

    /// `500 InternalServerException`.
    pub fn server_error() -> Step {
        Step::error(
            500,
            "InternalServerException",
            "fake bedrock: internal error",
        )
    }

    /// Any HTTP error, e.g. `Step::error(400, "ValidationException", "input is too long")`.
    pub fn error(status: u16, error_type: &str, message: &str) -> Step {
        Step::Error {
            status,
            error_type: error_type.to_string(),
            message: message.to_string(),
        }
    }
}

/// The signature [`Turn::with_reasoning`] gives `reasoning`: distinct for distinct texts
/// (an FNV-1a hash of it), so a test can tell which reasoning block a later request echoes
/// back and that its signature was not mixed up with another block's.
pub fn reasoning_signature(reasoning: &str) -> String {
    let hash = reasoning
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("fake-signature-{hash:016x}")
}

/// The answer a [`Step::StreamException`] cuts short: text, then a tool call.
///
/// Its events, by index: 0 `messageStart`; 1-3 text deltas; 4 `contentBlockStop`;
/// 5 `contentBlockStart` (tool use); 6-8 input deltas; 9 `contentBlockStop`;
/// 10 `messageStop`; 11 `metadata`. So `after_events: 7` stops inside the tool call's input.
pub fn interrupted_turn() -> Turn {
    let mut turn = Turn::tool_use(
        "tooluse_interrupted",
        "read_file",
        json!({"path": "notes.txt"}),
    );
    turn.content
        .insert(0, FakeBlock::Text("Let me look at the notes.".to_string()));
    turn
}

impl FakeBedrock {
    /// Starts serving `script` on an ephemeral port of 127.0.0.1.
    pub async fn start(script: Vec<Step>) -> FakeBedrock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake bedrock binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let state = Shared::default();
        state.lock().script.extend(script);
        let app = Router::new()
            .route("/model/{model_id}/converse", post(converse))
            .route("/model/{model_id}/converse-stream", post(converse_stream))
            .fallback(unknown_operation)
            // Requests with images run to megabytes (axum's default refuses above 2 MB).
            .layer(DefaultBodyLimit::max(REQUEST_BODY_LIMIT))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            // Runs until the handle aborts it on drop; it retries accept errors itself.
            let _ = axum::serve(listener, app).await;
        });
        FakeBedrock {
            addr,
            state,
            server,
        }
    }

    /// The base URL to give the SDK as `endpoint_url`, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().requests.clone()
    }

    /// How many scripted steps have not been consumed yet.
    pub fn remaining(&self) -> usize {
        self.state.lock().script.len()
    }

    /// Appends `step` to the script (for answers that depend on what the test saw).
    pub fn push(&self, step: Step) {
        self.state.lock().script.push_back(step);
    }

    /// Waits until `count` requests have arrived (recorded, whatever their step does
    /// next): a point in the agent's loop a test can act at without polling.
    pub async fn wait_for_requests(&self, count: usize) {
        loop {
            // Made before the check, so an arrival between the two still wakes it.
            let arrived = self.state.arrived.notified();
            if self.state.lock().requests.len() >= count {
                return;
            }
            arrived.await;
        }
    }
}

impl Drop for FakeBedrock {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The script and the record, shared by the handle and the handlers.
#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<Script>>,
    /// Woken at every recorded request.
    arrived: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Script {
    script: VecDeque<Step>,
    requests: Vec<Recorded>,
}

impl Shared {
    /// Locks the state; a test that panicked while holding it leaves it usable.
    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the request and takes its step. A body that is not JSON, or whose images
    /// Bedrock would refuse, gets a ValidationException without using up a step (the real
    /// service rejects it before any model runs); an exhausted script gets
    /// [`SCRIPT_EXHAUSTED`].
    fn take(&self, operation: Operation, model_id: String, body: &[u8]) -> Step {
        let parsed = serde_json::from_slice::<Value>(body);
        let mut state = self.lock();
        state.requests.push(Recorded {
            operation,
            model_id,
            body: match &parsed {
                Ok(value) => value.clone(),
                Err(_) => Value::String(String::from_utf8_lossy(body).into_owned()),
            },
            raw: String::from_utf8_lossy(body).into_owned(),
        });
        self.arrived.notify_waiters();
        let body = match parsed {
            Ok(body) => body,
            Err(err) => {
                let message = format!("fake bedrock: the request body is not JSON: {err}");
                return Step::error(400, "ValidationException", &message);
            }
        };
        if let Err(problem) = check_images(&body) {
            return Step::error(400, "ValidationException", &problem);
        }
        state
            .script
            .pop_front()
            .unwrap_or_else(|| Step::error(500, "InternalServerException", SCRIPT_EXHAUSTED))
    }
}

async fn converse(
    State(state): State<Shared>,
    Path(model_id): Path<String>,
    body: Bytes,
) -> Response {
    answer(state, Operation::Converse, model_id, body).await
}

async fn converse_stream(
    State(state): State<Shared>,
    Path(model_id): Path<String>,
    body: Bytes,
) -> Response {
    answer(state, Operation::ConverseStream, model_id, body).await
}

/// Anything else the SDK might call: not recorded, answered as the service would.
async fn unknown_operation() -> Response {
    error_response(
        404,
        "UnknownOperationException",
        "fake bedrock: unknown operation",
    )
}

async fn answer(state: Shared, operation: Operation, model_id: String, body: Bytes) -> Response {
    let step = state.take(operation, model_id, &body);
    if let Step::Gate { gate, .. } = &step {
        // Each connection is its own task, so waiting here holds only this request.
        gate.pass().await;
    }
    match operation {
        Operation::Converse => converse_answer(step),
        Operation::ConverseStream => stream_answer(step),
    }
}

/// How a step looks on converse: a JSON answer or an HTTP error.
fn converse_answer(step: Step) -> Response {
    match step {
        Step::Reply(turn) | Step::Gate { then: turn, .. } | Step::GateInToolUse { turn, .. } => {
            axum::Json(converse_body(&turn)).into_response()
        }
        Step::Error {
            status,
            error_type,
            message,
        } => error_response(status, &error_type, &message),
        // There is no stream to break: the nearest thing is a JSON body cut short.
        Step::MalformedStream => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"output":{"message":{"role":"assistant","content":[{"te"#,
        )
            .into_response(),
        Step::StreamException {
            error_type,
            message,
            ..
        } => {
            let error_type = first_char(&error_type, char::to_uppercase);
            error_response(status_of(&error_type), &error_type, &message)
        }
    }
}

/// How a step looks on converse-stream: an event stream (possibly broken) or an HTTP error.
fn stream_answer(step: Step) -> Response {
    match step {
        Step::Reply(turn) | Step::Gate { then: turn, .. } => {
            stream_response(turn_events(&turn).iter().map(|(t, p)| event_frame(t, p)))
        }
        Step::GateInToolUse { gate, turn } => {
            let events = turn_events(&turn);
            let split = events
                .iter()
                .position(|(kind, _)| *kind == "contentBlockStart")
                .map_or(events.len(), |start| start + 1);
            let frames = |events: &[(&str, Value)]| -> Result<Vec<Bytes>, String> {
                events
                    .iter()
                    .map(|(t, p)| event_frame(t, p).map_err(|e| e.to_string()))
                    .collect()
            };
            match (frames(&events[..split]), frames(&events[split..])) {
                (Ok(before), Ok(after)) => {
                    let before = futures_util::stream::iter(before);
                    let wait = futures_util::stream::once(async move {
                        gate.pass().await;
                        futures_util::stream::iter(after)
                    })
                    .flatten();
                    (
                        [(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")],
                        Body::from_stream(before.chain(wait).map(Ok::<_, Infallible>)),
                    )
                        .into_response()
                }
                (Err(err), _) | (_, Err(err)) => error_response(
                    500,
                    "InternalServerException",
                    &format!("fake bedrock: cannot encode an event-stream frame: {err}"),
                ),
            }
        }
        Step::Error {
            status,
            error_type,
            message,
        } => error_response(status, &error_type, &message),
        Step::MalformedStream => {
            let first = event_frame("messageStart", &json!({"role": "assistant"}));
            let delta = json!({"contentBlockIndex": 0, "delta": {"text": "lost"}});
            let broken = event_frame("contentBlockDelta", &delta).map(|frame| {
                let mut bytes = frame.to_vec();
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0xff; // breaks the message CRC
                }
                Bytes::from(bytes)
            });
            stream_response([first, broken])
        }
        Step::StreamException {
            after_events,
            error_type,
            message,
        } => {
            let events = turn_events(&interrupted_turn());
            let frames = events.iter().take(after_events);
            let frames = frames.map(|(t, p)| event_frame(t, p));
            stream_response(frames.chain([exception_frame(&error_type, &message)]))
        }
    }
}

/// The Converse JSON answer for `turn`.
fn converse_body(turn: &Turn) -> Value {
    let content: Vec<Value> = turn
        .content
        .iter()
        .map(|block| match block {
            FakeBlock::Text(text) => json!({"text": text}),
            FakeBlock::ToolUse { id, name, input } => {
                json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})
            }
            FakeBlock::Reasoning { text, signature } => {
                let mut reasoning = json!({"text": text});
                if !signature.is_empty() {
                    reasoning["signature"] = json!(signature);
                }
                json!({"reasoningContent": {"reasoningText": reasoning}})
            }
        })
        .collect();
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": turn.stop_reason,
        "usage": usage_json(turn.usage),
        "metrics": {"latencyMs": LATENCY_MS},
    })
}

fn usage_json(usage: Usage) -> Value {
    json!({
        "inputTokens": usage.input,
        "outputTokens": usage.output,
        "totalTokens": usage.input + usage.output + usage.cache_read + usage.cache_write,
        "cacheReadInputTokens": usage.cache_read,
        "cacheWriteInputTokens": usage.cache_write,
    })
}

/// The ConverseStream events for `turn`, as (`:event-type`, payload).
///
/// Text, reasoning and tool input are each split into three deltas (fewer when shorter) so
/// clients must reassemble them; a reasoning block's signature follows its text in a delta
/// of its own, as the real service sends it; a tool call with input `{}` gets no input delta at all, as the
/// real service may send it, so clients must treat a missing input as `{}`.
fn turn_events(turn: &Turn) -> Vec<(&'static str, Value)> {
    let mut events = vec![("messageStart", json!({"role": "assistant"}))];
    for (index, block) in turn.content.iter().enumerate() {
        match block {
            FakeBlock::Text(text) => {
                for piece in split3(text) {
                    events.push((
                        "contentBlockDelta",
                        json!({"contentBlockIndex": index, "delta": {"text": piece}}),
                    ));
                }
            }
            FakeBlock::ToolUse { id, name, input } => {
                events.push((
                    "contentBlockStart",
                    json!({"contentBlockIndex": index,
                           "start": {"toolUse": {"toolUseId": id, "name": name}}}),
                ));
                let input = if input == &json!({}) {
                    String::new()
                } else {
                    input.to_string()
                };
                for piece in split3(&input).into_iter().filter(|p| !p.is_empty()) {
                    events.push((
                        "contentBlockDelta",
                        json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}),
                    ));
                }
            }
            FakeBlock::Reasoning { text, signature } => {
                let reasoning_delta = |delta: Value| {
                    let delta = json!({"reasoningContent": delta});
                    json!({"contentBlockIndex": index, "delta": delta})
                };
                for piece in split3(text) {
                    events.push(("contentBlockDelta", reasoning_delta(json!({"text": piece}))));
                }
                if !signature.is_empty() {
                    let signature = reasoning_delta(json!({"signature": signature}));
                    events.push(("contentBlockDelta", signature));
                }
            }
        }
        events.push(("contentBlockStop", json!({"contentBlockIndex": index})));
    }
    events.push(("messageStop", json!({"stopReason": turn.stop_reason})));
    events.push((
        "metadata",
        json!({"usage": usage_json(turn.usage), "metrics": {"latencyMs": LATENCY_MS}}),
    ));
    events
}

/// Splits `text` into up to three non-empty pieces on character boundaries (one empty
/// piece for empty text, so an empty text block still has its delta).
fn split3(text: &str) -> Vec<&str> {
    let chars = text.chars().count();
    let size = chars.div_ceil(3).max(1);
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .nth(size)
            .map_or(rest.len(), |(at, _)| at);
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    if pieces.is_empty() {
        pieces.push("");
    }
    pieces
}

type Frame = Result<Bytes, aws_smithy_eventstream::error::Error>;

fn event_frame(event_type: &str, payload: &Value) -> Frame {
    frame(
        vec![
            string_header(":message-type", "event"),
            string_header(":event-type", event_type),
            string_header(":content-type", "application/json"),
        ],
        payload,
    )
}

fn exception_frame(error_type: &str, message: &str) -> Frame {
    frame(
        vec![
            string_header(":message-type", "exception"),
            string_header(
                ":exception-type",
                &first_char(error_type, char::to_lowercase),
            ),
            string_header(":content-type", "application/json"),
        ],
        &json!({"message": message}),
    )
}

fn string_header(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_string().into()))
}

fn frame(headers: Vec<Header>, payload: &Value) -> Frame {
    let message = Message::new_from_parts(headers, payload.to_string());
    let mut bytes = Vec::new();
    write_message_to(&message, &mut bytes)?;
    Ok(Bytes::from(bytes))
}

/// A 200 event-stream answer sending each frame as its own body chunk. If a frame cannot
/// be encoded (e.g. an over-long scripted header), the test sees a 500 saying why.
fn stream_response(frames: impl IntoIterator<Item = Frame>) -> Response {
    match frames.into_iter().collect::<Result<Vec<Bytes>, _>>() {
        Ok(frames) => (
            [(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")],
            Body::from_stream(futures_util::stream::iter(
                frames.into_iter().map(Ok::<_, Infallible>),
            )),
        )
            .into_response(),
        Err(err) => error_response(
            500,
            "InternalServerException",
            &format!("fake bedrock: cannot encode an event-stream frame: {err}"),
        ),
    }
}

/// An error the way Bedrock sends it; the SDK reads the type from `x-amzn-ErrorType`.
fn error_response(status: u16, error_type: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(json!({"message": message}))).into_response();
    let error_type = HttpHeaderValue::from_str(error_type)
        .unwrap_or_else(|_| HttpHeaderValue::from_static("InternalServerException"));
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", error_type);
    response
}

/// The HTTP status Bedrock uses for an error type (500 for types it does not list).
fn status_of(error_type: &str) -> u16 {
    match error_type {
        "ValidationException" => 400,
        "AccessDeniedException" => 403,
        "ResourceNotFoundException" => 404,
        "ModelTimeoutException" => 408,
        "ModelErrorException" | "ModelStreamErrorException" => 424,
        "ThrottlingException" | "ModelNotReadyException" => 429,
        "ServiceUnavailableException" => 503,
        _ => 500,
    }
}

/// Re-cases the first character: HTTP errors are named `ThrottlingException`, in-stream
/// exceptions `throttlingException`, and a script may use either spelling.
fn first_char<I: Iterator<Item = char>>(name: &str, recase: fn(char) -> I) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => recase(first).chain(chars).collect(),
        None => String::new(),
    }
}
