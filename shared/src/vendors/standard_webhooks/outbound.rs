//! A generic outbound webhook, signed the Standard Webhooks way: `webhook-id` (switchyard's
//! idempotency key, so the receiver can drop a repeat — the vendor-side key), `webhook-timestamp`
//! and `webhook-signature: v1,base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"))`.
//! Retry logic: 2xx → ok; 429 → rate limited (`Retry-After`); 408, 409, 5xx → transient; other
//! 4xx → permanent.
//!
//! Action `post`: the body is `{"type": params.type or "switchyard.action", "data": {params}}`.

use async_trait::async_trait;
use base64::{engine::general_purpose::STANDARD, Engine};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use crate::connectors::{wrong_credential, Connector, ConnectorError, Outcome, ResolveError};
use crate::routing::PlannedAction;
use crate::secrets::Credential;

/// The generic webhook connector: posts each action to one URL, signed as Standard Webhooks.
pub struct Webhook {
    http: reqwest::Client,
    url: String,
    secret: SecretString,
}

/// The `webhook-signature` value for one message.
pub fn sign(
    secret: &SecretString,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, ConnectorError> {
    let raw = secret.expose_secret().trim();
    let key = STANDARD
        .decode(raw.strip_prefix("whsec_").unwrap_or(raw))
        .map_err(|_| {
            ConnectorError::ReauthRequired("the signing secret is not whsec_<base64>".into())
        })?;
    let ts = timestamp.to_string();
    let mac = crate::webhook::signature::hmac_sha256(
        &key,
        &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
    );
    Ok(format!("v1,{}", STANDARD.encode(mac)))
}

impl Webhook {
    /// A connector over a `signed_webhook` credential (URL and secret); any other type is refused.
    pub fn new(http: reqwest::Client, credential: Credential) -> Result<Self, ResolveError> {
        match credential {
            Credential::SignedWebhook { url, secret } => Ok(Self { http, url, secret }),
            other => Err(wrong_credential("webhook", &other)),
        }
    }
}

#[async_trait]
impl Connector for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn check_configuration(
        &self,
        _actions: &[&crate::routing::ActionTemplate],
    ) -> Vec<crate::drift::Finding> {
        let mut out = crate::drift::endpoint::check(&self.http, "webhook", &self.url, &[]).await;
        if let Err(e) = sign(&self.secret, "check", 0, b"") {
            out.push(crate::drift::Finding {
                connector: "webhook".into(),
                object: "configuration".into(),
                kind: crate::drift::FindingKind::Configuration,
                severity: crate::drift::Severity::Breaking,
                path: "secret".into(),
                detail: e.to_string(),
                example: None,
                routes: Vec::new(),
            });
        }
        out
    }

    async fn perform(&self, action: &PlannedAction, key: &str) -> Result<Outcome, ConnectorError> {
        if action.action != "post" {
            return Err(ConnectorError::Unsupported(format!(
                "webhook has no action {:?}",
                action.action
            )));
        }
        let kind = action
            .params
            .get("type")
            .cloned()
            .unwrap_or_else(|| "switchyard.action".into());
        let data: Map<String, Value> = action
            .params
            .iter()
            .filter(|(k, _)| k.as_str() != "type")
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let body = serde_json::to_vec(&json!({"type": kind, "data": data}))
            .map_err(|e| ConnectorError::permanent(e.to_string()))?;
        let ts = chrono::Utc::now().timestamp();
        let req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", key)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign(&self.secret, key, ts, &body)?)
            .body(body);
        crate::connectors::send_with("webhook", req, |a| {
            let status = a.status.as_u16();
            let reason = || format!("HTTP {status}: {}", crate::connectors::excerpt(&a.body));
            match status {
                200..=299 => Ok(Outcome {
                    object_id: Some(key.to_owned()),
                    detail: format!("delivered (HTTP {status})"),
                }),
                429 => Err(ConnectorError::RateLimited {
                    retry_after: crate::connectors::wait::wait_hint(
                        &crate::connectors::wait::header_pairs(&a.headers),
                        chrono::Utc::now(),
                    ),
                }),
                408 | 409 | 500..=599 => Err(ConnectorError::Transient(reason())),
                _ => Err(ConnectorError::permanent(reason())),
            }
        })
        .await
    }

    /// Nothing to read on a generic receiver; check the configuration only.
    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        sign(&self.secret, "probe", 0, b"")?;
        Ok(Outcome {
            object_id: None,
            detail: "URL and signing secret present (not called)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_intake_verifier() {
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"type":"switchyard.action","data":{}}"#;
        let sig = sign(&secret, "msg_1", 1_700_000_000, body).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", "1700000000".parse().unwrap());
        headers.insert("webhook-signature", sig.parse().unwrap());
        crate::vendors::standard_webhooks::inbound::verify(
            crate::vendors::standard_webhooks::inbound::Flavor::Standard,
            &headers,
            body,
            &[secret],
            None,
        )
        .unwrap();
    }
}
