//! rotate: the Secrets Manager rotation function, and the scheduled token refresher.
//!
//! Rotation: Secrets Manager calls it four times per rotation (`createSecret`, `setSecret`,
//! `testSecret`, `finishSecret`); every step is idempotent and guarded as AWS's own templates
//! are: rotation enabled, token known, already current → no-op. Per credential type:
//! - `oauth2_refresh` → `createSecret` exchanges the refresh token (Slack token rotation returns
//!   a new access **and** refresh token); `oauth2_client_credentials` and `oauth2_jwt_bearer` →
//!   it mints a new access token;
//! - static tokens (`api_token`, `bearer_token`, webhook URLs) cannot be minted by us: the
//!   pending version is the current value, and `testSecret` proves it still authenticates — a
//!   failure fails the rotation, counts an `AuthFailures` metric and so raises the alarm.
//!
//! `testSecret` runs the connection's own probe (the canary's) with the pending credential.
//!
//! Scheduled refresh: rotation schedules cannot run more often than every 4 hours, and tokens
//! can live shorter than that; an EventBridge schedule (`{"refresh_within_minutes": N}`) has
//! every configured OAuth connection refreshed when its token expires within N minutes, under
//! the same lease the workers use.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tracing::{info, warn};

use crate::connectors::auth::Refresher;
use crate::secrets::{read_stage, Credential, SecretCache, AWSCURRENT, AWSPENDING};
use crate::settings::Settings;

/// The rotation event, including `RotationToken` (absent from the community event type).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    /// The step to run: `createSecret`, `setSecret`, `testSecret` or `finishSecret`.
    pub step: String,
    /// The secret being rotated, by ARN or name.
    pub secret_id: String,
    /// The id of the secret version this rotation creates and stages `AWSPENDING`.
    pub client_request_token: String,
    /// The `RotationToken` Secrets Manager sends; `None` when absent (the steps do not read it).
    #[serde(default)]
    pub rotation_token: Option<String>,
}

/// What the rotate function needs: Secrets Manager, an HTTP client, settings and the refresher.
#[derive(Clone, Debug)]
pub struct Rotate {
    /// The Secrets Manager client the steps read and stage versions with.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The HTTP client `testSecret`'s probe uses.
    pub http: reqwest::Client,
    /// Which connection each secret is (`<CONNECTOR>_SECRET_ID`), for `testSecret`'s probe.
    pub settings: Settings,
    /// The scheduled refresher (needs `PACING_TABLE` for its lease).
    pub refresher: Option<Refresher>,
}

impl Rotate {
    /// Build from the shared AWS clients and settings; no refresher when `PACING_TABLE` is unset.
    pub fn from_settings(aws: &crate::aws::AwsClients, settings: &Settings) -> Self {
        let http = crate::connectors::http_client();
        Rotate {
            secrets: aws.secrets.clone(),
            http: http.clone(),
            settings: settings.clone(),
            refresher: settings.pacing_table().ok().map(|table| Refresher {
                cache: SecretCache::new(aws.secrets.clone(), crate::secrets::CACHE_TTL),
                sm: aws.secrets.clone(),
                ddb: aws.ddb.clone(),
                table: table.to_owned(),
                http,
                escrow_key: crate::connectors::auth::EscrowKey::from_settings(aws, settings),
            }),
        }
    }

    /// The connection a secret belongs to (rotation events name it by ARN or by name).
    fn connection_of(&self, secret_id: &str) -> Option<&'static str> {
        crate::vendors::configured(&self.settings)
            .into_iter()
            .find(|c| {
                crate::vendors::secret_id(&self.settings, c)
                    .is_some_and(|id| id == secret_id || id.ends_with(&format!(":{secret_id}")))
            })
    }
}

/// The scheduled refresher's input (the schedule's `Input`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct RefreshRequest {
    pub refresh_within_minutes: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Refreshed {
    pub connection: String,
    /// `refreshed`, `fresh`, `not_oauth` or `failed: <reason>`.
    pub outcome: String,
}

