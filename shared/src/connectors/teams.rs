//! Microsoft Teams: post to a channel through a Workflows webhook (Power Automate's "When a Teams
//! webhook request is received"; answers 202) or a legacy incoming webhook (answers 200 `1`).
//! The URL is the credential. Retry logic (see `triage::teams`): a 200 whose text says
//! "Microsoft Teams endpoint returned HTTP error 429" → rate limited; 429 → rate limited; 5xx →
//! transient; 400 (bad payload), 413 → permanent; **401/403/404/410 → re-authorization: the
//! webhook was removed or disabled, and a human must create a new one**.
//!
//! Exactly once: webhooks offer no idempotency key, so only switchyard's own record guards the
//! post; a crash between Teams' answer and that record can post twice.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::{
    param, read_response, wrong_credential, Connector, ConnectorError, Outcome, ResolveError,
};
use crate::routing::PlannedAction;
use crate::secrets::Credential;

pub struct Teams {
    http: reqwest::Client,
    url: SecretString,
}

/// A message as an Adaptive Card (1.4) attachment, which both webhook kinds accept.
pub fn card(title: Option<&str>, text: &str) -> Value {
    let mut body = Vec::new();
    if let Some(t) = title {
        body.push(json!({"type": "TextBlock", "text": t, "weight": "Bolder", "size": "Medium", "wrap": true}));
    }
    body.push(json!({"type": "TextBlock", "text": text, "wrap": true}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard", "version": "1.4", "body": body
            }
        }]
    })
}

impl Teams {
    pub fn new(http: reqwest::Client, credential: Credential) -> Result<Self, ResolveError> {
        match credential {
            Credential::WebhookUrl { url } => Ok(Self { http, url }),
            other => Err(wrong_credential("teams", &other)),
        }
    }
}

/// Where Teams webhooks live: Workflows (Power Automate / Logic Apps) and legacy connectors.
const HOSTS: &[&str] = &[
    ".logic.azure.com",
    ".powerautomate.com",
    ".powerplatform.com",
    ".webhook.office.com",
];

#[async_trait]
impl Connector for Teams {
    fn name(&self) -> &'static str {
        "teams"
    }

    async fn check_configuration(&self) -> Vec<crate::drift::Finding> {
        crate::drift::endpoint::check(&self.http, "teams", self.url.expose_secret(), HOSTS).await
    }

    async fn perform(&self, action: &PlannedAction, _key: &str) -> Result<Outcome, ConnectorError> {
        if action.action != "post_message" {
            return Err(ConnectorError::Unsupported(format!(
                "teams has no action {:?}",
                action.action
            )));
        }
        let payload = card(
            action.params.get("title").map(String::as_str),
            param(action, "text")?,
        );
        let req = self.http.post(self.url.expose_secret()).json(&payload);
        super::send_with("teams", req, |a| {
            read_response("teams", a.status, &a.headers, a.body)
        })
        .await?;
        Ok(Outcome {
            object_id: None,
            detail: "message posted to the channel".into(),
        })
    }

    /// A webhook has nothing to read: the only check that does not post is that one is set.
    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        let url = self.url.expose_secret();
        if url.starts_with("https://") || url.starts_with("http://127.0.0.1") {
            Ok(Outcome {
                object_id: None,
                detail: "webhook URL present (not called: posting is its only operation)".into(),
            })
        } else {
            Err(ConnectorError::ReauthRequired(
                "the Teams webhook URL is not an https URL".into(),
            ))
        }
    }
}
