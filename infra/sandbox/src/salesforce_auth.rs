//! Salesforce's OAuth token endpoint (`POST /services/oauth2/token`) and session rules, as
//! documented: the JWT bearer flow (RS256 assertion: `iss` = the connected app's consumer key,
//! `sub` = a pre-approved user, `aud` = the login host, `exp` at most 3 minutes out) and the
//! client credentials flow; success answers `access_token`, `instance_url`, `id`, `token_type`,
//! `issued_at`, `scope` and **no** `expires_in` (the org's session timeout applies); failures are
//! RFC 6749 errors with HTTP 400 (`invalid_grant` "user hasn't approved this consumer",
//! `invalid_client_id`, `invalid_client`).
//!
//! Sessions: a minted token ends after the org's timeout (`max_age`) or, for orgs that log a
//! session out after N calls, after `max_calls`; then every call answers 401
//! `INVALID_SESSION_ID`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde_json::json;

use super::{LedgerEntry, Shared};

pub const AUDIENCES: [&str; 2] = [
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

/// The connected app's certificate key pair: (private key PEM, public key PKCS#1 DER). One per
/// process: RSA key generation is the slow part.
pub fn key_pair() -> &'static (String, Vec<u8>) {
    static KEY: OnceLock<(String, Vec<u8>)> = OnceLock::new();
    KEY.get_or_init(|| {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::KeyPair;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .expect("RSA key generation");
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        (pem, pair.public_key().as_ref().to_vec())
    })
}

/// Minted sessions and the org's rules for them.
#[derive(Debug, Default)]
pub struct Sessions {
    live: HashMap<String, (Instant, u64)>,
    pub max_age: Option<Duration>,
    pub max_calls: Option<u64>,
    /// The admin revoked the connected app's approval for the integration user.
    pub revoked: bool,
    pub grants: u64,
    /// Calls answered 401 because their session had ended.
    pub ended: u64,
}

impl Sessions {
    /// Count a call on a minted session; `false` once the session has ended.
    pub fn admit(&mut self, token: &str) -> bool {
        let (max_age, max_calls) = (self.max_age, self.max_calls);
        let Some((issued, calls)) = self.live.get_mut(token) else {
            return false;
        };
        let over_age = max_age.is_some_and(|a| issued.elapsed() >= a);
        let over_calls = max_calls.is_some_and(|m| *calls >= m);
        if over_age || over_calls {
            self.live.remove(token);
            self.ended += 1;
            return false;
        }
        *calls += 1;
        true
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let c = &shared.credentials;
    let grant = form
        .get("grant_type")
        .map(String::as_str)
        .unwrap_or_default();
    let user = match grant {
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            let assertion = form
                .get("assertion")
                .map(String::as_str)
                .unwrap_or_default();
            let key = jsonwebtoken::DecodingKey::from_rsa_der(&key_pair().1);
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            v.set_audience(&AUDIENCES);
            v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
            let claims = match jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v) {
                Ok(d) => d.claims,
                Err(e) => {
                    let why = match e.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                            "expired authorization code"
                        }
                        jsonwebtoken::errors::ErrorKind::InvalidAudience => "audience is invalid",
                        _ => "invalid assertion",
                    };
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
                }
            };
            if claims["exp"].as_i64().unwrap_or(0) > chrono::Utc::now().timestamp() + 300 {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "invalid assertion",
                );
            }
            if claims["iss"] != c.salesforce_client_id.as_str() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client_id",
                    "client identifier invalid",
                );
            }
            if claims["sub"] != c.salesforce_username.as_str() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "user hasn't approved this consumer",
                );
            }
            c.salesforce_username.clone()
        }
        "client_credentials" => {
            if form.get("client_id") != Some(&c.salesforce_client_id)
                || form.get("client_secret") != Some(&c.salesforce_client_secret)
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    "invalid client credentials",
                );
            }
            c.salesforce_username.clone()
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant type not supported",
            )
        }
    };
    let mut state = shared.state.lock().expect("sandbox state");
    if state.salesforce_sessions.revoked {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "user hasn't approved this consumer",
        );
    }
    let access = format!("00D000000000001!{}", uuid::Uuid::new_v4().simple());
    state
        .salesforce_sessions
        .live
        .insert(access.clone(), (Instant::now(), 0));
    state.salesforce_sessions.grants += 1;
    state.ledger.push(LedgerEntry {
        vendor: "salesforce",
        operation: "oauth2 token".into(),
        object_id: user,
        detail: json!({"grant_type": grant}),
    });
    drop(state);
    let instance = format!("http://{}/salesforce", shared.addr);
    Json(json!({
        "access_token": access, "scope": "api", "instance_url": instance,
        "id": "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA",
        "token_type": "Bearer", "issued_at": chrono::Utc::now().timestamp_millis().to_string(),
    }))
    .into_response()
}
