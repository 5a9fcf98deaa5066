//! GitHub: `X-Hub-Signature-256: sha256=hex(HMAC-SHA256(secret, body))`; the legacy
//! `X-Hub-Signature: sha1=…` only when no sha256 header is present. Delivery id:
//! `X-GitHub-Delivery`; event name: `X-GitHub-Event` plus the payload's `action`.

use http::HeaderMap;
use secrecy::SecretString;

use crate::webhook::signature::{ct_eq, hex_after, hmac_sha1, verify_any, verify_hmac_sha256};
use crate::webhook::{
    header, opt_header, str_field, Inbound, NormalizeError, Normalized, VerifyError,
};

pub(crate) const SHA256_HEADER: &str = "x-hub-signature-256";
pub(crate) const SHA1_HEADER: &str = "x-hub-signature";

/// Checks `X-Hub-Signature-256` (or, only when it is absent, the legacy SHA-1 header) against
/// each of `secrets`.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
) -> Result<(), VerifyError> {
    if headers.contains_key(SHA256_HEADER) {
        let expected = hex_after(header(headers, SHA256_HEADER)?, "sha256=", SHA256_HEADER)?;
        return verify_hmac_sha256(secrets, &[body], &expected);
    }
    if !headers.contains_key(SHA1_HEADER) {
        return Err(VerifyError::MissingHeader(SHA256_HEADER));
    }
    let expected = hex_after(header(headers, SHA1_HEADER)?, "sha1=", SHA1_HEADER)?;
    verify_any(secrets, |key| ct_eq(&hmac_sha1(key, &[body]), &expected))
}

/// Reads a GitHub delivery as one event (`X-GitHub-Event` + `.action`); a `ping` is a handshake.
pub fn normalize(headers: &HeaderMap, raw: serde_json::Value) -> Result<Inbound, NormalizeError> {
    let event = opt_header(headers, "x-github-event")
        .ok_or(NormalizeError::MissingField("X-GitHub-Event header"))?;
    if event == "ping" {
        // Sent once when a webhook is created: acknowledge, nothing to process.
        return Ok(Inbound::Handshake(crate::webhook::Reply::json(
            serde_json::json!({"status": "pong"}),
        )));
    }
    let event_type = match str_field(&raw, "/action") {
        Some(action) => format!("{event}.{action}"),
        None => event.to_owned(),
    };
    // The object: an issue or pull request, as `owner/repo#number`.
    let item = ["/issue", "/pull_request", "/discussion"]
        .into_iter()
        .find_map(|p| raw.pointer(p));
    let repo = str_field(&raw, "/repository/full_name");
    let object_id = match (&repo, item.and_then(|i| str_field(i, "/number"))) {
        (Some(repo), Some(n)) => Some(format!("{repo}#{n}")),
        (repo, _) => repo.clone(),
    };
    let occurred_at = item
        .and_then(|i| i.get("updated_at").or_else(|| i.get("created_at")))
        .and_then(|v| crate::dates::parse_json(v).ok());
    Ok(Inbound::event(Normalized {
        event_type,
        delivery_id: opt_header(headers, "x-github-delivery").map(str::to_owned),
        object_id,
        subject: item.and_then(|i| str_field(i, "/title")),
        text: item.and_then(|i| str_field(i, "/body")),
        requester: str_field(&raw, "/sender/login"),
        occurred_at,
        links: item
            .and_then(|i| str_field(i, "/html_url"))
            .into_iter()
            .collect(),
        unknown_fields: Vec::new(),
        attachments: Vec::new(),
        raw: raw.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::signature::hmac_sha256;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    // GitHub's "Validating webhook deliveries" example.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn vendor_example_tampered_and_wrong_secret() {
        let secrets = [SecretString::from(SECRET)];
        assert_eq!(verify(&with(SHA256_HEADER, SIG), BODY, &secrets), Ok(()));
        assert_eq!(
            verify(&with(SHA256_HEADER, SIG), b"Hello, World?", &secrets),
            Err(VerifyError::Mismatch)
        );
        let wrong = [SecretString::from("nope")];
        assert_eq!(
            verify(&with(SHA256_HEADER, SIG), BODY, &wrong),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn sha1_only_when_no_sha256_header() {
        let secrets = [SecretString::from(SECRET)];
        let sha1 = format!(
            "sha1={}",
            hex::encode(hmac_sha1(SECRET.as_bytes(), &[BODY]))
        );
        assert_eq!(verify(&with(SHA1_HEADER, &sha1), BODY, &secrets), Ok(()));
        // With a (wrong) sha256 header present, a valid sha1 header must not rescue the request.
        let mut both = with(SHA1_HEADER, &sha1);
        let bad256 = format!("sha256={}", hex::encode(hmac_sha256(b"other", &[BODY])));
        both.insert(SHA256_HEADER, bad256.parse().unwrap());
        assert_eq!(verify(&both, BODY, &secrets), Err(VerifyError::Mismatch));
        assert_eq!(
            verify(&HeaderMap::new(), BODY, &secrets),
            Err(VerifyError::MissingHeader(SHA256_HEADER))
        );
    }

    #[test]
    fn issue_opened_normalizes() {
        let raw = serde_json::json!({
            "action": "opened",
            "issue": {"number": 1347, "title": "Found a bug", "body": "I'm having a problem with this.",
                      "html_url": "https://github.com/octocat/Hello-World/issues/1347",
                      "created_at": "2011-04-22T13:33:48Z", "updated_at": "2011-04-22T13:33:48Z"},
            "repository": {"full_name": "octocat/Hello-World"},
            "sender": {"login": "octocat"}
        });
        let mut h = with("x-github-event", "issues");
        h.insert(
            "x-github-delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap(),
        );
        let n = normalize(&h, raw).unwrap().into_events().remove(0);
        assert_eq!(n.event_type, "issues.opened");
        assert_eq!(n.object_id.as_deref(), Some("octocat/Hello-World#1347"));
        assert_eq!(
            n.delivery_id.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(
            n.links,
            ["https://github.com/octocat/Hello-World/issues/1347"]
        );
    }
}
