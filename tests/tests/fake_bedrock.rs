//! The Bedrock fake, driven by the real `aws-sdk-bedrockruntime` client over 127.0.0.1:
//! if the SDK parses what the fake sends, the host's model code will see what Bedrock sends.

use std::collections::HashMap;

use agent_host_tests::Gate;
use agent_host_tests::fake_bedrock::{
    FakeBedrock, FakeBlock, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, MAX_IMAGES, Operation,
    SCRIPT_EXHAUSTED, SentImage, Step, Turn, Usage, reasoning_signature,
};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{Credentials, Region};
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseStreamOutput,
    ImageBlock, ImageFormat, ImageSource, Message, ReasoningContentBlock,
    ReasoningContentBlockDelta, StopReason, SystemContentBlock, Tool, ToolConfiguration,
    ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolSpecification, ToolUseBlock,
};
use aws_smithy_types::event_stream::RawMessage;
use aws_smithy_types::{Document, Number};
use serde_json::{Value, json};

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// A client built from code only: static test credentials, no environment, no retries
/// (so one scripted error is one SDK error), and the fake as endpoint.
fn client(fake: &FakeBedrock) -> Client {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(fake.endpoint())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn user(text: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.to_string()))
        .build()
        .unwrap()
}

fn read_file_tool() -> ToolConfiguration {
    let schema = json!({
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    });
    let spec = ToolSpecification::builder()
        .name("read_file")
        .description("Reads a file of the workspace.")
        .input_schema(ToolInputSchema::Json(to_document(&schema)))
        .build()
        .unwrap();
    ToolConfiguration::builder()
        .tools(Tool::ToolSpec(spec))
        .build()
        .unwrap()
}

fn to_json(doc: &Document) -> Value {
    match doc {
        Document::Object(map) => map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
        Document::Array(items) => items.iter().map(to_json).collect(),
        Document::Number(Number::PosInt(n)) => json!(n),
        Document::Number(Number::NegInt(n)) => json!(n),
        Document::Number(Number::Float(f)) => json!(f),
        Document::String(s) => json!(s),
        Document::Bool(b) => json!(b),
        Document::Null => Value::Null,
    }
}

fn to_document(value: &Value) -> Document {
    match value {
        Value::Object(map) => Document::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_document(v)))
                .collect::<HashMap<_, _>>(),
        ),
        Value::Array(items) => Document::Array(items.iter().map(to_document).collect()),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Document::from(u),
            (None, Some(i)) => Document::from(i),
            _ => Document::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Bool(b) => Document::Bool(*b),
        Value::Null => Document::Null,
    }
}

/// One line per stream event, so a whole stream compares in one assertion.
fn describe(event: &ConverseStreamOutput) -> String {
    match event {
        ConverseStreamOutput::MessageStart(e) => format!("messageStart {}", e.role().as_str()),
        ConverseStreamOutput::ContentBlockStart(e) => match e.start() {
            Some(ContentBlockStart::ToolUse(t)) => format!(
                "start {} toolUse {} {}",
                e.content_block_index(),
                t.tool_use_id(),
                t.name()
            ),
            other => format!("start {} {other:?}", e.content_block_index()),
        },
        ConverseStreamOutput::ContentBlockDelta(e) => match e.delta() {
            Some(ContentBlockDelta::Text(_)) => format!("delta {} text", e.content_block_index()),
            Some(ContentBlockDelta::ToolUse(_)) => {
                format!("delta {} toolUse", e.content_block_index())
            }
            Some(ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::Text(_))) => {
                format!("delta {} reasoning text", e.content_block_index())
            }
            Some(ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::Signature(_))) => {
                format!("delta {} reasoning signature", e.content_block_index())
            }
            other => format!("delta {} {other:?}", e.content_block_index()),
        },
        ConverseStreamOutput::ContentBlockStop(e) => format!("stop {}", e.content_block_index()),
        ConverseStreamOutput::MessageStop(e) => format!("messageStop {}", e.stop_reason().as_str()),
        ConverseStreamOutput::Metadata(e) => {
            let usage = e.usage().unwrap();
            format!(
                "metadata {}/{}/{} latency {}",
                usage.input_tokens(),
                usage.output_tokens(),
                usage.total_tokens(),
                e.metrics().unwrap().latency_ms()
            )
        }
        other => format!("{other:?}"),
    }
}

