//! Microsoft Teams outgoing webhooks: `Authorization: HMAC base64(HMAC-SHA256(base64decode(secret),
//! body))`. Teams waits ~5 s for a reply activity, which it posts in the channel.

use base64::{engine::general_purpose::STANDARD, Engine};
use http::HeaderMap;
use secrecy::SecretString;

use crate::webhook::signature::{ct_eq, hmac_sha256, verify_any};
use crate::webhook::{header, str_field, Inbound, NormalizeError, Normalized, Reply, VerifyError};

pub(crate) const AUTH_HEADER: &str = "authorization";

/// Checks `Authorization: HMAC …` against each of `secrets`, each the base64 key Teams shows.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
) -> Result<(), VerifyError> {
    let expected = header(headers, AUTH_HEADER)?
        .trim()
        .strip_prefix("HMAC ")
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .ok_or(VerifyError::MalformedHeader(AUTH_HEADER))?;
    // The secret Teams shows is base64; one that does not decode can never match.
    verify_any(secrets, |secret| {
        STANDARD
            .decode(secret.trim_ascii())
            .is_ok_and(|key| ct_eq(&hmac_sha256(&key, &[body]), &expected))
    })
}

/// Reads an outgoing-webhook activity as one `teams:<type>` event, its text without `<at>`
/// mentions, and answers with a reply message.
pub fn normalize(raw: serde_json::Value) -> Result<Inbound, NormalizeError> {
    let kind = str_field(&raw, "/type").ok_or(NormalizeError::MissingField("type"))?;
    let event = Normalized {
        event_type: format!("teams:{kind}"),
        // Bot Framework activities carry an `id`; outgoing-webhook ones may not (then the
        // body's hash identifies the delivery, as for any vendor without an id).
        delivery_id: str_field(&raw, "/id"),
        object_id: str_field(&raw, "/conversation/id"),
        subject: None,
        text: str_field(&raw, "/text").map(|t| strip_mentions(&t)),
        requester: str_field(&raw, "/from/name").or_else(|| str_field(&raw, "/from/id")),
        occurred_at: raw
            .get("timestamp")
            .and_then(|v| crate::dates::parse_json(v).ok()),
        links: Vec::new(),
        unknown_fields: Vec::new(),
        attachments: Vec::new(),
        raw: raw.into(),
    };
    let reply = Reply::json(serde_json::json!({
        "type": "message",
        "text": "switchyard received this and is on it."
    }));
    Ok(Inbound::Events {
        events: vec![event],
        ack: Some(reply),
    })
}

/// `<at>Bot</at> help me` → `help me`: the mention is addressing, not content.
fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<at>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</at>") {
            Some(end) => rest = &rest[start + end + 5..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An activity without an `id` is still one event (its body's hash names the delivery).
    #[test]
    fn an_activity_without_an_id_is_an_event() {
        let activity = serde_json::json!({"type": "message", "text": "<at>switchyard</at> printer on fire",
            "timestamp": "2026-12-04T10:31:00.000Z", "from": {"id": "29:1", "name": "Megan"},
            "conversation": {"id": "19:abc@thread.skype"}});
        let Inbound::Events { events, .. } = normalize(activity).unwrap() else {
            panic!("an event");
        };
        assert_eq!(events[0].delivery_id, None);
        assert_eq!(events[0].text.as_deref(), Some("printer on fire"));
    }

    // A key as Teams shows it (base64 of 32 bytes), fixed for the test.
    const SECRET_B64: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    const BODY: &[u8] =
        br#"{"type":"message","id":"1485983408511","text":"<at>switchyard</at> the VPN is down"}"#;

    fn auth(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTH_HEADER, format!("HMAC {sig}").parse().unwrap());
        h
    }

    fn sign(body: &[u8]) -> String {
        STANDARD.encode(hmac_sha256(&STANDARD.decode(SECRET_B64).unwrap(), &[body]))
    }

    #[test]
    fn valid_tampered_wrong_secret() {
        let secrets = [SecretString::from(SECRET_B64)];
        assert_eq!(verify(&auth(&sign(BODY)), BODY, &secrets), Ok(()));
        assert_eq!(
            verify(&auth(&sign(BODY)), b"{}", &secrets),
            Err(VerifyError::Mismatch)
        );
        // The raw (undecoded) secret as key is the classic mistake: it must not verify.
        let raw_key = STANDARD.encode(hmac_sha256(SECRET_B64.as_bytes(), &[BODY]));
        assert_eq!(
            verify(&auth(&raw_key), BODY, &secrets),
            Err(VerifyError::Mismatch)
        );
        let mut bearer = HeaderMap::new();
        bearer.insert(AUTH_HEADER, "Bearer abc".parse().unwrap());
        assert_eq!(
            verify(&bearer, BODY, &secrets),
            Err(VerifyError::MalformedHeader(AUTH_HEADER))
        );
    }

    #[test]
    fn message_normalizes_with_a_reply() {
        let raw: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        let Inbound::Events { events, ack } = normalize(raw).unwrap() else {
            panic!("expected events")
        };
        assert_eq!(events[0].text.as_deref(), Some("the VPN is down"));
        assert_eq!(ack.unwrap().content_type, "application/json");
    }
}
