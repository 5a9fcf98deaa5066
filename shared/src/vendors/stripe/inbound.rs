//! Stripe-style signatures: `Stripe-Signature: t=TIMESTAMP,v1=HEX[,v1=HEX…]`, each `v1` a
//! `hex(HMAC-SHA256(secret, "{t}.{body}"))` — the whole `whsec_…` string is the key. 300 s window.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use secrecy::SecretString;

use crate::webhook::signature::{check_epoch_secs, hmac_sha256, one_of, verify_any};
use crate::webhook::{header, str_field, Inbound, NormalizeError, Normalized, VerifyError};

pub(crate) const SIGNATURE_HEADER: &str = "stripe-signature";

/// Checks each `v1` signature of `Stripe-Signature` against each of `secrets`, then, with `now`,
/// refuses a `t` more than 5 minutes from it.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
    now: Option<DateTime<Utc>>,
) -> Result<(), VerifyError> {
    let value = header(headers, SIGNATURE_HEADER)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", sig)) => candidates.extend(hex::decode(sig).ok()),
            _ => {} // v0 (test mode, SHA-1) and unknown schemes are ignored, as Stripe's libraries do.
        }
    }
    let ts = timestamp.ok_or(VerifyError::MalformedHeader(SIGNATURE_HEADER))?;
    if candidates.is_empty() {
        return Err(VerifyError::MalformedHeader(SIGNATURE_HEADER));
    }
    verify_any(secrets, |key| {
        one_of(&hmac_sha256(key, &[ts.as_bytes(), b".", body]), &candidates)
    })?;
    check_epoch_secs(ts, SIGNATURE_HEADER, now)
}

/// Reads a Stripe event as one event of its `type`; the delivery id is the event's `id`.
pub fn normalize(raw: serde_json::Value) -> Result<Inbound, NormalizeError> {
    let event_type = str_field(&raw, "/type").ok_or(NormalizeError::MissingField("type"))?;
    let id = str_field(&raw, "/id").ok_or(NormalizeError::MissingField("id"))?;
    let object = raw.pointer("/data/object");
    Ok(Inbound::event(Normalized {
        event_type,
        delivery_id: Some(id),
        object_id: object.and_then(|o| str_field(o, "/id")),
        subject: None,
        text: object.and_then(|o| str_field(o, "/description")),
        requester: object.and_then(|o| str_field(o, "/customer")),
        occurred_at: raw
            .get("created")
            .and_then(|v| crate::dates::parse_json(v).ok()),
        links: Vec::new(),
        unknown_fields: crate::webhook::unknown_keys(
            &raw,
            &[
                "id",
                "object",
                "api_version",
                "created",
                "data",
                "livemode",
                "pending_webhooks",
                "request",
                "type",
                "account",
                "context",
            ],
        ),
        attachments: Vec::new(),
        raw: raw.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.payment_failed","created":1700000000,"data":{"object":{"id":"in_1","customer":"cus_9","description":"Pro plan"}}}"#;

    fn signed(ts: i64, secret: &str, extra_v1: &[&str]) -> HeaderMap {
        let sig = hex::encode(hmac_sha256(
            secret.as_bytes(),
            &[ts.to_string().as_bytes(), b".", BODY],
        ));
        let mut value = format!("t={ts}");
        for e in extra_v1 {
            value.push_str(&format!(",v1={e}"));
        }
        value.push_str(&format!(
            ",v1={sig},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
        ));
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, value.parse().unwrap());
        h
    }

    fn at(s: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(s, 0).single()
    }

    #[test]
    fn valid_with_several_v1_tampered_wrong_secret_stale() {
        let secrets = [SecretString::from(SECRET)];
        let h = signed(1_700_000_000, SECRET, &["00ff"]);
        assert_eq!(verify(&h, BODY, &secrets, at(1_700_000_100)), Ok(()));
        assert_eq!(
            verify(&h, b"{}", &secrets, at(1_700_000_100)),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(
                &signed(1_700_000_000, "whsec_other", &[]),
                BODY,
                &secrets,
                at(1_700_000_000)
            ),
            Err(VerifyError::Mismatch)
        );
        assert!(matches!(
            verify(&h, BODY, &secrets, at(1_700_000_301)),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        // Without a clock, only the signature is checked.
        assert_eq!(verify(&h, BODY, &secrets, None), Ok(()));
    }

    #[test]
    fn event_normalizes() {
        let n = normalize(serde_json::from_slice(BODY).unwrap())
            .unwrap()
            .into_events()
            .remove(0);
        assert_eq!(
            (
                n.event_type.as_str(),
                n.delivery_id.as_deref(),
                n.object_id.as_deref()
            ),
            ("invoice.payment_failed", Some("evt_1"), Some("in_1"))
        );
        assert_eq!(n.occurred_at, at(1_700_000_000));
    }
}