/// Receives until the stream ends or fails; returns the events and the error, if any.
async fn drain(
    stream: &mut EventReceiver<ConverseStreamOutput, ConverseStreamOutputError>,
) -> (
    Vec<ConverseStreamOutput>,
    Option<SdkError<ConverseStreamOutputError, RawMessage>>,
) {
    let mut events = Vec::new();
    loop {
        match stream.recv().await {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(err) => return (events, Some(err)),
        }
    }
}

#[tokio::test]
async fn converse_text_reply_parses() {
    let usage = Usage {
        input: 12,
        output: 3,
        cache_read: 100,
        cache_write: 5,
    };
    let fake = FakeBedrock::start(vec![Step::Reply(
        Turn::text("Hello there.").with_usage(usage),
    )])
    .await;

    let out = client(&fake)
        .converse()
        .model_id(MODEL)
        .messages(user("hi"))
        .send()
        .await
        .unwrap();

    assert_eq!(out.stop_reason(), &StopReason::EndTurn);
    let message = out.output().unwrap().as_message().unwrap();
    assert_eq!(message.role(), &ConversationRole::Assistant);
    assert_eq!(
        message.content(),
        &[ContentBlock::Text("Hello there.".to_string())]
    );
    let usage = out.usage().unwrap();
    assert_eq!(
        (
            usage.input_tokens(),
            usage.output_tokens(),
            usage.total_tokens(),
            usage.cache_read_input_tokens(),
            usage.cache_write_input_tokens(),
        ),
        (12, 3, 120, Some(100), Some(5))
    );
    assert_eq!(out.metrics().unwrap().latency_ms(), 100);
    assert_eq!(fake.remaining(), 0);
}

#[tokio::test]
async fn converse_tool_use_reply_parses() {
    let fake = FakeBedrock::start(vec![Step::Reply(Turn::tool_uses(vec![
        ("tooluse_a", "read_file", json!({"path": "a.txt"})),
        (
            "tooluse_b",
            "list_dir",
            json!({"path": ".", "depth": 2, "hidden": false}),
        ),
    ]))])
    .await;

    let out = client(&fake)
        .converse()
        .model_id(MODEL)
        .messages(user("look around"))
        .send()
        .await
        .unwrap();

    assert_eq!(out.stop_reason(), &StopReason::ToolUse);
    let calls: Vec<(&str, &str, Value)> = out
        .output()
        .unwrap()
        .as_message()
        .unwrap()
        .content()
        .iter()
        .map(|block| {
            let call = block.as_tool_use().unwrap();
            (call.tool_use_id(), call.name(), to_json(call.input()))
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            ("tooluse_a", "read_file", json!({"path": "a.txt"})),
            (
                "tooluse_b",
                "list_dir",
                json!({"path": ".", "depth": 2, "hidden": false})
            ),
        ]
    );
}

