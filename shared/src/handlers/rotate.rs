//! rotate: the Secrets Manager rotation function. Secrets Manager calls it four times per
//! rotation (`createSecret`, `setSecret`, `testSecret`, `finishSecret`); every step is idempotent
//! and guarded as AWS's own templates are: rotation enabled, token known, already current → no-op.
//!
//! Credential type handled here: `oauth2_refresh` (Slack token rotation: `oauth.v2.access` with
//! `grant_type=refresh_token`, which returns a new access **and** refresh token).

use lambda_runtime::{Error, LambdaEvent};
use secrecy::SecretString;
use serde::Deserialize;
use thiserror::Error;
use tracing::info;

use crate::connectors::slack::auth_test;
use crate::secrets::{read_stage, Credential, AWSCURRENT, AWSPENDING};

/// The rotation event, including `RotationToken` (absent from the community event type).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub step: String,
    pub secret_id: String,
    pub client_request_token: String,
    #[serde(default)]
    pub rotation_token: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Rotate {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub http: reqwest::Client,
}

impl Rotate {
    pub fn new(aws: &crate::aws::AwsClients) -> Self {
        Rotate {
            secrets: aws.secrets.clone(),
            http: crate::connectors::http_client(),
        }
    }
}

#[derive(Debug, Error)]
pub enum RotateError {
    #[error("secret {0} does not have rotation enabled")]
    NotEnabled(String),
    #[error("version {token} of secret {secret} has no stage for rotation")]
    UnknownToken { secret: String, token: String },
    #[error("version {token} of secret {secret} is not AWSPENDING")]
    NotPending { secret: String, token: String },
    #[error("unknown rotation step {0:?}")]
    UnknownStep(String),
    #[error("secret {0} is not an oauth2_refresh credential; only testSecret applies to it")]
    Unsupported(String),
    #[error("Secrets Manager: {0}")]
    Aws(String),
    #[error("token endpoint: {0}")]
    Vendor(String),
}

fn aws<E, R>(e: aws_sdk_secretsmanager::error::SdkError<E, R>) -> RotateError
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    RotateError::Aws(crate::aws::error_message(&e))
}

pub async fn handler(deps: &Rotate, event: LambdaEvent<RotationEvent>) -> Result<(), Error> {
    Ok(run_step(deps, &event.payload).await?)
}

pub async fn run_step(deps: &Rotate, e: &RotationEvent) -> Result<(), RotateError> {
    let meta = deps
        .secrets
        .describe_secret()
        .secret_id(&e.secret_id)
        .send()
        .await
        .map_err(aws)?;
    if meta.rotation_enabled != Some(true) {
        return Err(RotateError::NotEnabled(e.secret_id.clone()));
    }
    let stages = meta
        .version_ids_to_stages
        .as_ref()
        .and_then(|m| m.get(&e.client_request_token))
        .ok_or_else(|| RotateError::UnknownToken {
            secret: e.secret_id.clone(),
            token: e.client_request_token.clone(),
        })?;
    if stages.iter().any(|s| s == AWSCURRENT) {
        info!(step = %e.step, "version already AWSCURRENT; nothing to do");
        return Ok(());
    }
    if !stages.iter().any(|s| s == AWSPENDING) {
        return Err(RotateError::NotPending {
            secret: e.secret_id.clone(),
            token: e.client_request_token.clone(),
        });
    }
    match e.step.as_str() {
        "createSecret" => create(deps, e).await,
        // The vendor issued the new token itself: there is nothing to set on its side.
        "setSecret" => Ok(()),
        "testSecret" => test(deps, e).await,
        "finishSecret" => finish(deps, e, &meta).await,
        other => Err(RotateError::UnknownStep(other.to_owned())),
    }
}

async fn pending_value(deps: &Rotate, e: &RotationEvent) -> Option<SecretString> {
    let out = deps
        .secrets
        .get_secret_value()
        .secret_id(&e.secret_id)
        .version_id(&e.client_request_token)
        .version_stage(AWSPENDING)
        .send()
        .await
        .ok()?;
    out.secret_string.map(SecretString::from)
}

async fn create(deps: &Rotate, e: &RotationEvent) -> Result<(), RotateError> {
    if pending_value(deps, e).await.is_some() {
        info!("pending version already has a value; createSecret is a no-op");
        return Ok(());
    }
    let current = read_stage(&deps.secrets, &e.secret_id, AWSCURRENT)
        .await
        .map_err(|err| RotateError::Aws(err.to_string()))?;
    let credential = Credential::parse(&e.secret_id, &current)
        .map_err(|err| RotateError::Aws(err.to_string()))?;
    if !matches!(credential, Credential::Oauth2Refresh { .. }) {
        return Err(RotateError::Unsupported(e.secret_id.clone()));
    }
    // The same exchange the workers' refresher makes; every other field is kept.
    let next = crate::auth::exchange(&deps.http, &e.secret_id, &current)
        .await
        .map_err(|err| RotateError::Vendor(err.to_string()))?;
    deps.secrets
        .put_secret_value()
        .secret_id(&e.secret_id)
        .client_request_token(&e.client_request_token)
        .secret_string(next.to_string())
        .version_stages(AWSPENDING)
        .send()
        .await
        .map_err(aws)?;
    info!("new token stored as AWSPENDING");
    Ok(())
}

async fn test(deps: &Rotate, e: &RotationEvent) -> Result<(), RotateError> {
    let pending = pending_value(deps, e)
        .await
        .ok_or_else(|| RotateError::NotPending {
            secret: e.secret_id.clone(),
            token: e.client_request_token.clone(),
        })?;
    let credential = Credential::parse(&e.secret_id, &pending)
        .map_err(|err| RotateError::Aws(err.to_string()))?;
    let Credential::Oauth2Refresh {
        base_url,
        access_token,
        ..
    } = credential
    else {
        return Err(RotateError::Unsupported(e.secret_id.clone()));
    };
    auth_test(&deps.http, &base_url, &access_token)
        .await
        .map_err(|err| RotateError::Vendor(format!("pending token failed auth.test: {err}")))?;
    info!("pending token authenticates");
    Ok(())
}

async fn finish(
    deps: &Rotate,
    e: &RotationEvent,
    meta: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
) -> Result<(), RotateError> {
    let current_version = meta
        .version_ids_to_stages
        .as_ref()
        .and_then(|m| {
            m.iter()
                .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
        })
        .map(|(id, _)| id.clone());
    let mut req = deps
        .secrets
        .update_secret_version_stage()
        .secret_id(&e.secret_id)
        .version_stage(AWSCURRENT)
        .move_to_version_id(&e.client_request_token);
    if let Some(current) = current_version {
        req = req.remove_from_version_id(current);
    }
    req.send().await.map_err(aws)?;
    info!(version = %e.client_request_token, "version is now AWSCURRENT");
    Ok(())
}
