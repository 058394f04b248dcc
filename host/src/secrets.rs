//! Secrets the operator keeps in AWS Secrets Manager (the webhook secret for
//! `telegram set-webhook`), read through the standard AWS configuration chain
//! (`AWS_ENDPOINT_URL_SECRETS_MANAGER` points it elsewhere).

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

/// Reads secrets.
pub struct SecretReader {
    client: Client,
}

impl SecretReader {
    /// A reader from the standard AWS configuration (region, credentials, endpoints).
    pub async fn from_env() -> Self {
        Self::new(&aws_config::defaults(BehaviorVersion::latest()).load().await)
    }

    /// A reader from an explicit AWS configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: Client::new(config),
        }
    }

    /// The text of the secret `id` (a name or an ARN), trimmed. The error names the
    /// secret and what Secrets Manager said, never a value.
    pub async fn read(&self, id: &str) -> anyhow::Result<String> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot read secret {id} from Secrets Manager: {}",
                    DisplayErrorContext(error)
                )
            })?;
        output
            .secret_string
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "secret {id} in Secrets Manager has no text value: put one with `aws \
                     secretsmanager put-secret-value --secret-id {id} --secret-string ...`"
                )
            })
    }
}