#[tokio::test]
async fn converse_stream_is_received_event_by_event() {
    let input = json!({"path": "src/main.rs", "limit": 20, "note": "ünïcode"});
    let turn = Turn {
        content: vec![
            FakeBlock::Text("Reading the file now.".to_string()),
            FakeBlock::ToolUse {
                id: "tooluse_1".to_string(),
                name: "read_file".to_string(),
                input: input.clone(),
            },
        ],
        stop_reason: "tool_use".to_string(),
        usage: Usage {
            input: 40,
            output: 9,
            ..Usage::default()
        },
    };
    let fake = FakeBedrock::start(vec![Step::Reply(turn)]).await;

    let mut out = client(&fake)
        .converse_stream()
        .model_id(MODEL)
        .messages(user("read main"))
        .send()
        .await
        .unwrap();
    let (events, error) = drain(&mut out.stream).await;
    assert!(error.is_none(), "{error:?}");

    let described: Vec<String> = events.iter().map(describe).collect();
    assert_eq!(
        described,
        [
            "messageStart assistant",
            "delta 0 text",
            "delta 0 text",
            "delta 0 text",
            "stop 0",
            "start 1 toolUse tooluse_1 read_file",
            "delta 1 toolUse",
            "delta 1 toolUse",
            "delta 1 toolUse",
            "stop 1",
            "messageStop tool_use",
            "metadata 40/9/49 latency 100",
        ]
    );

    let mut text = String::new();
    let mut tool_input = String::new();
    for event in &events {
        if let ConverseStreamOutput::ContentBlockDelta(e) = event {
            match e.delta().unwrap() {
                ContentBlockDelta::Text(t) => text.push_str(t),
                ContentBlockDelta::ToolUse(t) => {
                    // Each fragment alone is not valid JSON: reassembly is required.
                    assert!(serde_json::from_str::<Value>(t.input()).is_err());
                    tool_input.push_str(t.input());
                }
                other => panic!("unexpected delta {other:?}"),
            }
        }
    }
    assert_eq!(text, "Reading the file now.");
    assert_eq!(serde_json::from_str::<Value>(&tool_input).unwrap(), input);
}

/// The reasoning text and signature of each reasoning block in `events`, by block index.
fn streamed_reasoning(events: &[ConverseStreamOutput]) -> Vec<(i32, String, String)> {
    let mut blocks: Vec<(i32, String, String)> = Vec::new();
    for event in events {
        let ConverseStreamOutput::ContentBlockDelta(e) = event else {
            continue;
        };
        let Some(ContentBlockDelta::ReasoningContent(delta)) = e.delta() else {
            continue;
        };
        let index = e.content_block_index();
        if blocks.last().is_none_or(|(last, _, _)| *last != index) {
            blocks.push((index, String::new(), String::new()));
        }
        let (_, text, signature) = blocks.last_mut().unwrap();
        match delta {
            ReasoningContentBlockDelta::Text(t) => text.push_str(t),
            ReasoningContentBlockDelta::Signature(s) => signature.push_str(s),
            other => panic!("unexpected reasoning delta {other:?}"),
        }
    }
    blocks
}

#[tokio::test]
async fn streamed_reasoning_arrives_as_text_deltas_then_its_signature() {
    let reasoning = "The user greets me. A short greeting back will do.";
    let unsigned = FakeBlock::Reasoning {
        text: "Unsigned thoughts.".to_string(),
        signature: String::new(),
    };
    let mut unsigned_then_tool = Turn::tool_use("t1", "pwd", json!({})).with_reasoning("Where?");
    unsigned_then_tool.content.insert(0, unsigned);
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::reasoning_then_text(reasoning, "Hello!")),
        Step::Reply(unsigned_then_tool),
    ])
    .await;
    let client = client(&fake);
    let stream = || {
        client
            .converse_stream()
            .model_id(MODEL)
            .messages(user("hi"))
            .send()
    };

    let mut out = stream().await.unwrap();
    let (events, error) = drain(&mut out.stream).await;
    assert!(error.is_none(), "{error:?}");
    let described: Vec<String> = events.iter().map(describe).collect();
    assert_eq!(
        described,
        [
            "messageStart assistant",
            "delta 0 reasoning text",
            "delta 0 reasoning text",
            "delta 0 reasoning text",
            "delta 0 reasoning signature",
            "stop 0",
            "delta 1 text",
            "delta 1 text",
            "delta 1 text",
            "stop 1",
            "messageStop end_turn",
            "metadata 0/0/0 latency 100",
        ]
    );
    assert_eq!(
        streamed_reasoning(&events),
        [(0, reasoning.to_string(), reasoning_signature(reasoning))]
    );

    // Blocks compose: an unsigned block has no signature delta, and with_reasoning's block
    // keeps its own index before the tool call.
    let mut out = stream().await.unwrap();
    let (events, error) = drain(&mut out.stream).await;
    assert!(error.is_none(), "{error:?}");
    let described: Vec<String> = events.iter().map(describe).collect();
    assert_eq!(
        described,
        [
            "messageStart assistant",
            "delta 0 reasoning text",
            "delta 0 reasoning text",
            "delta 0 reasoning text",
            "stop 0",
            "delta 1 reasoning text",
            "delta 1 reasoning text",
            "delta 1 reasoning text",
            "delta 1 reasoning signature",
            "stop 1",
            "start 2 toolUse t1 pwd",
            "stop 2",
            "messageStop tool_use",
            "metadata 0/0/0 latency 100",
        ]
    );
    assert_eq!(
        streamed_reasoning(&events),
        [
            (0, "Unsigned thoughts.".to_string(), String::new()),
            (1, "Where?".to_string(), reasoning_signature("Where?")),
        ]
    );
    assert_ne!(
        reasoning_signature("Where?"),
        reasoning_signature(reasoning)
    );
}

