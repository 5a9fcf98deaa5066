//! Microsoft Teams: post to a channel through a Workflows webhook (Power Automate's "When a Teams
//! webhook request is received"; answers 202) or a legacy incoming webhook (answers 200 `1`).
//! The URL is the credential. Retry logic (see `triage` below): a 200 whose text says
//! "Microsoft Teams endpoint returned HTTP error 429" → rate limited; 429 → rate limited; 5xx →
//! transient; 400 (bad payload), 413 → permanent; **401/403/404/410 → re-authorization: the
//! webhook was removed or disabled, and a human must create a new one**.
//!
//! Exactly once: webhooks offer no idempotency key, so only switchyard's own record guards the
//! post; a crash between Teams' answer and that record can post twice.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::connectors::excerpt;
use crate::connectors::triage::{draft, str_at, Draft, Kind as TriageKind, Response};
use crate::connectors::{
    param, read_response, wrong_credential, Connector, ConnectorError, Outcome, ResolveError,
};
use crate::routing::PlannedAction;
use crate::secrets::Credential;

/// The Teams connector: posts messages to a channel through its webhook URL.
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
    /// A connector over a `webhook_url` credential; any other type is refused.
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

    async fn check_configuration(
        &self,
        _actions: &[&crate::routing::ActionTemplate],
    ) -> Vec<crate::drift::Finding> {
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
        crate::connectors::send_with("teams", req, |a| {
            read_response(triage, a.status, &a.headers, a.body)
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

// ---------------------------------------------------------------- triage
// Which answers retry, which 200s are errors, which refusals mean re-authorization.

/// Microsoft Teams: a Workflows webhook answers 202, a connector webhook answers 200 with `1` —
/// or 200 with "Microsoft Teams endpoint returned HTTP error 429 …" when throttled. Graph answers
/// `{"error": {"code": "TooManyRequests", "message": …}}`.
pub(crate) fn triage(r: &Response) -> Draft {
    if let Some(v) = r
        .json()
        .filter(|v| v.get("error").is_some_and(Value::is_object))
    {
        let code = str_at(&v, "/error/code").unwrap_or_default();
        let message = str_at(&v, "/error/message").unwrap_or_default();
        let reason = format!("Graph error {code} (HTTP {}): {message}", r.status);
        let kind = match (r.status, code) {
            (_, "TooManyRequests" | "activityLimitReached") | (429, _) => TriageKind::RateLimited,
            (_, "InvalidAuthenticationToken" | "TokenExpired") | (401, _) => TriageKind::Auth,
            (_, "serviceNotAvailable" | "ServiceUnavailable" | "generalException") => {
                TriageKind::Transient
            }
            (500..=599, _) => TriageKind::Transient,
            _ => TriageKind::Permanent,
        };
        return draft(kind, reason);
    }
    let text = r.body.trim();
    if (200..300).contains(&r.status) {
        let lower = text.to_ascii_lowercase();
        if let Some(at) = lower.find("returned http error ") {
            let code: u16 = lower[at + 20..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let embedded = Response {
                status: code,
                headers: r.headers.clone(),
                body: String::new(),
            };
            let mut d = teams_webhook_status(&embedded);
            d.reason = format!("HTTP {} wrapping an error: {}", r.status, excerpt(text));
            return d;
        }
        if lower.contains("webhook message delivery failed") || lower.contains("error") {
            return draft(
                TriageKind::Permanent,
                format!("HTTP {} with an error body: {}", r.status, excerpt(text)),
            );
        }
        return draft(TriageKind::Ok, format!("HTTP {}", r.status));
    }
    let mut d = teams_webhook_status(r);
    d.reason = format!("HTTP {}: {}", r.status, excerpt(text))
        .trim_end_matches(": ")
        .to_owned();
    if d.kind == TriageKind::ReauthRequired {
        d.reason
            .push_str(" (the webhook URL is gone or refused; a human must create a new one)");
    }
    d
}

/// A webhook URL is its own credential: refused or gone means a human must make a new one.
fn teams_webhook_status(r: &Response) -> Draft {
    let kind = match r.status {
        429 => TriageKind::RateLimited,
        401 | 403 | 404 | 410 => TriageKind::ReauthRequired,
        408 | 500..=599 => TriageKind::Transient,
        _ => TriageKind::Permanent,
    };
    draft(kind, String::new())
}
