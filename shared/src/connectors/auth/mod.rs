//! Tokens that do not fail silently: an OAuth access token is refreshed (or, for client
//! credentials and JWT bearer, minted) before it expires (a margin) or right after the vendor
//! rejects it — and only **once** across every concurrent worker: a worker takes a short DynamoDB lease, re-reads the secret, and skips the refresh when
//! another worker already made one. Vendors with rotating single-use refresh tokens (Slack) would
//! otherwise answer the second refresh with `invalid_grant`/`invalid_refresh_token`.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use backon::Retryable;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use tracing::{info, warn};

mod grants;
pub use grants::{assertion, exchange};

use crate::reconnect::{fingerprint, Reconnect};
use crate::secrets::{Credential, SecretCache, SecretError};

/// Refresh when the token has less than this left.
pub(crate) const MARGIN: Duration = Duration::from_secs(300);
/// How long a worker may hold the refresh lease (one token call and one secret write).
pub(crate) const LEASE: Duration = Duration::from_secs(20);
/// After a refresh fails (token endpoint down, AWS error), nobody tries again for this long:
/// the lease is kept as a cooldown, so a fleet of workers cannot storm the token endpoint.
pub const COOLDOWN: Duration = Duration::from_secs(30);

/// Why a connection's credential could not be read, refreshed or minted.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The connection secret could not be read or parsed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The token endpoint refused the grant: a human must reconnect.
    #[error("re-authorization required for {secret_id}: {reason}")]
    ReauthRequired {
        /// The connection secret's id, as asked for.
        secret_id: String,
        /// The refusal, in words (the token endpoint's, or the one recorded for this credential).
        reason: String,
    },
    /// The token endpoint or AWS failed in a way a later try may not.
    #[error("token refresh for {secret_id} failed: {reason}")]
    Transient {
        /// The connection secret's id, as asked for.
        secret_id: String,
        /// What failed, in words.
        reason: String,
    },
    /// The vendor's IP allow-list refused the network the login came from: nothing to
    /// reconnect, and a later try from an allowed address succeeds.
    #[error("login for {secret_id} refused by the vendor's IP allowlist: {reason}")]
    IpRefused {
        /// The connection secret's id, as asked for.
        secret_id: String,
        /// The vendor's refusal of the login, in words.
        reason: String,
    },
    /// A refresh failed moments ago; wait this long before anyone tries again.
    #[error("token refresh for {secret_id} is cooling down after a failure: {reason}")]
    Cooldown {
        /// The connection secret's id, as asked for.
        secret_id: String,
        /// Why the refresh that started the cooldown failed.
        reason: String,
        /// How long the cooldown has left.
        retry_after: Duration,
    },
}