#[tokio::test]
async fn converse_reasoning_is_a_reasoning_text_block_with_its_signature() {
    let reasoning = "Two plus two is four.";
    let unsigned = FakeBlock::Reasoning {
        text: "No signature here.".to_string(),
        signature: String::new(),
    };
    let mut unsigned_then_text = Turn::text("4");
    unsigned_then_text.content.insert(0, unsigned);
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::reasoning_then_text(reasoning, "Four.")),
        Step::Reply(unsigned_then_text),
    ])
    .await;
    let client = client(&fake);
    let converse = || {
        client
            .converse()
            .model_id(MODEL)
            .messages(user("2+2?"))
            .send()
    };

    let out = converse().await.unwrap();
    assert_eq!(out.stop_reason(), &StopReason::EndTurn);
    let content = out.output().unwrap().as_message().unwrap().content();
    assert_eq!(content.len(), 2, "{content:?}");
    let ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(block)) = &content[0]
    else {
        panic!("expected a reasoning text block, got {content:?}");
    };
    assert_eq!(block.text(), reasoning);
    let signature = reasoning_signature(reasoning);
    assert_eq!(block.signature(), Some(signature.as_str()));
    assert_eq!(content[1], ContentBlock::Text("Four.".to_string()));

    let out = converse().await.unwrap();
    let content = out.output().unwrap().as_message().unwrap().content();
    let ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(block)) = &content[0]
    else {
        panic!("expected a reasoning text block, got {content:?}");
    };
    assert_eq!(
        (block.text(), block.signature()),
        ("No signature here.", None)
    );
}

#[tokio::test]
async fn streamed_tool_call_with_empty_input_has_no_input_delta() {
    let fake = FakeBedrock::start(vec![Step::Reply(Turn::tool_use("t1", "pwd", json!({})))]).await;
    let mut out = client(&fake)
        .converse_stream()
        .model_id(MODEL)
        .messages(user("where am I"))
        .send()
        .await
        .unwrap();
    let (events, error) = drain(&mut out.stream).await;
    assert!(error.is_none(), "{error:?}");
    let described: Vec<String> = events.iter().map(describe).collect();
    assert_eq!(
        described,
        [
            "messageStart assistant",
            "start 0 toolUse t1 pwd",
            "stop 0",
            "messageStop tool_use",
            "metadata 0/0/0 latency 100",
        ]
    );
}

