//! Credentials from Secrets Manager, read through a per-process cache with a TTL.
//!
//! Secret values live in `secrecy` types: they print as `[REDACTED]` and are exposed only where
//! a request is signed or sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;
use tokio::sync::Mutex;

/// The stage every read names explicitly (the emulator ignores stage moves on stage-less reads).
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The stage a rotation stores its new version under until the version becomes AWSCURRENT.
pub const AWSPENDING: &str = "AWSPENDING";

/// Why a secret could not be read or parsed; messages name the secret, never its value.
#[derive(Debug, Error)]
pub enum SecretError {
    /// Secrets Manager refused or failed the read.
    #[error("Secrets Manager failed reading {secret_id}: {message}")]
    Read {
        /// The secret's id or ARN, as asked for.
        secret_id: String,
        /// The AWS error's message.
        message: String,
    },
    /// The stage read has no string value (e.g. a binary secret).
    #[error("secret {secret_id} has no string value")]
    Empty {
        /// The secret's id or ARN, as asked for.
        secret_id: String,
    },
    // serde_json's message names the field and position, never the value.
    /// The value is not JSON of the expected shape (a credential, or intake signing secrets).
    #[error("secret {secret_id} is not a valid credential: {message}")]
    Invalid {
        /// The secret's id or ARN, as asked for.
        secret_id: String,
        /// What is wrong (a field name, a line and column), without the secret's values.
        message: String,
    },
}

/// One connection's credential, as stored (JSON, tagged by `type`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credential {
    /// Zendesk / Jira: `{email}/token:{api_token}` basic auth.
    ApiToken {
        /// The vendor's site URL, e.g. `https://SITE.atlassian.net`.
        base_url: String,
        /// The integration user's email: the basic-auth user (Zendesk appends `/token`).
        email: String,
        /// The user's API token, sent as the basic-auth password.
        api_token: SecretString,
    },
    /// A long-lived bearer token (Slack bot token without rotation).
    BearerToken {
        /// The API's root URL, e.g. `https://api.hubapi.com`.
        base_url: String,
        /// The token, sent as `Authorization: Bearer …`.
        token: SecretString,
    },
    /// OAuth 2.0 with a refresh token (Slack token rotation, HubSpot, …).
    Oauth2Refresh {
        /// The API's root URL; refreshes go to `{base_url}/api/oauth.v2.access` (Slack) unless
        /// the secret also holds a `token_url`.
        base_url: String,
        /// The current access token, sent as a bearer token; replaced by each refresh.
        access_token: SecretString,
        /// Exchanged for a new access token; replaced when the vendor answers a new one.
        refresh_token: SecretString,
        /// The OAuth app's client id, sent with each refresh.
        client_id: String,
        /// The OAuth app's client secret, sent with each refresh.
        client_secret: SecretString,
        /// When `access_token` expires; `None` when unknown, and then it is not refreshed ahead
        /// of its expiry.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// OAuth 2.0 client credentials: switchyard mints its own access tokens (`token_url`) and
    /// stores the current one here; `session_seconds` is the token's life when the answer
    /// has no `expires_in` (Salesforce: the org's session timeout).
    Oauth2ClientCredentials {
        /// The API's root URL; replaced by the `instance_url` a token answer names (Salesforce).
        base_url: String,
        /// The token endpoint access tokens are minted from.
        token_url: String,
        /// The client's id, sent with each token request.
        client_id: String,
        /// The client's secret, sent with each token request.
        client_secret: SecretString,
        /// The `scope` asked for in each token request; `None` asks for none.
        #[serde(default)]
        scope: Option<String>,
        /// The last minted access token; `None` until the first is minted.
        #[serde(default)]
        access_token: Option<SecretString>,
        /// When `access_token` expires; written with each minted token.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
        /// The vendor's session limits for minted tokens; none by default.
        #[serde(default)]
        session: SessionPolicy,
    },
    /// OAuth 2.0 JWT bearer (RFC 7523; Salesforce server-to-server): an RS256 assertion signed
    /// with `private_key` (PEM) for `subject` (the integration user), minted like client
    /// credentials.
    Oauth2JwtBearer {
        /// The API's root URL; replaced by the `instance_url` a token answer names (Salesforce).
        base_url: String,
        /// The token endpoint the signed assertion is posted to.
        token_url: String,
        /// The connected app's client id (consumer key): the assertion's `iss`.
        client_id: String,
        /// The integration user's username: the assertion's `sub`.
        subject: String,
        /// The login host, e.g. `https://login.salesforce.com`: the assertion's `aud`.
        audience: String,
        /// The RSA private key, in PEM, that signs the assertion.
        private_key: SecretString,
        /// The last minted access token; `None` until the first is minted.
        #[serde(default)]
        access_token: Option<SecretString>,
        /// When `access_token` expires; written with each minted token.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
        /// The vendor's session limits for minted tokens; none by default.
        #[serde(default)]
        session: SessionPolicy,
    },
    /// A described connector's API key (`auth.kind = "api_key"`: a header or query parameter).
    ApiKey {
        /// The API's root URL; empty (the default) uses the description's `base_url`.
        #[serde(default)]
        base_url: String,
        /// The key, sent in the header or query parameter the description's `auth` names.
        key: SecretString,
    },
    /// HTTP basic auth for a described connector.
    Basic {
        /// The API's root URL; empty (the default) uses the description's `base_url`.
        #[serde(default)]
        base_url: String,
        /// The user name sent with HTTP basic auth.
        username: String,
        /// The password sent with HTTP basic auth.
        password: SecretString,
    },
    /// A described connector that logs in for a session (`auth.kind = "session_login"`): the
    /// login's fields (`username`, `password`, any the description's login names) sit beside
    /// these and are read only by the login; the session token is stored here like a minted one.
    SessionLogin {
        /// The description's name.
        connector: String,
        /// The API's root URL; empty (the default) uses the description's `base_url`.
        #[serde(default)]
        base_url: String,
        /// The session token from the last login; `None` until the first login.
        #[serde(default)]
        access_token: Option<SecretString>,
        /// When the last login was sent: the session's start.
        #[serde(default)]
        issued_at: Option<DateTime<Utc>>,
        /// When the session ends: the login answer's stated life, capped by the description's
        /// `max_session_age` (1 h when neither says).
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
        /// Tighter limits than the description's, for one tenant (the lower of each applies).
        #[serde(default)]
        session: SessionPolicy,
    },
    /// A URL that is itself the secret (a Teams Workflows or incoming webhook).
    WebhookUrl {
        /// The webhook's full URL: whoever holds it can post to the channel.
        url: SecretString,
    },
    /// An HTTP endpoint we sign for (Standard Webhooks): its URL and `whsec_…` signing secret.
    SignedWebhook {
        /// The receiver's endpoint, where signed messages are posted.
        url: String,
        /// The HMAC signing key: `whsec_` followed by the key in base64.
        secret: SecretString,
    },
}