/// Why a rotation step failed.
#[derive(Debug, Error)]
pub enum RotateError {
    /// The secret does not have rotation enabled; holds its id.
    #[error("secret {0} does not have rotation enabled")]
    NotEnabled(String),
    /// The secret has no version with the event's token.
    #[error("version {token} of secret {secret} has no stage for rotation")]
    UnknownToken {
        /// The secret, as the event named it.
        secret: String,
        /// The version id (`ClientRequestToken`) the event named.
        token: String,
    },
    /// The version is not staged `AWSPENDING`, or holds no pending value at `testSecret`.
    #[error("version {token} of secret {secret} is not AWSPENDING")]
    NotPending {
        /// The secret, as the event named it.
        secret: String,
        /// The version id (`ClientRequestToken`) the event named.
        token: String,
    },
    /// The event names a step other than Secrets Manager's four; holds it.
    #[error("unknown rotation step {0:?}")]
    UnknownStep(String),
    /// A secret no `<CONNECTOR>_SECRET_ID` setting names; holds its id. No step returns it at
    /// present: the steps keep or skip such secrets.
    #[error(
        "secret {0} is not a connection this function knows (no <CONNECTOR>_SECRET_ID names it)"
    )]
    UnknownConnection(String),
    /// At `testSecret`: no connector could be built on the pending credential, or its probe failed.
    #[error("pending credential of {secret} does not authenticate: {reason}")]
    TestFailed {
        /// The secret, as the event named it.
        secret: String,
        /// The connector's or the probe's error message.
        reason: String,
    },
    /// A Secrets Manager call failed, a stored credential could not be parsed, or OAuth
    /// rotation found `PACING_TABLE` unset; holds the message.
    #[error("Secrets Manager: {0}")]
    Aws(String),
    /// Refreshing or minting the token failed, or the refresh lease around `finishSecret` did.
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

/// A rotation step (`Step` in the event) or a scheduled refresh (`refresh_within_minutes`).
pub async fn handler(deps: &Rotate, event: LambdaEvent<Value>) -> Result<Value, Error> {
    if event.payload.get("Step").is_some() {
        let e: RotationEvent = serde_json::from_value(event.payload)?;
        run_step(deps, &e).await?;
        return Ok(Value::Null);
    }
    let request: RefreshRequest = serde_json::from_value(event.payload).map_err(|e| {
        format!("neither a rotation step nor a refresh request ({{\"refresh_within_minutes\": N}}): {e}")
    })?;
    let report = refresh_due(
        deps,
        Duration::from_secs(request.refresh_within_minutes * 60),
    )
    .await;
    let failed: Vec<&Refreshed> = report
        .iter()
        .filter(|r| r.outcome.starts_with("failed"))
        .collect();
    if !failed.is_empty() {
        // An error makes the failure visible (Lambda Errors; AuthFailures was counted).
        return Err(format!(
            "{} connection(s) could not be refreshed: {failed:?}",
            failed.len()
        )
        .into());
    }
    Ok(serde_json::to_value(report)?)
}

