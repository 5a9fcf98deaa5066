//! A configured connection, by name: its credential read (and refreshed under the lease), and
//! the vendor's connector built over it from the registry, or a described connector's.

use secrecy::ExposeSecret;

use crate::connectors::{declared, Connector, ResolveError};
use crate::routing::PlannedAction;
use crate::secrets::{Credential, SecretCache};
use crate::settings::Settings;

/// The endpoint class an action's call falls in, when the vendor limits that class more narrowly
/// than the credential (`pacing`); a scope after `#` (a channel) splits it further. Known from the
/// action alone, so act can ask the budget before it resolves a credential.
pub(crate) fn pacing_class(action: &PlannedAction) -> Option<String> {
    (super::built_in(&action.connector)?.pacing_class)(action)
}

/// Builds connectors from their connection secrets (read through the cache).
#[derive(Clone, Debug)]
pub struct Connectors {
    /// The HTTP client every connector built here calls its vendor with.
    pub http: reqwest::Client,
    /// Where connection secrets are read from, cached.
    pub secrets: SecretCache,
    /// The settings that name each connection's secret (`<CONNECTOR>_SECRET_ID`).
    pub settings: Settings,
    /// Refreshes OAuth credentials under a lease (act); without one, they are used as stored.
    pub refresher: Option<crate::connectors::auth::Refresher>,
}

impl Connectors {
    /// Connectors without a refresher: OAuth credentials are used as stored (canary, doctor).
    pub fn new(http: reqwest::Client, secrets: SecretCache, settings: Settings) -> Self {
        Self {
            http,
            secrets,
            settings,
            refresher: None,
        }
    }

    /// Connectors whose OAuth credentials are refreshed (and minted) under the shared lease in
    /// `PACING_TABLE` — what workers that call vendors use (act, sync).
    pub(crate) fn with_refresher(
        aws: &crate::aws::AwsClients,
        s: &Settings,
    ) -> Result<Self, crate::settings::MissingSetting> {
        let secrets = SecretCache::new(aws.secrets.clone(), crate::secrets::CACHE_TTL);
        // One client (one TLS configuration, one pool) for vendor calls and token endpoints:
        // building one loads the trust roots, a few milliseconds of every cold start.
        let http = crate::connectors::http_client();
        Ok(Connectors {
            refresher: Some(crate::connectors::auth::Refresher {
                cache: secrets.clone(),
                sm: aws.secrets.clone(),
                ddb: aws.ddb.clone(),
                table: s.pacing_table()?.to_owned(),
                http: http.clone(),
                escrow_key: crate::connectors::auth::EscrowKey::from_settings(aws, s),
            }),
            ..Connectors::new(http, secrets, s.clone())
        })
    }

    /// The vendor rejected `name`'s credential: refresh it (once across all workers) if it is an
    /// OAuth one still holding the rejected token. `Ok(true)` when a retry may now succeed.
    pub(crate) async fn after_auth_failure(&self, name: &str) -> Result<bool, ResolveError> {
        let (Some(refresher), Some(secret_id)) =
            (&self.refresher, super::secret_id(&self.settings, name))
        else {
            return Ok(false);
        };
        let secret_id = secret_id.as_str();
        let current = self.secrets.credential(secret_id).await?;
        let Some(access_token) = current.access_token() else {
            return Ok(false);
        };
        let stale = access_token.expose_secret().to_owned();
        refresher.credential(secret_id, Some(&stale)).await?;
        Ok(true)
    }

    /// For a vendor that ends a session after N calls (`session.max_calls`): reserve this call
    /// on the current token's session and return the connector built on **that** token;
    /// re-authenticate first when the session has no call left — once across workers, under
    /// the refresh lease. `None` when the connection has no call limit (use `get`).
    pub async fn session_call(
        &self,
        name: &str,
    ) -> Result<Option<Box<dyn Connector>>, ResolveError> {
        let (Some(refresher), Some(secret_id)) =
            (&self.refresher, super::secret_id(&self.settings, name))
        else {
            return Ok(None);
        };
        let secret_id = secret_id.as_str();
        // Other workers may use up a fresh session before this one reserves on it: try again.
        for _ in 0..10 {
            // Renewed first if its age is up, so the reserved call and the token agree.
            let c = refresher.credential(secret_id, None).await?;
            let (Some(max), Some(token)) =
                (declared::session_policy(&c).max_calls, c.access_token())
            else {
                return Ok(None);
            };
            let stale = token.expose_secret().to_owned();
            let fp = crate::reconnect::fingerprint(token);
            if refresher.count_call(secret_id, &fp).await? <= max {
                return Ok(Some(build(name, self.http.clone(), c)?));
            }
            refresher.credential(secret_id, Some(&stale)).await?;
        }
        Err(ResolveError::Auth(
            crate::connectors::auth::AuthError::Transient {
                secret_id: secret_id.to_owned(),
                reason: "no call could be reserved on a fresh session".into(),
            },
        ))
    }

    /// The connector `name` over its current credential (see [`Connectors::credential`]).
    pub async fn get(&self, name: &str) -> Result<Box<dyn Connector>, ResolveError> {
        build(name, self.http.clone(), self.credential(name).await?)
    }

    /// The credential `name`'s calls are made with (refreshed under the lease where there is
    /// one): for a vendor's calls outside its connector's actions.
    pub async fn credential(&self, name: &str) -> Result<Credential, ResolveError> {
        if !super::is_known(name) {
            return Err(ResolveError::Unknown(name.to_owned()));
        }
        let secret_id = super::secret_id(&self.settings, name).ok_or_else(|| {
            ResolveError::NotConfigured(name.to_owned(), name.to_ascii_uppercase())
        })?;
        let secret_id = secret_id.as_str();
        let credential = match &self.refresher {
            Some(r) => r.credential(secret_id, None).await?,
            None => {
                let c = self.secrets.credential(secret_id).await?;
                // Without a refresher (canary, doctor), a minted credential that has no token
                // yet gets one for this use only; storing it is the workers' job.
                let unminted = matches!(
                    c,
                    Credential::Oauth2ClientCredentials {
                        access_token: None,
                        ..
                    } | Credential::Oauth2JwtBearer {
                        access_token: None,
                        ..
                    } | Credential::SessionLogin {
                        access_token: None,
                        ..
                    }
                );
                if unminted {
                    let value = self.secrets.get(secret_id).await?;
                    let minted =
                        crate::connectors::auth::exchange(&self.http, secret_id, &value).await?;
                    Credential::parse(secret_id, &secrecy::SecretString::from(minted.to_string()))?
                } else {
                    c
                }
            }
        };
        Ok(credential)
    }
}

/// The connector `name` over a given credential (rotation tests a pending one this way).
pub fn build(
    name: &str,
    http: reqwest::Client,
    credential: Credential,
) -> Result<Box<dyn Connector>, ResolveError> {
    if let Some(vendor) = super::built_in(name) {
        return (vendor.connect)(http, credential);
    }
    match declared::get(name) {
        Some(d) => Ok(Box::new(declared::Declared::new(d, http, credential)?)),
        None => Err(ResolveError::Unknown(name.to_owned())),
    }
}