/// A vendor's session rules for minted tokens: re-authenticate before either limit is reached.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct SessionPolicy {
    /// The session's life when the token answer does not say (`expires_in`); 2 h by default.
    #[serde(default)]
    pub max_age_seconds: Option<u64>,
    /// The vendor ends a session after this many calls.
    #[serde(default)]
    pub max_calls: Option<u64>,
}

impl Credential {
    /// The `type` tag, for messages and the doctor.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ApiToken { .. } => "api_token",
            Credential::BearerToken { .. } => "bearer_token",
            Credential::Oauth2Refresh { .. } => "oauth2_refresh",
            Credential::Oauth2ClientCredentials { .. } => "oauth2_client_credentials",
            Credential::Oauth2JwtBearer { .. } => "oauth2_jwt_bearer",
            Credential::ApiKey { .. } => "api_key",
            Credential::Basic { .. } => "basic",
            Credential::SessionLogin { .. } => "session_login",
            Credential::WebhookUrl { .. } => "webhook_url",
            Credential::SignedWebhook { .. } => "signed_webhook",
        }
    }

    /// Credentials whose access token switchyard obtains itself (refresh, mint or log in).
    pub(crate) fn is_oauth(&self) -> bool {
        matches!(
            self,
            Credential::Oauth2Refresh { .. }
                | Credential::Oauth2ClientCredentials { .. }
                | Credential::Oauth2JwtBearer { .. }
                | Credential::SessionLogin { .. }
        )
    }

    /// When the current session began, where switchyard logged in itself.
    pub fn issued_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Credential::SessionLogin { issued_at, .. } => *issued_at,
            _ => None,
        }
    }

    /// The current access token of an OAuth credential (none yet for an unminted one).
    pub fn access_token(&self) -> Option<&SecretString> {
        match self {
            Credential::Oauth2Refresh { access_token, .. } => Some(access_token),
            Credential::Oauth2ClientCredentials { access_token, .. }
            | Credential::Oauth2JwtBearer { access_token, .. }
            | Credential::SessionLogin { access_token, .. } => access_token.as_ref(),
            _ => None,
        }
    }

    /// When the stored access token expires; `None` when not stored, or for a static credential.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Credential::Oauth2Refresh { expires_at, .. }
            | Credential::Oauth2ClientCredentials { expires_at, .. }
            | Credential::Oauth2JwtBearer { expires_at, .. }
            | Credential::SessionLogin { expires_at, .. } => *expires_at,
            _ => None,
        }
    }

    /// The session limits the secret itself states (a described connector's description may
    /// state tighter ones: `connectors::declared::session_policy` combines both).
    pub(crate) fn stored_session(&self) -> SessionPolicy {
        match self {
            Credential::Oauth2ClientCredentials { session, .. }
            | Credential::Oauth2JwtBearer { session, .. }
            | Credential::SessionLogin { session, .. } => *session,
            _ => SessionPolicy::default(),
        }
    }

    /// The API's base URL; empty for a secret webhook URL (it is not to be shown).
    pub fn base_url(&self) -> &str {
        match self {
            Credential::ApiToken { base_url, .. }
            | Credential::BearerToken { base_url, .. }
            | Credential::Oauth2Refresh { base_url, .. }
            | Credential::Oauth2ClientCredentials { base_url, .. }
            | Credential::Oauth2JwtBearer { base_url, .. }
            | Credential::ApiKey { base_url, .. }
            | Credential::Basic { base_url, .. }
            | Credential::SessionLogin { base_url, .. } => base_url.trim_end_matches('/'),
            Credential::SignedWebhook { url, .. } => url,
            Credential::WebhookUrl { .. } => "",
        }
    }

    /// Parse a stored credential's JSON; on failure, `Invalid` says what is wrong without the
    /// secret's values.
    pub fn parse(secret_id: &str, value: &SecretString) -> Result<Self, SecretError> {
        serde_json::from_str(value.expose_secret()).map_err(|e| SecretError::Invalid {
            secret_id: secret_id.to_owned(),
            message: shape_error(&e),
        })
    }
}