impl AuthError {
    pub(crate) fn transient(secret_id: &str, reason: impl Into<String>) -> Self {
        AuthError::Transient {
            secret_id: secret_id.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Reads credentials through the cache and refreshes OAuth ones under a lease.
#[derive(Clone, Debug)]
pub struct Refresher {
    /// Reads connection secrets (past the cache whenever a refresh may have happened).
    pub cache: SecretCache,
    /// Stores a refreshed credential back in its secret.
    pub sm: aws_sdk_secretsmanager::Client,
    /// Reads and writes `table`: leases, cooldowns, reconnect marks, session call counts, escrow.
    pub ddb: aws_sdk_dynamodb::Client,
    /// Holds the lease items (`lease#<secret id>`); the PacingTable.
    pub table: String,
    /// Calls the token and login endpoints.
    pub http: reqwest::Client,
    /// The key a token in escrow is encrypted under (`ESCROW_KEY_ID`); without one, a token
    /// Secrets Manager would not take is not kept (never in plain text).
    pub escrow_key: Option<EscrowKey>,
}

/// A KMS key and its client, for the escrow.
#[derive(Clone, Debug)]
pub struct EscrowKey {
    /// Encrypts and decrypts the tokens kept in escrow.
    pub kms: aws_sdk_kms::Client,
    /// The KMS key, as `ESCROW_KEY_ID` names it.
    pub key_id: String,
}

impl EscrowKey {
    /// The escrow key `ESCROW_KEY_ID` names, if the settings name one.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Option<Self> {
        s.optional("ESCROW_KEY_ID").map(|key_id| EscrowKey {
            kms: aws.kms(),
            key_id: key_id.to_owned(),
        })
    }
}

fn needs_refresh(c: &Credential, stale_token: Option<&str>, margin: Duration) -> bool {
    if !c.is_oauth() {
        return false;
    }
    let Some(token) = c.access_token() else {
        // A minted credential before its first token.
        return true;
    };
    // A short session (a policy's max age, or one a login answered) is renewed in its last
    // fifth, not 5 min early.
    let life = c
        .issued_at()
        .zip(c.expires_at())
        .and_then(|(from, to)| (to - from).to_std().ok());
    let margin = match life.or(crate::connectors::declared::session_policy(c)
        .max_age_seconds
        .map(Duration::from_secs))
    {
        Some(age) => margin.min(age / 5),
        None => margin,
    };
    let expiring = c.expires_at().is_some_and(|at| {
        at <= Utc::now() + chrono::Duration::from_std(margin).unwrap_or_default()
    });
    expiring || stale_token.is_some_and(|s| s == token.expose_secret())
}

impl Refresher {
    /// The connection's credential, refreshed first when it is about to expire, or when
    /// `stale_token` (the access token a vendor just rejected) is still the one stored.
    pub async fn credential(
        &self,
        secret_id: &str,
        stale_token: Option<&str>,
    ) -> Result<Credential, AuthError> {
        self.ensure(secret_id, stale_token, MARGIN).await
    }

    /// The scheduled refresher: refresh an OAuth token that expires within `within` (under the
    /// same lease as the workers). `Ok(true)` when a new token was stored.
    pub(crate) async fn refresh_expiring(
        &self,
        secret_id: &str,
        within: Duration,
    ) -> Result<bool, AuthError> {
        let token = |c: &Credential| c.access_token().map(|t| t.expose_secret().to_owned());
        let before = token(
            &self
                .cache
                .reload(secret_id)
                .await
                .and_then(|v| Credential::parse(secret_id, &v))?,
        );
        let after = token(&self.ensure(secret_id, None, within).await?);
        Ok(before != after)
    }

    async fn ensure(
        &self,
        secret_id: &str,
        stale_token: Option<&str>,
        margin: Duration,
    ) -> Result<Credential, AuthError> {
        let c = self.cache.credential(secret_id).await?;
        if !needs_refresh(&c, stale_token, margin) {
            return Ok(c);
        }
        let started = std::time::Instant::now();
        let owner = uuid::Uuid::new_v4().to_string();
        loop {
            // Someone else may have refreshed already: read past the cache.
            let current = self.cache.reload(secret_id).await?;
            let c = Credential::parse(secret_id, &current)?;
            if !needs_refresh(&c, stale_token, margin) {
                return Ok(c);
            }
            // This very credential was refused before: a human must reconnect; do not ask again.
            if let Some(reason) = self.refused(secret_id, &current).await {
                return Err(AuthError::ReauthRequired {
                    secret_id: secret_id.to_owned(),
                    reason,
                });
            }
            if self.take_lease(secret_id, &owner).await? {
                // A token the vendor issued but an earlier holder could not store goes in first.
                self.recover_escrow(secret_id).await;
                // Re-read under the lease: a refresh may have landed between the check and now.
                let current = self.cache.reload(secret_id).await?;
                let c = Credential::parse(secret_id, &current)?;
                // And the mark: a worker that refused it may have released the lease since our
                // first look; asking the token endpoint again would be a second refusal.
                let result = if !needs_refresh(&c, stale_token, margin) {
                    Ok(c)
                } else if let Some(reason) = self.refused(secret_id, &current).await {
                    Err(AuthError::ReauthRequired {
                        secret_id: secret_id.to_owned(),
                        reason,
                    })
                } else {
                    self.refresh(secret_id, &current).await
                };
                if let Err(AuthError::ReauthRequired { reason, .. }) = &result {
                    // Marked before the lease is released, so no waiting worker asks again.
                    let marks = self.marks();
                    if let Err(e) = marks.mark(secret_id, &fingerprint(&current), reason).await {
                        warn!(secret_id, error = %e, "could not mark the connection as needing reconnect");
                    }
                }
                if let Err(
                    AuthError::Transient { reason, .. } | AuthError::IpRefused { reason, .. },
                ) = &result
                {
                    warn!(secret_id, %reason, "token refresh failed; cooling down");
                    self.cool_down(secret_id, &owner, reason).await;
                    return Err(AuthError::Cooldown {
                        secret_id: secret_id.to_owned(),
                        reason: reason.clone(),
                        retry_after: COOLDOWN,
                    });
                }
                self.release_lease(secret_id, &owner).await;
                return result;
            }
            if let Some((reason, retry_after)) = self.cooling_down(secret_id).await {
                return Err(AuthError::Cooldown {
                    secret_id: secret_id.to_owned(),
                    reason,
                    retry_after,
                });
            }
            if started.elapsed() > LEASE + Duration::from_secs(5) {
                return Err(AuthError::transient(
                    secret_id,
                    "another worker's refresh did not finish in time",
                ));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn refresh(
        &self,
        secret_id: &str,
        current: &SecretString,
    ) -> Result<Credential, AuthError> {
        let next = exchange(&self.http, secret_id, current).await?;
        // The vendor has replaced the token (a single-use refresh token is spent): losing the
        // new one now would need a human to reconnect. Retried, then kept in escrow.
        let value = SecretString::from(next.to_string());
        let stored = (|| self.store(secret_id, &value))
            .retry(
                backon::ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(1))
                    .with_max_times(3),
            )
            .await;
        if let Err(reason) = stored {
            self.escrow(secret_id, &value).await;
            return Err(AuthError::transient(
                secret_id,
                format!("the new token could not be stored ({reason}); it is kept in escrow and stored by the next refresh"),
            ));
        }
        info!(secret_id, "access token refreshed");
        let value = self.cache.reload(secret_id).await?;
        Ok(Credential::parse(secret_id, &value)?)
    }

    async fn store(&self, secret_id: &str, value: &SecretString) -> Result<(), String> {
        self.sm
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(value.expose_secret())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::aws::error_message(&e))
    }

    /// Keep a token the vendor issued but Secrets Manager would not take, encrypted under the
    /// escrow key (bound to the secret's id), in the pacing table until the next lease holder
    /// stores it.
    async fn escrow(&self, secret_id: &str, value: &SecretString) {
        let Some(key) = &self.escrow_key else {
            warn!(secret_id, "no ESCROW_KEY_ID: the new token cannot be kept; the connection will need reconnecting");
            return;
        };
        let sealed = key
            .kms
            .encrypt()
            .key_id(&key.key_id)
            .encryption_context("secret_id", secret_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(
                value.expose_secret().as_bytes(),
            ))
            .send()
            .await;
        let sealed = match sealed.map(|o| o.ciphertext_blob) {
            Ok(Some(blob)) => blob,
            Ok(None) | Err(_) => {
                warn!(secret_id, "the new token could not be encrypted for escrow; the connection will need reconnecting");
                return;
            }
        };
        let out = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(format!("escrow#{secret_id}")))
            .item("sealed", AttributeValue::B(sealed.into_inner().into()))
            .item(
                "expiration",
                AttributeValue::N((Utc::now().timestamp() + 7 * 86_400).to_string()),
            )
            .send()
            .await;
        match out {
            Ok(_) => warn!(
                secret_id,
                "new token kept in escrow (encrypted) until it can be stored"
            ),
            Err(e) => {
                warn!(secret_id, error = %crate::aws::error_message(&e), "new token could be neither stored nor kept; the connection will need reconnecting")
            }
        }
    }

    /// Store an escrowed token (under the lease), then drop the escrow.
    async fn recover_escrow(&self, secret_id: &str) {
        let Some(key) = &self.escrow_key else { return };
        let id = AttributeValue::S(format!("escrow#{secret_id}"));
        let Ok(out) = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("id", id.clone())
            .consistent_read(true)
            .send()
            .await
        else {
            return;
        };
        let Some(sealed) = out
            .item
            .as_ref()
            .and_then(|i| i.get("sealed")?.as_b().ok().cloned())
        else {
            return;
        };
        let opened = key
            .kms
            .decrypt()
            .key_id(&key.key_id)
            .encryption_context("secret_id", secret_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(sealed.into_inner()))
            .send()
            .await;
        let Some(value) = opened
            .ok()
            .and_then(|o| o.plaintext)
            .and_then(|p| String::from_utf8(p.into_inner()).ok())
        else {
            warn!(
                secret_id,
                "the escrowed token could not be decrypted; it stays until it expires"
            );
            return;
        };
        if let Err(e) = self.store(secret_id, &SecretString::from(value)).await {
            warn!(secret_id, error = %e, "escrowed token still cannot be stored");
            return;
        }
        info!(secret_id, "escrowed token stored");
        let _ = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("id", id)
            .send()
            .await;
    }

    /// Run `f` holding the connection's refresh lease (waiting out another holder), so no
    /// worker refreshes in between: the rotation's finishSecret compares and moves labels so.
    pub(crate) async fn under_lease<T, F, Fut>(&self, secret_id: &str, f: F) -> Result<T, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let owner = uuid::Uuid::new_v4().to_string();
        let started = std::time::Instant::now();
        while !self.take_lease(secret_id, &owner).await? {
            if started.elapsed() > LEASE + Duration::from_secs(5) {
                return Err(AuthError::transient(
                    secret_id,
                    "the refresh lease stayed taken; try again",
                ));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let out = f().await;
        self.release_lease(secret_id, &owner).await;
        Ok(out)
    }

    async fn take_lease(&self, secret_id: &str, owner: &str) -> Result<bool, AuthError> {
        crate::lease::take(
            &self.ddb,
            &self.table,
            &format!("lease#{secret_id}"),
            owner,
            LEASE,
        )
        .await
        .map_err(|e| AuthError::transient(secret_id, e.to_string()))
    }

    /// Reserve one call on the session of the token with this fingerprint: the call's ordinal.
    pub(crate) async fn count_call(
        &self,
        secret_id: &str,
        token_fingerprint: &str,
    ) -> Result<u64, AuthError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(
                "id",
                AttributeValue::S(format!("session#{secret_id}#{token_fingerprint}")),
            )
            .update_expression("ADD calls :one SET expiration = :exp")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":exp",
                AttributeValue::N((Utc::now().timestamp() + 86_400).to_string()),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| AuthError::transient(secret_id, crate::aws::error_message(&e)))?;
        Ok(out
            .attributes
            .and_then(|a| a.get("calls").and_then(|v| v.as_n().ok()?.parse().ok()))
            .unwrap_or(u64::MAX))
    }

    fn marks(&self) -> Reconnect {
        Reconnect::new(self.ddb.clone(), &self.table)
    }

    /// The reason, when this stored credential is marked as refused.
    async fn refused(&self, secret_id: &str, current: &SecretString) -> Option<String> {
        self.marks()
            .pending(secret_id, &fingerprint(current))
            .await
            .ok()
            .flatten()
    }

    /// Keep the lease past a failed refresh, marked as a cooldown with the failure's reason.
    async fn cool_down(&self, secret_id: &str, owner: &str, reason: &str) {
        let until = Utc::now().timestamp_millis() + COOLDOWN.as_millis() as i64;
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(format!("lease#{secret_id}")))
            .update_expression("SET lease_until = :until, cooldown = :why")
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .expression_attribute_values(":why", AttributeValue::S(reason.to_owned()))
            .send()
            .await;
        if let Err(e) = out {
            warn!(secret_id, error = %crate::aws::error_message(&e), "could not record the refresh cooldown");
        }
    }

    /// The failure's reason and the time left, while a cooldown holds the lease.
    async fn cooling_down(&self, secret_id: &str) -> Option<(String, Duration)> {
        let item = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(format!("lease#{secret_id}")))
            .consistent_read(true)
            .send()
            .await
            .ok()?
            .item?;
        let reason = item.get("cooldown")?.as_s().ok()?.clone();
        let until: i64 = item.get("lease_until")?.as_n().ok()?.parse().ok()?;
        let left = until - Utc::now().timestamp_millis();
        (left > 0).then(|| (reason, Duration::from_millis(left as u64)))
    }

    async fn release_lease(&self, secret_id: &str, owner: &str) {
        crate::lease::release(&self.ddb, &self.table, &format!("lease#{secret_id}"), owner).await;
    }
}