#[tokio::test]
async fn http_errors_become_the_sdks_typed_errors() {
    let fake = FakeBedrock::start(vec![
        Step::throttle(),
        Step::server_error(),
        Step::error(400, "ValidationException", "input is too long"),
        Step::error(403, "AccessDeniedException", "no model access"),
        Step::error(404, "ResourceNotFoundException", "no such model"),
        Step::throttle(),
    ])
    .await;
    let client = client(&fake);
    let converse = || {
        client
            .converse()
            .model_id(MODEL)
            .messages(user("hi"))
            .send()
    };

    let err = converse().await.unwrap_err().into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");
    assert_eq!(err.message(), Some("Too many requests, please wait."));
    let err = converse().await.unwrap_err().into_service_error();
    assert!(err.is_internal_server_exception(), "{err:?}");
    let err = converse().await.unwrap_err().into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(err.message(), Some("input is too long"));
    let err = converse().await.unwrap_err().into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");
    let err = converse().await.unwrap_err().into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // The streaming operation fails the same way before any event.
    let err = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user("hi"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");

    // Past the script: a 500 that names the cause.
    let err = converse().await.unwrap_err().into_service_error();
    assert!(err.is_internal_server_exception(), "{err:?}");
    assert_eq!(err.message(), Some(SCRIPT_EXHAUSTED));
    assert_eq!(fake.requests().len(), 7);
}

#[tokio::test]
async fn malformed_stream_fails_recv_after_message_start() {
    let fake = FakeBedrock::start(vec![Step::MalformedStream, Step::MalformedStream]).await;
    let client = client(&fake);
    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user("hi"))
        .send()
        .await
        .unwrap();

    let first = out.stream.recv().await.unwrap().unwrap();
    assert_eq!(describe(&first), "messageStart assistant");
    let err = out.stream.recv().await.unwrap_err();
    assert!(
        format!("{err:?}").contains("ChecksumMismatch"),
        "unexpected error {err:?}"
    );

    // On converse the same step is a truncated JSON body. The SDK reports a 200 it cannot
    // parse as a service error with no code (its "unhandled" variant), not as a panic.
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("DeserializeError"), "{err:?}");
    assert_eq!(err.into_service_error().code(), None);
}

