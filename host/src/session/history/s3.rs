//! Histories as S3 objects, for deployments whose local disk goes with the microVM.
//!
//! S3 cannot append, so an append rewrites the user's object with the new messages added.
//! To avoid reading the object back each time, the store keeps each user's conversation in
//! memory after the first read. That is only correct because the host is the only writer
//! of a user's history (one microVM per user session); two hosts writing one user's object
//! would overwrite each other's messages.

use anyhow::Context as _;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;

use super::{HistoryStore, PerUser, decode_lines, encode_lines, stored_name};
use crate::model::types::Message;
use crate::shared::error_chain;

/// What operators should check when S3 refuses.
const CHECK: &str = "check the bucket name, that the host's credentials may s3:GetObject, \
                     s3:PutObject and s3:DeleteObject under the prefix (and s3:ListBucket on the \
                     bucket, without which S3 answers AccessDenied for a history not written \
                     yet), and the endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) and region";

/// Conversations as objects `<prefix><name>.jsonl` in one bucket, one per user, `name`
/// being the user's [`workspace_dir_name`](crate::session::workspace_dir_name).
pub struct S3History {
    client: Client,
    bucket: String,
    prefix: String,
    /// Each user's conversation as last read or written; `None` until read.
    users: PerUser<Option<Vec<Message>>>,
}

impl S3History {
    /// Histories in `bucket` under `prefix` (used as is: end it with `/` for a folder),
    /// through an explicitly configured client.
    pub fn new(client: Client, bucket: String, prefix: String) -> Self {
        Self {
            client,
            bucket,
            prefix,
            users: PerUser::new(),
        }
    }

    /// Histories in `bucket` under `prefix`, with a client from the standard AWS
    /// configuration chain (environment, profile, container or instance role).
    ///
    /// When an endpoint override is configured (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`
    /// or the profile's `endpoint_url`), requests use path-style addressing
    /// (`<endpoint>/<bucket>/<key>`): local and self-hosted S3 servers (MinIO, moto,
    /// LocalStack) rarely resolve the virtual-host names (`<bucket>.<endpoint>`) that AWS
    /// uses by default. Against AWS itself the default addressing is kept.
    pub async fn from_env(bucket: String, prefix: String) -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let overridden = endpoint_overridden(&shared);
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(overridden)
            .build();
        Self::new(Client::from_conf(config), bucket, prefix)
    }

    /// Checks at start-up that the bucket is reachable with these credentials, so a
    /// misconfiguration shows before the first user's message is lost. (`HeadBucket` needs
    /// `s3:ListBucket` on the bucket.)
    pub async fn check(&self) -> anyhow::Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|error| {
                self.error("reach the bucket", &format!("s3://{}", self.bucket), error)
            })?;
        Ok(())
    }

    fn key(&self, user_key: &str) -> String {
        format!("{}{}", self.prefix, stored_name(user_key))
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The conversation from the cache, or read from S3 into it.
    async fn cached<'c>(
        &self,
        key: &str,
        cache: &'c mut Option<Vec<Message>>,
    ) -> anyhow::Result<&'c mut Vec<Message>> {
        if cache.is_none() {
            *cache = Some(self.fetch(key).await?);
        }
        Ok(cache.get_or_insert_default())
    }

    /// Reads the object at `key`; a missing object is an empty conversation.
    async fn fetch(&self, key: &str) -> anyhow::Result<Vec<Message>> {
        let url = self.url(key);
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_no_such_key()) =>
            {
                return Ok(Vec::new());
            }
            Err(error) => return Err(self.error("read", &url, error)),
        };
        let body = output
            .body
            .collect()
            .await
            .with_context(|| format!("cannot read {url}: the download broke off; try again"))?
            .into_bytes();
        Ok(decode_lines(&body, &url)?.messages)
    }

    /// Writes the whole conversation to the object at `key`.
    async fn put(&self, key: &str, messages: &[Message]) -> anyhow::Result<()> {
        let body = encode_lines(messages)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| self.error("write", &self.url(key), error))?;
        Ok(())
    }

    /// An S3 failure in a few words (code, message, status; not the whole response) and
    /// what to check.
    fn error<E>(&self, action: &str, url: &str, error: SdkError<E, HttpResponse>) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = error.code().unwrap_or("error").to_string();
        let detail = match &error {
            SdkError::ServiceError(service) => format!(
                "{code} (HTTP {}): {}",
                service.raw().status().as_u16(),
                error.message().unwrap_or("no message")
            ),
            // Connection refused, timeouts, no credentials...: the causes say which.
            _ => error_chain(&error),
        };
        match code.as_str() {
            // HeadBucket answers a bare 404 ("NotFound") for a missing bucket.
            "NoSuchBucket" | "NotFound" => anyhow::anyhow!(
                "cannot {action} {url}: bucket {:?} does not exist ({detail}); check the bucket \
                 name and the region/endpoint",
                self.bucket
            ),
            _ => anyhow::anyhow!("cannot {action} {url}: {detail}; {CHECK}"),
        }
    }
}

impl HistoryStore for S3History {
    fn load<'a>(&'a self, user_key: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<Message>>> {
        async move {
            let key = self.key(user_key);
            let mut cache = self.users.lock(&key).await;
            Ok(self.cached(&key, &mut cache).await?.clone())
        }
        .boxed()
    }

    fn append<'a>(
        &'a self,
        user_key: &'a str,
        messages: &'a [Message],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        async move {
            if messages.is_empty() {
                return Ok(());
            }
            let key = self.key(user_key);
            let mut cache = self.users.lock(&key).await;
            let conversation = self.cached(&key, &mut cache).await?;
            let before = conversation.len();
            conversation.extend_from_slice(messages);
            if let Err(error) = self.put(&key, conversation).await {
                // The write may or may not have landed: read the object again next time.
                *cache = None;
                return Err(error);
            }
            tracing::debug!(key = %key, before, added = messages.len(), "history appended");
            Ok(())
        }
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        user_key: &'a str,
        messages: &'a [Message],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        async move {
            let key = self.key(user_key);
            let mut cache = self.users.lock(&key).await;
            *cache = None;
            self.put(&key, messages).await?;
            *cache = Some(messages.to_vec());
            Ok(())
        }
        .boxed()
    }

    fn clear<'a>(&'a self, user_key: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        async move {
            let key = self.key(user_key);
            let mut cache = self.users.lock(&key).await;
            *cache = None;
            // Deleting a missing object succeeds in S3, so clearing twice is fine.
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|error| self.error("delete", &self.url(&key), error))?;
            *cache = Some(Vec::new());
            Ok(())
        }
        .boxed()
    }
}

/// True if the configuration chain points S3 somewhere else than AWS, the same way the
/// SDK looks for it when building the S3 client.
fn endpoint_overridden(shared: &aws_config::SdkConfig) -> bool {
    if shared.endpoint_url().is_some() {
        return true;
    }
    let Some(service_config) = shared.service_config() else {
        return false;
    };
    aws_types::service_config::ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .is_ok_and(|key| service_config.load_config(key).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_endpoint_counts_as_an_override() {
        let aws = aws_config::SdkConfig::builder().build();
        assert!(!endpoint_overridden(&aws));
        let local = aws_config::SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:9000")
            .build();
        assert!(endpoint_overridden(&local));
    }
}
