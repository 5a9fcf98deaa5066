//! Jira Cloud webhooks registered with a secret: WebSub-style
//! `X-Hub-Signature: sha256=hex(HMAC-SHA256(secret, body))`. The delivery id is the
//! `X-Atlassian-Webhook-Identifier` header, stable across Jira's retries.

use http::HeaderMap;
use secrecy::SecretString;

use crate::webhook::signature::{hex_after, verify_hmac_sha256};
use crate::webhook::{header, str_field, Inbound, NormalizeError, Normalized, VerifyError};

pub(crate) const SIGNATURE_HEADER: &str = "x-hub-signature";
pub(crate) const DELIVERY_HEADER: &str = "x-atlassian-webhook-identifier";

/// Checks `X-Hub-Signature: sha256=…` (HMAC-SHA256 of the body) against each of `secrets`.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
) -> Result<(), VerifyError> {
    let expected = hex_after(
        header(headers, SIGNATURE_HEADER)?,
        "sha256=",
        SIGNATURE_HEADER,
    )?;
    verify_hmac_sha256(secrets, &[body], &expected)
}

/// Reads a Jira delivery as one event of its `webhookEvent`, with the issue's browse link and the
/// attachments it added.
pub fn normalize(headers: &HeaderMap, raw: serde_json::Value) -> Result<Inbound, NormalizeError> {
    let event_type =
        str_field(&raw, "/webhookEvent").ok_or(NormalizeError::MissingField("webhookEvent"))?;
    // `timestamp` is epoch milliseconds in Jira's payloads.
    let occurred_at = raw
        .get("timestamp")
        .and_then(|t| crate::dates::parse_json(t).ok());
    let delivery_id = headers
        .get(DELIVERY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let link = match (
        str_field(&raw, "/issue/self"),
        str_field(&raw, "/issue/key"),
    ) {
        // `self` is the REST URL; people want the browse URL of the same site.
        (Some(api), Some(key)) => api
            .split("/rest/")
            .next()
            .map(|site| format!("{site}/browse/{key}")),
        _ => None,
    };
    Ok(Inbound::event(Normalized {
        event_type,
        delivery_id,
        object_id: str_field(&raw, "/issue/key"),
        subject: str_field(&raw, "/issue/fields/summary"),
        text: str_field(&raw, "/issue/fields/description"),
        requester: str_field(&raw, "/user/accountId"),
        occurred_at,
        links: link.into_iter().collect(),
        unknown_fields: Vec::new(),
        attachments: attachments(&raw),
        raw: raw.into(),
    }))
}

/// The files this event added: on `jira:issue_created` the issue's `fields.attachment`, on an
/// update only those its `changelog` adds (an update carries the issue's whole list, and reading
/// it again on every update would ask the requester again each time). `content` is the REST URL
/// that answers with a redirect to the file, under the connection's credential.
fn attachments(raw: &serde_json::Value) -> Vec<crate::event::Attachment> {
    let Some(list) = raw
        .pointer("/issue/fields/attachment")
        .and_then(|a| a.as_array())
    else {
        return Vec::new();
    };
    let created = str_field(raw, "/webhookEvent").as_deref() == Some("jira:issue_created");
    let added: Vec<String> = raw
        .pointer("/changelog/items")
        .and_then(|i| i.as_array())
        .into_iter()
        .flatten()
        .filter(|i| i["field"] == "Attachment")
        .filter_map(|i| str_field(i, "/to"))
        .collect();
    list.iter()
        .filter(|a| created || str_field(a, "/id").is_some_and(|id| added.contains(&id)))
        .map(|a| crate::event::Attachment {
            id: str_field(a, "/id"),
            name: str_field(a, "/filename"),
            declared_type: str_field(a, "/mimeType"),
            size: a.get("size").and_then(|s| s.as_u64()),
            url: str_field(a, "/content"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::signature::hmac_sha256;

    #[test]
    fn signed_body_verifies_and_tampered_body_does_not() {
        let body = br#"{"webhookEvent":"jira:issue_created"}"#;
        let sig = format!(
            "sha256={}",
            hex::encode(hmac_sha256(b"jira-secret", &[body]))
        );
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        let secrets = [SecretString::from("jira-secret")];
        assert_eq!(verify(&h, body, &secrets), Ok(()));
        assert_eq!(verify(&h, b"{}", &secrets), Err(VerifyError::Mismatch));
    }

    #[test]
    fn issue_created_normalizes_with_header_delivery_id() {
        let raw = serde_json::json!({
            "timestamp": 1700000000123i64, "webhookEvent": "jira:issue_created",
            "issue_event_type_name": "issue_created",
            "user": {"accountId": "5b10a2844c20165700ede21g"},
            "issue": {"id": "10002", "key": "OPS-7", "fields": {"summary": "Checkout down", "description": "500s"}}
        });
        let mut h = HeaderMap::new();
        h.insert(DELIVERY_HEADER, "3f2b1c".parse().unwrap());
        let n = normalize(&h, raw).unwrap().into_events().remove(0);
        assert_eq!(n.delivery_id.as_deref(), Some("3f2b1c"));
        assert_eq!(n.object_id.as_deref(), Some("OPS-7"));
        assert_eq!(n.occurred_at.unwrap().timestamp_millis(), 1700000000123);
    }

    #[test]
    fn issue_attachments_are_named_not_fetched() {
        // Shape from Jira Cloud's issue `fields.attachment` (REST v3).
        let raw = serde_json::json!({
            "webhookEvent": "jira:issue_created",
            "issue": {"key": "LEGAL-9", "fields": {"summary": "See attached", "attachment": [{
                "id": "10001", "filename": "notice.pdf", "mimeType": "application/pdf", "size": 23123,
                "content": "https://example.atlassian.net/rest/api/3/attachment/content/10001"
            }]}}
        });
        let n = normalize(&HeaderMap::new(), raw.clone())
            .unwrap()
            .into_events()
            .remove(0);
        // An update names only what its changelog adds, not the issue's whole list again.
        let mut updated = raw;
        updated["webhookEvent"] = "jira:issue_updated".into();
        let again = normalize(&HeaderMap::new(), updated.clone())
            .unwrap()
            .into_events();
        assert!(again[0].attachments.is_empty());
        updated["changelog"] = serde_json::json!({"id": "1", "items": [
            {"field": "Attachment", "fieldtype": "jira", "from": null, "to": "10001", "toString": "notice.pdf"}]});
        let added = normalize(&HeaderMap::new(), updated).unwrap().into_events();
        assert_eq!(added[0].attachments.len(), 1);
        assert_eq!(
            n.attachments,
            vec![crate::event::Attachment {
                id: Some("10001".into()),
                name: Some("notice.pdf".into()),
                declared_type: Some("application/pdf".into()),
                size: Some(23123),
                url: Some(
                    "https://example.atlassian.net/rest/api/3/attachment/content/10001".into()
                ),
            }]
        );
    }
}