#[tokio::test]
async fn stream_exception_arrives_after_the_given_events() {
    let fake = FakeBedrock::start(vec![
        Step::StreamException {
            after_events: 7,
            error_type: "ThrottlingException".to_string(),
            message: "slow down mid-stream".to_string(),
        },
        Step::StreamException {
            after_events: 1,
            error_type: "modelStreamErrorException".to_string(),
            message: "the model broke".to_string(),
        },
    ])
    .await;
    let client = client(&fake);
    let stream = || {
        client
            .converse_stream()
            .model_id(MODEL)
            .messages(user("hi"))
            .send()
    };

    let mut out = stream().await.unwrap();
    let (events, error) = drain(&mut out.stream).await;
    let described: Vec<String> = events.iter().map(describe).collect();
    assert_eq!(
        described,
        [
            "messageStart assistant",
            "delta 0 text",
            "delta 0 text",
            "delta 0 text",
            "stop 0",
            "start 1 toolUse tooluse_interrupted read_file",
            "delta 1 toolUse",
        ]
    );
    let err = error.expect("an exception after 7 events");
    match err.as_service_error() {
        Some(ConverseStreamOutputError::ThrottlingException(e)) => {
            assert_eq!(e.message(), Some("slow down mid-stream"));
        }
        other => panic!("expected a throttling exception, got {other:?} from {err:?}"),
    }

    let mut out = stream().await.unwrap();
    let (events, error) = drain(&mut out.stream).await;
    assert_eq!(events.len(), 1);
    let err = error.expect("an exception after 1 event");
    assert!(
        matches!(
            err.as_service_error(),
            Some(ConverseStreamOutputError::ModelStreamErrorException(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn requests_are_recorded_with_messages_system_tools_and_model_id() {
    let fake = FakeBedrock::start(vec![Step::throttle(), Step::Reply(Turn::text("done"))]).await;
    let client = client(&fake);
    let tool_call = Message::builder()
        .role(ConversationRole::Assistant)
        .content(ContentBlock::ToolUse(
            ToolUseBlock::builder()
                .tool_use_id("tooluse_1")
                .name("read_file")
                .input(to_document(&json!({"path": "a.txt"})))
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();
    let tool_result = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::ToolResult(
            ToolResultBlock::builder()
                .tool_use_id("tooluse_1")
                .content(ToolResultContentBlock::Text("hello".to_string()))
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();

    // Answered with an error, and still recorded.
    client
        .converse()
        .model_id(MODEL)
        .messages(user("read a.txt"))
        .send()
        .await
        .unwrap_err();
    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .system(SystemContentBlock::Text("You are terse.".to_string()))
        .messages(user("read a.txt"))
        .messages(tool_call)
        .messages(tool_result)
        .tool_config(read_file_tool())
        .send()
        .await
        .unwrap();
    drain(&mut out.stream).await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].operation, Operation::Converse);
    assert_eq!(requests[0].model_id, MODEL);
    assert_eq!(
        requests[0].body["messages"],
        json!([{"role": "user", "content": [{"text": "read a.txt"}]}])
    );

    let streamed = &requests[1];
    assert_eq!(streamed.operation, Operation::ConverseStream);
    assert_eq!(streamed.model_id, MODEL);
    assert_eq!(streamed.body["system"], json!([{"text": "You are terse."}]));
    assert_eq!(
        streamed.body["messages"],
        json!([
            {"role": "user", "content": [{"text": "read a.txt"}]},
            {"role": "assistant", "content": [{"toolUse": {
                "toolUseId": "tooluse_1", "name": "read_file", "input": {"path": "a.txt"}}}]},
            {"role": "user", "content": [{"toolResult": {
                "toolUseId": "tooluse_1", "content": [{"text": "hello"}]}}]},
        ])
    );
    assert_eq!(
        streamed.body["toolConfig"],
        json!({"tools": [{"toolSpec": {
            "name": "read_file",
            "description": "Reads a file of the workspace.",
            "inputSchema": {"json": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            }},
        }}]})
    );
}

#[tokio::test]
async fn a_gated_step_does_not_block_other_requests() {
    let gate = Gate::new();
    let fake = FakeBedrock::start(vec![
        Step::Gate {
            gate: gate.clone(),
            then: Turn::text("late"),
        },
        Step::Reply(Turn::text("fast")),
    ])
    .await;
    let client = client(&fake);

    let held = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .converse()
                .model_id(MODEL)
                .messages(user("1"))
                .send()
                .await
        }
    });
    // The held request has taken its step, so the next one gets "fast".
    gate.reached().await;

    let out = client
        .converse()
        .model_id(MODEL)
        .messages(user("2"))
        .send()
        .await
        .unwrap();
    let content = out.output().unwrap().as_message().unwrap().content();
    assert_eq!(content, &[ContentBlock::Text("fast".to_string())]);
    assert!(!held.is_finished());
    // Opened, the gate lets the held request have its answer.
    gate.open();
    let out = held.await.unwrap().unwrap();
    let content = out.output().unwrap().as_message().unwrap().content();
    assert_eq!(content, &[ContentBlock::Text("late".to_string())]);
}

#[tokio::test]
async fn a_gated_step_answers_once_opened() {
    let gate = Gate::new();
    let fake = FakeBedrock::start(vec![
        Step::Gate {
            gate: gate.clone(),
            then: Turn::text("eventually"),
        },
        Step::Gate {
            gate: gate.clone(),
            then: Turn::text("at once"),
        },
    ])
    .await;
    let client = client(&fake);
    let held = tokio::spawn({
        let client = client.clone();
        async move {
            let mut out = client
                .converse_stream()
                .model_id(MODEL)
                .messages(user("hi"))
                .send()
                .await
                .unwrap();
            drain(&mut out.stream).await
        }
    });
    gate.reached().await;
    assert!(!gate.is_open() && !held.is_finished());
    gate.open();
    let (events, error) = held.await.unwrap();
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events.len(), 7);
    // An open gate stays open: a later step behind it answers straight away.
    let out = client
        .converse()
        .model_id(MODEL)
        .messages(user("again"))
        .send()
        .await
        .unwrap();
    let content = out.output().unwrap().as_message().unwrap().content();
    assert_eq!(content, &[ContentBlock::Text("at once".to_string())]);
}

#[tokio::test]
async fn pushed_steps_extend_the_script() {
    let fake = FakeBedrock::start(Vec::new()).await;
    assert_eq!(fake.remaining(), 0);
    fake.push(Step::Reply(Turn::text("pushed")));
    assert_eq!(fake.remaining(), 1);
    let out = client(&fake)
        .converse()
        .model_id(MODEL)
        .messages(user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.output().unwrap().as_message().unwrap().content(),
        &[ContentBlock::Text("pushed".to_string())]
    );
    assert_eq!(fake.remaining(), 0);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_recorded_and_rejected() {
    let fake = FakeBedrock::start(vec![Step::Reply(Turn::text("unused"))]).await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/model/a.b%3A0/converse", fake.endpoint()))
        .body("not json {")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "ValidationException"
    );
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].model_id, "a.b:0");
    assert_eq!(recorded[0].body, json!("not json {"));
    // The service rejects it before any model runs, so no step is used up.
    assert_eq!(fake.remaining(), 1);
}