/// A secret's JSON error without its values: serde's "invalid type: string \"…\"" and
/// "unknown variant `…`" quote what they found, which here is a credential. Missing and unknown
/// field names are keys, and say what to fix.
pub(crate) fn shape_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let what = if msg.starts_with("missing field") || msg.starts_with("unknown field") {
        msg.split(" at line ").next().unwrap_or_default().to_owned()
    } else {
        match e.classify() {
            serde_json::error::Category::Data => {
                "a value has the wrong type (e.g. a string where a list of strings is expected)"
                    .to_owned()
            }
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON".to_owned()
            }
            serde_json::error::Category::Io => "unreadable".to_owned(),
        }
    };
    // Tagged enums are read from a buffer: serde then knows no position (line 0).
    match e.line() {
        0 => what,
        line => format!("{what} (line {line}, column {})", e.column()),
    }
}

/// How long a function trusts a cached secret before reading it again (a rotation reaches
/// every warm function within this time; auth failures force a reload sooner).
pub const CACHE_TTL: Duration = Duration::from_secs(300);

/// Intake signing secrets: several active per source, so one can be rotated without downtime.
pub(crate) type SigningSecrets = HashMap<String, Vec<SecretString>>;

/// Secret values and parsed signing secrets, cached per process; clones share one cache.
#[derive(Clone)]
pub struct SecretCache {
    client: aws_sdk_secretsmanager::Client,
    ttl: Duration,
    entries: Arc<Mutex<HashMap<String, (Instant, SecretString)>>>,
    /// Signing secrets as parsed, with the value they were parsed from: intake reads them on
    /// every request and parses them again only when the value changed.
    signing: Arc<Mutex<HashMap<String, ParsedSigning>>>,
}

