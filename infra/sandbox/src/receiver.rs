//! A receiver for switchyard's generic signed webhooks, as a careful one behaves: it verifies
//! the Standard Webhooks signature (401 otherwise) and drops a repeated `webhook-id` (200, no
//! second effect) — which is what makes the sender's retries safe.
//!
//! The verification is its own, written from the specification (standard-webhooks.com) and held
//! to its published test vector, not switchyard's `verify`: a receiver that shared the sender's
//! code would agree with it by construction, bugs included.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use serde_json::Value;

use super::{LedgerEntry, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/hooks", post(receive))
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = check(
        &shared.credentials.webhook_secret,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        body.as_bytes(),
        now,
    ) {
        return (StatusCode::UNAUTHORIZED, why).into_response();
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut state = shared.state.lock().expect("sandbox state");
    if !state.webhook_ids.insert(id.clone()) {
        return (StatusCode::OK, "duplicate").into_response();
    }
    state.ledger.push(LedgerEntry {
        vendor: "webhook",
        operation: "receive".into(),
        object_id: id,
        detail: serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
    });
    StatusCode::NO_CONTENT.into_response()
}

/// How far a signature's timestamp may be from the receiver's clock (the specification's
/// suggested tolerance), against replays.
const TOLERANCE_SECS: i64 = 5 * 60;

/// The Standard Webhooks check: HMAC-SHA256 with the secret's base64-decoded bytes (after
/// `whsec_`) over `id.timestamp.body`, base64, matched against any `v1,` entry of the
/// space-separated signature header; the timestamp within the tolerance.
fn check(
    secret: &str,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
        return Err("missing webhook-id, webhook-timestamp or webhook-signature");
    };
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| "webhook-timestamp is not a number")?;
    if (now - sent).abs() > TOLERANCE_SECS {
        return Err("webhook-timestamp is outside the tolerance");
    }
    let key = b64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the receiver's secret is not base64")?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let matched = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| b64.decode(sig).ok())
        .any(|sig| hmac::verify(&key, &signed, &sig).is_ok());
    matched.then_some(()).ok_or("no v1 signature matches")
}

#[cfg(test)]
mod tests {
    use super::check;

    // The specification's published test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const AT: i64 = 1_614_265_330;

    #[test]
    fn the_specifications_test_vector_verifies() {
        assert_eq!(
            check(SECRET, Some(ID), Some(TS), Some(SIG), BODY, AT),
            Ok(())
        );
        // Among other entries (a rotated key, another version), in any order.
        let several = format!("v1a,abc v1,AAAA {SIG}");
        assert_eq!(
            check(SECRET, Some(ID), Some(TS), Some(&several), BODY, AT),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_id_timestamp_or_secret_fails() {
        let fails = |secret, id, ts, body: &[u8], now| {
            check(secret, Some(id), Some(ts), Some(SIG), body, now).is_err()
        };
        assert!(fails(SECRET, ID, TS, br#"{"test": 2432232315}"#, AT));
        assert!(fails(SECRET, "msg_other", TS, BODY, AT));
        assert!(fails(SECRET, ID, "1614265331", BODY, AT));
        assert!(fails(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ID,
            TS,
            BODY,
            AT
        ));
        // Valid, but replayed past the tolerance (or sent from a clock far ahead).
        assert!(fails(SECRET, ID, TS, BODY, AT + 301));
        assert!(fails(SECRET, ID, TS, BODY, AT - 301));
        assert!(!fails(SECRET, ID, TS, BODY, AT + 300));
        // A v1 signature only counts under its own version tag.
        let untagged = SIG.trim_start_matches("v1,");
        assert!(check(SECRET, Some(ID), Some(TS), Some(untagged), BODY, AT).is_err());
        assert!(check(SECRET, None, Some(TS), Some(SIG), BODY, AT).is_err());
    }
}
