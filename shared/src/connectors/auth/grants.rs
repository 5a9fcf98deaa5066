//! Token grants: how each OAuth credential type gets a new access token from its token endpoint.
//! - `oauth2_refresh`: `grant_type=refresh_token` (a rotated refresh token is stored too);
//! - `oauth2_client_credentials`: `grant_type=client_credentials` with the client's id and secret;
//! - `oauth2_jwt_bearer`: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with an RS256
//!   assertion (RFC 7523) — `iss` client id, `sub` the integration user, `aud` the login host,
//!   `exp` three minutes out (Salesforce's maximum).
//!
//! The result is the credential's JSON with the token fields replaced and every other field kept.

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::AuthError;
use crate::connectors::triage::{self, Kind};
use crate::secrets::Credential;

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A minted token's life when the answer has no `expires_in` and the policy sets none.
const DEFAULT_SESSION_SECONDS: u64 = 7_200;

/// Why an assertion could not be made. Neither names the key nor quotes it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssertionError {
    /// The credential's `private_key` is not an RSA key in PEM (PKCS#8 or PKCS#1).
    #[error("private_key is not an RSA private key in PEM form")]
    NotRsaPem,
    /// ring refused to sign (a key it cannot use, such as one under 2048 bits).
    #[error("could not sign the assertion with this key")]
    Sign,
}

/// An RS256 JWT bearer assertion (RFC 7523), signed with ring. The JWT is assembled here, in a
/// dozen lines, instead of by `jsonwebtoken`: that crate's only other backend, RustCrypto, links
/// RSA, ECDSA and Ed25519 together (the algorithm is chosen at run time), 0.4 MB in each function
/// that mints tokens; ring is already linked for TLS. The sandbox checks every assertion with
/// `jsonwebtoken` (`tests/minted.rs`).
pub fn assertion(
    client_id: &str,
    subject: &str,
    audience: &str,
    private_key: &SecretString,
) -> Result<String, AssertionError> {
    use base64::engine::{general_purpose::URL_SAFE_NO_PAD, Engine};
    use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    use rustls::pki_types::{pem::PemObject, PrivateKeyDer};

    let pem = private_key.expose_secret().as_bytes();
    let pair = match PrivateKeyDer::from_pem_slice(pem).map_err(|_| AssertionError::NotRsaPem)? {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err(AssertionError::NotRsaPem),
    }
    .map_err(|_| AssertionError::NotRsaPem)?;
    let claims = serde_json::json!({
        "iss": client_id, "sub": subject, "aud": audience,
        "exp": Utc::now().timestamp() + 180,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    let rng = ring::rand::SystemRandom::new();
    pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature)
        .map_err(|_| AssertionError::Sign)?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// Get a new access token for the stored credential `current`.
pub async fn exchange(
    http: &reqwest::Client,
    secret_id: &str,
    current: &SecretString,
) -> Result<Value, AuthError> {
    let transient = |reason: String| AuthError::transient(secret_id, reason);
    let mut next: Value = serde_json::from_str(current.expose_secret())
        .map_err(|e| transient(format!("stored credential is not JSON: {e}")))?;
    let credential = Credential::parse(secret_id, current)?;
    if let Credential::SessionLogin { connector, .. } = &credential {
        return crate::connectors::declared::login(http, secret_id, connector, current).await;
    }
    let (url, form): (String, Vec<(&str, String)>) = match &credential {
        Credential::Oauth2Refresh {
            base_url,
            refresh_token,
            client_id,
            client_secret,
            ..
        } => (
            // Slack's `oauth.v2.access` unless the credential names its token endpoint.
            next.get("token_url")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    format!("{}/api/oauth.v2.access", base_url.trim_end_matches('/'))
                }),
            vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", refresh_token.expose_secret().into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose_secret().into()),
            ],
        ),
        Credential::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
            ..
        } => {
            let mut form = vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose_secret().into()),
            ];
            if let Some(scope) = scope {
                form.push(("scope", scope.clone()));
            }
            (token_url.clone(), form)
        }
        Credential::Oauth2JwtBearer {
            token_url,
            client_id,
            subject,
            audience,
            private_key,
            ..
        } => {
            let jwt = assertion(client_id, subject, audience, private_key).map_err(|e| {
                AuthError::ReauthRequired {
                    secret_id: secret_id.to_owned(),
                    reason: e.to_string(),
                }
            })?;
            (
                token_url.clone(),
                vec![("grant_type", JWT_BEARER.into()), ("assertion", jwt)],
            )
        }
        other => {
            return Err(transient(format!(
                "a {} credential has no token endpoint",
                other.kind()
            )))
        }
    };
    // The session starts no later than the request: count its life from here.
    let asked_at = Utc::now();
    let (call, answer) = crate::calls::send("oauth2", http.post(&url).form(&form)).await;
    let answer = answer.map_err(|e| transient(e.without_url().to_string()))?;
    let r = triage::Response::from_parts(answer.status.as_u16(), &answer.headers, answer.body);
    let verdict = triage::oauth2_verdict(&r, Utc::now());
    call.finish(verdict.kind.as_str());
    match verdict.kind {
        Kind::Ok => {}
        Kind::ReauthRequired | Kind::Permanent => {
            return Err(AuthError::ReauthRequired {
                secret_id: secret_id.to_owned(),
                reason: verdict.reason,
            })
        }
        _ => return Err(transient(verdict.reason)),
    }
    // Slack wraps success in {"ok": true, …}; RFC 6749 answers the fields at the top level.
    let body: Value =
        serde_json::from_str(&r.body).map_err(|_| transient("token answer is not JSON".into()))?;
    let access = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| transient("token answer lacks access_token".into()))?;
    next["access_token"] = Value::from(access);
    if matches!(credential, Credential::Oauth2Refresh { .. }) {
        if let Some(refresh) = body.get("refresh_token").and_then(Value::as_str) {
            next["refresh_token"] = Value::from(refresh);
        }
    }
    // Salesforce answers the org's own instance; calls go there.
    if let Some(instance) = body.get("instance_url").and_then(Value::as_str) {
        next["base_url"] = Value::from(instance);
    }
    let policy = crate::connectors::declared::session_policy(&credential);
    let default_life = match credential {
        Credential::Oauth2Refresh { .. } => 3_600,
        _ => policy.max_age_seconds.unwrap_or(DEFAULT_SESSION_SECONDS),
    };
    let mut life = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(default_life);
    // The session policy caps what the vendor says (it logs sessions out by age).
    if let Some(max) = policy.max_age_seconds {
        life = life.min(max);
    }
    next["expires_at"] =
        Value::from((asked_at + chrono::Duration::seconds(life as i64)).to_rfc3339());
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assertion_needs_an_rsa_key_in_pem_and_says_so_without_quoting_it() {
        let not_pem = SecretString::from("-----BEGIN NOTHING-----\nc2VjcmV0\n");
        let e = assertion("id", "user", "aud", &not_pem).unwrap_err();
        assert_eq!(e, AssertionError::NotRsaPem);
        // A real private key, of the wrong kind (P-256): refused as not RSA.
        let ec = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let e = assertion("id", "user", "aud", &SecretString::from(ec)).unwrap_err();
        assert_eq!(e, AssertionError::NotRsaPem);
        assert!(!e.to_string().contains("BEGIN"));
    }
}