/// Signing secrets parsed, and the secret value they came from.
type ParsedSigning = (SecretString, Arc<SigningSecrets>);

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SecretCache {
    /// An empty cache reading through `client`, trusting each value for `ttl` (see [`CACHE_TTL`]).
    pub fn new(client: aws_sdk_secretsmanager::Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            entries: Arc::default(),
            signing: Arc::default(),
        }
    }

    /// The AWSCURRENT value, from the cache while it is fresh.
    pub async fn get(&self, secret_id: &str) -> Result<SecretString, SecretError> {
        if let Some((at, value)) = self.entries.lock().await.get(secret_id) {
            if at.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        self.reload(secret_id).await
    }

    /// Read past the cache (after an auth failure, or a rotation).
    pub async fn reload(&self, secret_id: &str) -> Result<SecretString, SecretError> {
        let value = read_stage(&self.client, secret_id, AWSCURRENT).await?;
        self.entries
            .lock()
            .await
            .insert(secret_id.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }

    /// The secret's AWSCURRENT value (cached, as [`Self::get`] reads it) parsed as a credential.
    pub async fn credential(&self, secret_id: &str) -> Result<Credential, SecretError> {
        Credential::parse(secret_id, &self.get(secret_id).await?)
    }

    pub(crate) async fn signing_secrets(
        &self,
        secret_id: &str,
    ) -> Result<Arc<SigningSecrets>, SecretError> {
        let value = self.get(secret_id).await?;
        let mut signing = self.signing.lock().await;
        if let Some((from, parsed)) = signing.get(secret_id) {
            if from.expose_secret() == value.expose_secret() {
                return Ok(parsed.clone());
            }
        }
        let parsed = Arc::new(parse_signing(secret_id, &value)?);
        signing.insert(secret_id.to_owned(), (value, parsed.clone()));
        Ok(parsed)
    }
}

/// The intake secret's lists, without entries that cannot sign anything (empty, whitespace, a
/// bare `whsec_`): each is logged by source and position, never used. A source left with no
/// entry refuses every request, as an unconfigured one does.
pub fn parse_signing(secret_id: &str, value: &SecretString) -> Result<SigningSecrets, SecretError> {
    let mut parsed = read_signing(value).map_err(|e| SecretError::Invalid {
        secret_id: secret_id.to_owned(),
        message: shape_error(&e),
    })?;
    for (source, list) in parsed.iter_mut() {
        for (position, _) in unusable_entries(list) {
            tracing::warn!(secret_id, %source, position, "signing secret entry is empty or blank; it is ignored (anyone could sign with it)");
        }
        list.retain(|s| is_usable(s.expose_secret()));
    }
    Ok(parsed)
}

/// The intake secret as stored: each key holds a list of values, or one value (what
/// CloudFormation's `GenerateSecretString` writes under `GenerateStringKey`).
pub(crate) fn read_signing(value: &SecretString) -> Result<SigningSecrets, serde_json::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(SecretString),
        Many(Vec<SecretString>),
    }
    let lists: HashMap<String, OneOrMany> = serde_json::from_str(value.expose_secret())?;
    Ok(lists
        .into_iter()
        .map(|(k, v)| match v {
            OneOrMany::One(s) => (k, vec![s]),
            OneOrMany::Many(l) => (k, l),
        })
        .collect())
}

/// The entries of one list that cannot sign anything, with their positions.
pub(crate) fn unusable_entries(list: &[SecretString]) -> Vec<(usize, &SecretString)> {
    list.iter()
        .enumerate()
        .filter(|(_, s)| !is_usable(s.expose_secret()))
        .collect()
}

/// Read one stage of a secret (always naming the stage).
pub async fn read_stage(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    stage: &str,
) -> Result<SecretString, SecretError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage(stage)
        .send()
        .await
        .map_err(|e| SecretError::Read {
            secret_id: secret_id.to_owned(),
            message: crate::aws::error_message(&e),
        })?;
    out.secret_string
        .map(SecretString::from)
        .ok_or_else(|| SecretError::Empty {
            secret_id: secret_id.to_owned(),
        })
}

/// Whether a configured secret can sign anything: an empty or whitespace value, or a bare
/// prefix such as `whsec_`, is a key anyone holds (HMAC takes an empty key).
pub(crate) fn is_usable(secret: &str) -> bool {
    let s = secret.trim();
    let key = s.strip_prefix("whsec_").unwrap_or(s);
    !key.trim_matches('=').is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_secret_is_described_without_its_values() {
        // A signing secret stored as a string where a list belongs, a credential with a wrong
        // type: serde's own message would quote the value.
        let cases = [
            r#"{"zendesk": 12345678901234}"#,
            r#"{"type": "api_token", "base_url": "https://x", "email": ["a@b.c"], "api_token": 12345678901234}"#,
            r#"{"type": "hunter2-secret-variant"}"#,
        ];
        for text in cases {
            let value = SecretString::from(text);
            let signing = parse_signing("intake", &value).err().map(|e| e.to_string());
            let credential = Credential::parse("conn", &value)
                .err()
                .map(|e| e.to_string());
            for message in signing.into_iter().chain(credential) {
                assert!(!message.contains("12345678901234"), "{message}");
                assert!(!message.contains("hunter2"), "{message}");
            }
        }
        let e = parse_signing(
            "intake",
            &SecretString::from(r#"{"zendesk": 12345678901234}"#),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("wrong type") && e.contains("line 1"), "{e}");
        // Field names are keys, not values: they stay, to say what to fix.
        let e = Credential::parse("conn", &SecretString::from(r#"{"type": "api_token"}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field"), "{e}");
    }

    #[test]
    fn blank_signing_entries_are_dropped_and_one_value_is_a_list_of_one() {
        let value = SecretString::from(
            r#"{"zendesk": ["", "  ", "real-one"], "standard-webhooks": ["whsec_"], "salesforce_token": "generated"}"#,
        );
        let parsed = parse_signing("intake", &value).unwrap();
        let exposed = |k: &str| -> Vec<String> {
            parsed[k]
                .iter()
                .map(|s| s.expose_secret().to_owned())
                .collect()
        };
        assert_eq!(exposed("zendesk"), ["real-one"]);
        assert!(exposed("standard-webhooks").is_empty());
        assert_eq!(exposed("salesforce_token"), ["generated"]);
    }
}
