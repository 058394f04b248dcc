//! The relay's Lambda entry point: reads the configuration, builds the AWS clients, and
//! hands every Function URL event to [`Relay::handle`].

use std::convert::Infallible;
use std::sync::Arc;

use agent_host_relay::{Clients, Relay, RelayConfig};
use lambda_http::{Request, service_fn};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // One JSON object per line, which CloudWatch indexes; `RELAY_LOG` picks the levels.
    // Whatever it says, the Lambda runtime's trace events stay off: they print every raw
    // event, whose headers carry the webhook secret and whose body the user's words.
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let no_raw_events = filter_fn(|event| {
        !(event.target().starts_with("lambda_runtime") && *event.level() == tracing::Level::TRACE)
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .without_time()
                .with_filter(filter.and(no_raw_events)),
        )
        .init();
    let config = RelayConfig::from_env().inspect_err(|error| tracing::error!("{error:#}"))?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let relay = Arc::new(Relay::new(config, Clients::from_sdk_config(&sdk)));
    lambda_http::run(service_fn(move |request: Request| {
        let relay = relay.clone();
        async move { Ok::<_, Infallible>(relay.handle(request).await) }
    }))
    .await
}
