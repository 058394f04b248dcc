//! Logs. `serve` writes one JSON object per line like the Python SDK does (`timestamp`,
//! `level`, `message`, `logger`, `requestId`, `sessionId`, plus the event's own fields), so
//! CloudWatch indexes them; the other commands write short text lines to stderr.
//! `AGENT_HOST_LOG` sets the filter (tracing's `EnvFilter` syntax).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Text logs on stderr: the host's own events from `default` level up, its dependencies'
/// (the AWS SDK, wasmtime, ...) errors only, unless `AGENT_HOST_LOG` says otherwise.
pub fn init_text(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default))
        .with_writer(std::io::stderr)
        .try_init();
}

/// JSON-lines logs on stdout (what AgentCore ships to CloudWatch), filtered as
/// [`init_text`] does.
pub fn init_json(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default))
        .fmt_fields(JsonFields::new())
        .event_format(SdkJson)
        .try_init();
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("AGENT_HOST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("error,agent_host={default}")))
}

/// The SDK's log line shape.
pub struct SdkJson;

impl<S, N> FormatEvent<S, N> for SdkJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().to_string()),
        );
        line.insert(
            "logger".into(),
            Value::String(event.metadata().target().to_string()),
        );
        // Span fields (requestId, sessionId, ...), outermost first so inner spans win.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields)
                {
                    line.extend(fields);
                }
            }
        }
        let mut visitor = JsonVisitor(&mut line);
        event.record(&mut visitor);
        line.entry("message")
            .or_insert_with(|| Value::String(String::new()));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
}
