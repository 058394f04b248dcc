//! One webhook delivery, from Telegram's request to the relay's answer.

use std::collections::HashSet;
use std::time::Instant;

use agent_host_updates::route::{bot_id, route, session_id};
use agent_host_updates::update::{self, Incoming};
use aws_config::SdkConfig;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::config::RelayConfig;
use crate::forward::{Forwarded, Forwarder};
use crate::notice::{self, Notifier, Target};
use crate::secrets::{CachedSecret, SecretError};
use crate::webhook::{SECRET_HEADER, secret_matches};

/// The AWS clients the relay uses; tests build them with endpoints of local fakes.
#[derive(Clone)]
pub struct Clients {
    /// AgentCore's data plane.
    pub agentcore: aws_sdk_bedrockagentcore::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    /// Both clients from the standard AWS configuration (region, credentials and the
    /// `AWS_ENDPOINT_URL_*` overrides).
    pub fn from_sdk_config(sdk: &SdkConfig) -> Self {
        Self {
            agentcore: aws_sdk_bedrockagentcore::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }
}

/// The relay: everything one Lambda container keeps between deliveries.
pub struct Relay {
    allowed_users: HashSet<i64>,
    webhook_secret: CachedSecret,
    bot_token: CachedSecret,
    forwarder: Forwarder,
    notifier: Notifier,
}

/// What the relay answers Telegram, and a word on why (for the log).
struct Reply {
    status: StatusCode,
    text: &'static str,
}

impl Reply {
    const fn new(status: StatusCode, text: &'static str) -> Self {
        Self { status, text }
    }

    /// Taken: checked and forwarded, or checked and deliberately dropped. Telegram never
    /// sees the difference, and never retries.
    const fn done() -> Self {
        Self::new(StatusCode::OK, "")
    }
}

impl Relay {
    /// A relay with `config`'s settings and `clients`. Nothing is read or called yet.
    pub fn new(config: RelayConfig, clients: Clients) -> Self {
        if config.allowed_users.is_empty() {
            tracing::error!(
                "RELAY_ALLOWED_USERS is empty: no update will be forwarded; set it to the \
                 host's allowed_users"
            );
        }
        Self {
            allowed_users: config.allowed_users,
            webhook_secret: CachedSecret::new(clients.secrets.clone(), config.webhook_secret_id),
            bot_token: CachedSecret::new(clients.secrets, config.bot_token_secret_id),
            forwarder: Forwarder::new(
                clients.agentcore,
                config.runtime_arn,
                config.runtime_qualifier,
                config.invoke_timeout,
            ),
            notifier: Notifier::new(config.telegram_api_base_url),
        }
    }

    /// Lets a webhook secret that stopped matching be read again once it is `age` old
    /// (default: a minute; tests rotate it at once).
    pub fn with_secret_refresh_after(mut self, age: std::time::Duration) -> Self {
        self.webhook_secret = self.webhook_secret.refresh_after(age);
        self
    }

    /// Handles one delivery: the answer for Telegram, given only after the update was
    /// forwarded (a Lambda that has answered may be frozen before it finishes).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let reply = self.relay(request).await;
        tracing::debug!(
            status = reply.status.as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "answered Telegram"
        );
        Response::builder()
            .status(reply.status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(Body::from(reply.text))
            .unwrap_or_default()
    }

    async fn relay(&self, request: Request) -> Reply {
        if request.method() != Method::POST {
            return Reply::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this is a Telegram webhook: only POST is accepted",
            );
        }
        let given = request
            .headers()
            .get(SECRET_HEADER)
            .map(|value| value.as_bytes());
        match self.authentic(given).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("refused a delivery without the webhook's secret token");
                return Reply::new(StatusCode::UNAUTHORIZED, "wrong or missing secret token");
            }
            Err(error) => {
                tracing::error!(%error, "cannot check the webhook's secret token");
                return Reply::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the relay cannot read its secrets; Telegram will deliver again",
                );
            }
        }
        let body = request.body().as_ref().to_vec();
        let update = match serde_json::from_slice::<Value>(&body) {
            Ok(update) if update.is_object() => update,
            _ => {
                tracing::warn!(
                    bytes = body.len(),
                    "refused a body that is not a Telegram update"
                );
                return Reply::new(StatusCode::BAD_REQUEST, "the body is not a Telegram update");
            }
        };
        let update_id = update::update_id(&update);
        let incoming = update::read(&update);
        let Some(route) = route(&incoming) else {
            if let Incoming::Ignored(reason) = &incoming {
                tracing::info!(update_id, %reason, "not forwarded: the bot ignores it");
            }
            return Reply::done();
        };
        if !self.allowed_users.contains(&route.sender) {
            tracing::info!(
                update_id,
                sender = route.sender,
                "not forwarded: the sender is not in RELAY_ALLOWED_USERS"
            );
            return Reply::done();
        }
        let token = match self.bot_token.get().await {
            Ok(token) => token,
            Err(error) => return self.broken(&error),
        };
        let Some(bot) = bot_id(token.expose()) else {
            tracing::error!(
                secret = self.bot_token.id(),
                "the bot token secret does not hold a bot token (`123456:ABC...` from \
                 @BotFather): put it, and Telegram will deliver again"
            );
            return Reply::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the relay has no bot token",
            );
        };
        let session = session_id(bot, route.owner);
        let started = Instant::now();
        let forwarded = self.forwarder.forward(&session, body).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let text = match &forwarded {
            Forwarded::Taken(status) => {
                tracing::info!(update_id, %session, status, elapsed_ms, "forwarded");
                return Reply::done();
            }
            Forwarded::RefusedByHost(reason) => {
                tracing::error!(update_id, %session, %reason, elapsed_ms,
                    "the host refused the update (AgentCore's 424)");
                notice::UNAVAILABLE
            }
            Forwarded::Failed(reason) => {
                tracing::error!(update_id, %session, %reason, elapsed_ms,
                    "AgentCore did not take the update");
                notice::UNAVAILABLE
            }
            Forwarded::TimedOut => {
                tracing::error!(update_id, %session, elapsed_ms,
                    "AgentCore did not answer in time (RELAY_INVOKE_TIMEOUT_SECS)");
                notice::SLOW_START
            }
        };
        let target = match incoming {
            Incoming::Button(press) => Target::Callback(press.id),
            Incoming::Message(message) => Target::Chat(message.chat_id),
            Incoming::Stop(stop) => Target::Chat(stop.chat_id),
            Incoming::Ignored(_) => return Reply::done(),
        };
        match self.notifier.tell(&token, &target, text).await {
            Ok(true) => tracing::info!(update_id, "told the user the bot is unavailable"),
            Ok(false) => tracing::info!(update_id, "the user was told a moment ago"),
            Err(error) => tracing::error!(update_id, %error, "cannot tell the user"),
        }
        Reply::done()
    }

    /// Whether the delivery carries the webhook's secret. A secret that does not match is
    /// read again (at most once a minute): the operator may have rotated it.
    async fn authentic(&self, given: Option<&[u8]>) -> Result<bool, SecretError> {
        let secret = self.webhook_secret.get().await?;
        if secret_matches(given, secret.expose()) {
            return Ok(true);
        }
        if given.is_none() {
            return Ok(false);
        }
        Ok(self
            .webhook_secret
            .refreshed()
            .await?
            .is_some_and(|fresh| secret_matches(given, fresh.expose())))
    }

    fn broken(&self, error: &SecretError) -> Reply {
        tracing::error!(%error, "cannot read the bot token");
        Reply::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the relay cannot read its secrets; Telegram will deliver again",
        )
    }
}
