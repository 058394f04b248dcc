//! The relay's Lambda entry point: reads the configuration, builds the AWS clients, and
//! hands every Function URL event to [`Relay::handle`].

use std::convert::Infallible;
use std::sync::Arc;

use agent_host_relay::{Clients, Relay, RelayConfig};
use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // One JSON object per line, which CloudWatch indexes; `RELAY_LOG` picks the levels.
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
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