/// A PNG of `width` × `height` pixels.
fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([x as u8, y as u8, (x ^ y) as u8])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

fn image_block(format: &str, bytes: Vec<u8>) -> ContentBlock {
    ContentBlock::Image(
        ImageBlock::builder()
            .format(ImageFormat::from(format))
            .source(ImageSource::Bytes(Blob::new(bytes)))
            .build()
            .unwrap(),
    )
}

fn user_with(blocks: Vec<ContentBlock>) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .set_content(Some(blocks))
        .build()
        .unwrap()
}

#[tokio::test]
async fn images_are_recorded_with_their_bytes() {
    let fake = FakeBedrock::start(vec![Step::Reply(Turn::text("a gradient"))]).await;
    let bytes = png(40, 30);
    let message = user_with(vec![
        image_block("png", bytes.clone()),
        ContentBlock::Text("what is this?".into()),
    ]);
    client(&fake)
        .converse()
        .model_id(MODEL)
        .messages(message)
        .send()
        .await
        .unwrap();

    let recorded = &fake.requests()[0];
    assert_eq!(
        recorded.images(),
        vec![SentImage {
            message: 0,
            format: "png".into(),
            bytes
        }]
    );
    assert_eq!(recorded.texts(), vec!["what is this?".to_string()]);
}

#[tokio::test]
async fn images_bedrock_would_refuse_are_refused() {
    let fake = FakeBedrock::start(vec![Step::Reply(Turn::text("unused"))]).await;
    let client = client(&fake);
    let refused = |messages: Vec<Message>, expected: &'static str| {
        let request = client
            .converse()
            .model_id(MODEL)
            .set_messages(Some(messages))
            .send();
        async move {
            let err = request.await.unwrap_err().into_service_error();
            assert!(err.is_validation_exception(), "{err:?}");
            let message = err.message().unwrap_or_default();
            assert!(
                message.contains(expected),
                "{expected:?} not in {message:?}"
            );
        }
    };
    let small = png(8, 8);
    let with = |block: ContentBlock| vec![user_with(vec![block, ContentBlock::Text("?".into())])];

    refused(
        with(image_block("bmp", small.clone())),
        "unsupported image format",
    )
    .await;
    refused(with(image_block("jpeg", small.clone())), "do not match").await;
    refused(
        with(image_block("png", b"not a png".to_vec())),
        "do not match",
    )
    .await;
    let mut oversized = small.clone();
    oversized.resize(MAX_IMAGE_BYTES + 1, 0);
    refused(with(image_block("png", oversized)), "max size").await;
    refused(
        with(image_block("png", png(MAX_IMAGE_SIDE + 1, 2))),
        "exceed max",
    )
    .await;
    let assistant = Message::builder()
        .role(ConversationRole::Assistant)
        .content(image_block("png", small.clone()))
        .build()
        .unwrap();
    refused(
        vec![user("hi"), assistant, user("and?")],
        "only allowed in user",
    )
    .await;
    let many = (0..=MAX_IMAGES).map(|_| image_block("png", small.clone()));
    refused(vec![user_with(many.collect())], "too many images").await;

    // The limits themselves are accepted; nothing refused used up a step.
    assert_eq!(fake.remaining(), 1);
    let mut at_limit = small.clone();
    at_limit.resize(MAX_IMAGE_BYTES, 0);
    let side = png(MAX_IMAGE_SIDE, 1);
    let fits = (0..MAX_IMAGES - 2).map(|_| image_block("png", small.clone()));
    let blocks = fits
        .chain([image_block("png", at_limit), image_block("png", side)])
        .collect();
    client
        .converse()
        .model_id(MODEL)
        .messages(user_with(blocks))
        .send()
        .await
        .unwrap();
    assert_eq!(fake.requests().last().unwrap().images().len(), MAX_IMAGES);
}