/// Refresh every configured OAuth connection whose token expires within `within`.
pub(crate) async fn refresh_due(deps: &Rotate, within: Duration) -> Vec<Refreshed> {
    let mut out = Vec::new();
    let Some(refresher) = &deps.refresher else {
        warn!("PACING_TABLE is not set: the scheduled refresher has no lease table");
        return out;
    };
    for connection in crate::vendors::configured(&deps.settings) {
        let secret_id = crate::vendors::secret_id(&deps.settings, connection).unwrap_or_default();
        let secret_id = secret_id.as_str();
        let outcome = match refresher.cache.credential(secret_id).await {
            Ok(c) if c.is_oauth() => match refresher.refresh_expiring(secret_id, within).await {
                Ok(true) => "refreshed".to_owned(),
                Ok(false) => "fresh".to_owned(),
                Err(e) => {
                    crate::metrics::count(crate::metrics::AUTH_FAILURES, "connector", connection);
                    format!("failed: {e}")
                }
            },
            Ok(_) => "not_oauth".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        info!(connection, %outcome, "scheduled refresh");
        out.push(Refreshed {
            connection: connection.to_owned(),
            outcome,
        });
    }
    out
}

/// Run one rotation step once rotation is found enabled and the version pending; a version
/// already `AWSCURRENT` makes it a no-op.
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
    use secrecy::ExposeSecret;
    let current = read_stage(&deps.secrets, &e.secret_id, AWSCURRENT)
        .await
        .map_err(|err| RotateError::Aws(err.to_string()))?;
    let next = if deps.connection_of(&e.secret_id).is_none() {
        // A connection this deployment does not use (not in `Connectors`): its placeholder is
        // kept as it is, so a first deploy's immediate rotation succeeds instead of failing.
        info!("not a configured connection; its value is kept as it is");
        current.expose_secret().to_owned()
    } else {
        let credential = Credential::parse(&e.secret_id, &current)
            .map_err(|err| RotateError::Aws(err.to_string()))?;
        match credential {
            // Refresh or mint under the workers' lease, stored as AWSCURRENT at once (as a
            // worker's refresh is): a spent single-use refresh token never leaves a new token
            // only in a pending version, and no worker refreshes with the spent one meanwhile.
            c if c.is_oauth() => {
                let Some(refresher) = &deps.refresher else {
                    return Err(RotateError::Aws(
                        "PACING_TABLE is not set: OAuth rotation refreshes under the workers' lease".into(),
                    ));
                };
                let stale = c.access_token().map(|t| t.expose_secret().to_owned());
                refresher
                    .credential(&e.secret_id, stale.as_deref())
                    .await
                    .map_err(|err| RotateError::Vendor(err.to_string()))?;
                read_stage(&deps.secrets, &e.secret_id, AWSCURRENT)
                    .await
                    .map_err(|err| RotateError::Aws(err.to_string()))?
                    .expose_secret()
                    .to_owned()
            }
            // A static token only the vendor's admin can re-issue: testSecret proves it works.
            _ => current.expose_secret().to_owned(),
        }
    };
    deps.secrets
        .put_secret_value()
        .secret_id(&e.secret_id)
        .client_request_token(&e.client_request_token)
        .secret_string(next)
        .version_stages(AWSPENDING)
        .send()
        .await
        .map_err(aws)?;
    info!("pending version stored as AWSPENDING");
    Ok(())
}

async fn test(deps: &Rotate, e: &RotationEvent) -> Result<(), RotateError> {
    let pending = pending_value(deps, e)
        .await
        .ok_or_else(|| RotateError::NotPending {
            secret: e.secret_id.clone(),
            token: e.client_request_token.clone(),
        })?;
    let Some(connection) = deps.connection_of(&e.secret_id) else {
        info!("not a configured connection; nothing to test");
        return Ok(());
    };
    let credential = Credential::parse(&e.secret_id, &pending)
        .map_err(|err| RotateError::Aws(err.to_string()))?;
    let failed = |reason: String| {
        crate::metrics::count(crate::metrics::AUTH_FAILURES, "connector", connection);
        RotateError::TestFailed {
            secret: e.secret_id.clone(),
            reason,
        }
    };
    let connector = crate::vendors::build(connection, deps.http.clone(), credential)
        .map_err(|err| failed(err.to_string()))?;
    connector
        .probe()
        .await
        .map_err(|err| failed(err.to_string()))?;
    info!("pending token authenticates");
    Ok(())
}

/// Move AWSCURRENT to the pending version — unless a newer value was stored since createSecret
/// (a worker's refresh, an admin's new token): that one stays current, and only the pending
/// label is dropped. Compared and moved under the refresh lease, so nothing lands in between.
async fn finish(
    deps: &Rotate,
    e: &RotationEvent,
    meta: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
) -> Result<(), RotateError> {
    match &deps.refresher {
        Some(r) => r
            .under_lease(&e.secret_id, || finish_fenced(deps, e, meta))
            .await
            .map_err(|err| RotateError::Vendor(err.to_string()))?,
        None => finish_fenced(deps, e, meta).await,
    }
}

async fn finish_fenced(
    deps: &Rotate,
    e: &RotationEvent,
    meta: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
) -> Result<(), RotateError> {
    use secrecy::ExposeSecret;
    let current = read_stage(&deps.secrets, &e.secret_id, AWSCURRENT)
        .await
        .map_err(|err| RotateError::Aws(err.to_string()))?;
    let pending = pending_value(deps, e).await;
    if pending
        .as_ref()
        .is_some_and(|p| p.expose_secret() != current.expose_secret())
    {
        deps.secrets
            .update_secret_version_stage()
            .secret_id(&e.secret_id)
            .version_stage(AWSPENDING)
            .remove_from_version_id(&e.client_request_token)
            .send()
            .await
            .map_err(aws)?;
        warn!(version = %e.client_request_token, "a newer value was stored during the rotation; it stays AWSCURRENT");
        return Ok(());
    }
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
