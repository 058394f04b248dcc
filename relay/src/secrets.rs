//! Secrets from Secrets Manager, cached for the life of the Lambda container.
//!
//! A cached value older than [`REFRESH_AFTER`] may be read again when it stops working (a
//! webhook secret that no longer matches: the operator rotated it), so a rotation takes
//! effect without a redeploy while a stranger guessing secrets costs at most one read a
//! minute.

use std::fmt;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use tokio::sync::Mutex;

/// How old a cached value must be before a failure may read it again.
pub const REFRESH_AFTER: Duration = Duration::from_secs(60);

/// A secret's text. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(redacted)")
    }
}

/// Why a secret could not be had. Never holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager refused or could not be reached.
    #[error("cannot read secret {id} from Secrets Manager: {reason}")]
    Unreadable {
        /// The secret's id.
        id: String,
        /// What Secrets Manager said.
        reason: String,
    },
    /// The secret has no text (a binary secret, or no value put yet).
    #[error(
        "secret {id} in Secrets Manager has no text value: put it with `aws secretsmanager \
         put-secret-value --secret-id {id} --secret-string ...`"
    )]
    Empty {
        /// The secret's id.
        id: String,
    },
}

/// One secret, read once and kept.
pub struct CachedSecret {
    client: Client,
    id: String,
    refresh_after: Duration,
    cached: Mutex<Option<(SecretText, Instant)>>,
}

impl CachedSecret {
    /// The secret `id` (a name or an ARN), read through `client` at first use.
    pub fn new(client: Client, id: impl Into<String>) -> Self {
        Self {
            client,
            id: id.into(),
            refresh_after: REFRESH_AFTER,
            cached: Mutex::new(None),
        }
    }

    /// Lets a failing value be read again once it is `age` old (default [`REFRESH_AFTER`]).
    pub fn refresh_after(mut self, age: Duration) -> Self {
        self.refresh_after = age;
        self
    }

    /// The secret's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The value: the cached one, or read now.
    pub async fn get(&self) -> Result<SecretText, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some((value, _)) = cached.as_ref() {
            return Ok(value.clone());
        }
        let value = self.read().await?;
        *cached = Some((value.clone(), Instant::now()));
        Ok(value)
    }

    /// A fresh value when the cached one (which just failed) is older than the refresh
    /// age; `None` when it is not, or when the fresh value is the same.
    pub async fn refreshed(&self) -> Result<Option<SecretText>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some((_, read_at)) = cached.as_ref()
            && read_at.elapsed() < self.refresh_after
        {
            return Ok(None);
        }
        let value = self.read().await?;
        let changed = cached.as_ref().is_none_or(|(old, _)| *old != value);
        *cached = Some((value.clone(), Instant::now()));
        Ok(changed.then_some(value))
    }

    async fn read(&self) -> Result<SecretText, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.id)
            .send()
            .await
            .map_err(|error| SecretError::Unreadable {
                id: self.id.clone(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(error).to_string(),
            })?;
        output
            .secret_string
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
            .map(SecretText)
            .ok_or_else(|| SecretError::Empty {
                id: self.id.clone(),
            })
    }
}
