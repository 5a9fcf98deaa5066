//! Realistic signed webhooks, shaped as the vendors document them, for the demo and the tests.

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use switchyard::webhook::signature::hmac_sha256;

/// The signing secrets the local stack stores for intake (one active secret per source).
#[derive(Clone, Debug)]
pub struct SigningKeys {
    pub zendesk: String,
    pub slack: String,
    pub jira: String,
}

impl SigningKeys {
    pub fn random() -> Self {
        let r = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            zendesk: r(),
            slack: r(),
            jira: r(),
        }
    }

    /// The JSON stored in the intake signing secret.
    pub fn secret_json(&self) -> String {
        json!({"zendesk": [&self.zendesk], "slack": [&self.slack], "jira": [&self.jira]})
            .to_string()
    }
}

/// A webhook ready to POST to `/webhooks/{source}`.
#[derive(Clone, Debug)]
pub struct SignedWebhook {
    pub source: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SignedWebhook {
    pub async fn send(
        &self,
        http: &reqwest::Client,
        base_url: &str,
    ) -> reqwest::Result<(u16, serde_json::Value)> {
        let mut req = http
            .post(format!("{base_url}/webhooks/{}", self.source))
            .body(self.body.clone());
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        Ok((status, body))
    }
}

/// Zendesk event-based webhook: `zen:event-type:ticket.created`.
pub fn zendesk_ticket_created(
    secret: &str,
    delivery_id: &str,
    ticket_id: u64,
    subject: &str,
    description: &str,
    now: DateTime<Utc>,
) -> SignedWebhook {
    let body = json!({
        "account_id": 22129848,
        "detail": {
            "actor_id": "366630390791", "assignee_id": null, "brand_id": "360004003772",
            "created_at": now.to_rfc3339_opts(SecondsFormat::Secs, true), "description": description,
            "external_id": null, "form_id": "360001296232", "group_id": null, "id": ticket_id.to_string(),
            "is_public": true, "organization_id": null, "priority": "LOW", "requester_id": "366630390791",
            "status": "NEW", "subject": subject, "submitter_id": "366630390791", "tags": [], "type": "QUESTION",
            "updated_at": now.to_rfc3339_opts(SecondsFormat::Secs, true), "via": {"channel": "web_service"}
        },
        "event": {},
        "id": delivery_id,
        "subject": format!("zen:ticket:{ticket_id}"),
        "time": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "type": "zen:event-type:ticket.created",
        "zendesk_event_version": "2022-11-06"
    })
    .to_string();
    let ts = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let sig = STANDARD.encode(hmac_sha256(
        secret.as_bytes(),
        &[ts.as_bytes(), body.as_bytes()],
    ));
    SignedWebhook {
        source: "zendesk",
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (
                "x-zendesk-webhook-id".into(),
                "01GH3K5ZJ0T6Q8XR7E2Y3S4VWN".into(),
            ),
            ("x-zendesk-webhook-signature-timestamp".into(), ts),
            ("x-zendesk-webhook-signature".into(), sig),
        ],
        body,
    }
}

/// Slack Events API `event_callback` for a channel message.
pub fn slack_message(
    secret: &str,
    event_id: &str,
    channel: &str,
    text: &str,
    now: DateTime<Utc>,
) -> SignedWebhook {
    let body = json!({
        "token": "XXYYZZ", "team_id": "T0EXAMPLE", "api_app_id": "A0SWITCHY",
        "event": {"type": "message", "channel": channel, "user": "U061F7AUR", "text": text,
                  "ts": format!("{}.000200", now.timestamp()), "channel_type": "channel",
                  "event_ts": format!("{}.000200", now.timestamp())},
        "type": "event_callback", "event_id": event_id, "event_time": now.timestamp(),
        "authorizations": [{"team_id": "T0EXAMPLE", "user_id": "U0SWITCHY", "is_bot": true}]
    })
    .to_string();
    slack_signed(secret, body, now)
}

/// Any body, signed the way Slack signs it.
pub fn slack_signed(secret: &str, body: String, now: DateTime<Utc>) -> SignedWebhook {
    let ts = now.timestamp().to_string();
    let sig = hmac_sha256(
        secret.as_bytes(),
        &[b"v0:", ts.as_bytes(), b":", body.as_bytes()],
    );
    SignedWebhook {
        source: "slack",
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-slack-request-timestamp".into(), ts),
            (
                "x-slack-signature".into(),
                format!("v0={}", hex::encode(sig)),
            ),
        ],
        body,
    }
}

/// Jira Cloud `jira:issue_created`, signed with the webhook's secret.
pub fn jira_issue_created(
    secret: &str,
    delivery_id: &str,
    key: &str,
    summary: &str,
    description: &str,
    now: DateTime<Utc>,
) -> SignedWebhook {
    let body = json!({
        "timestamp": now.timestamp_millis(),
        "webhookEvent": "jira:issue_created",
        "issue_event_type_name": "issue_created",
        "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof", "active": true},
        "issue": {"id": "10002", "key": key, "self": format!("https://example.atlassian.net/rest/api/3/issue/10002"),
                  "fields": {"summary": summary, "description": description,
                             "issuetype": {"name": "Bug"}, "priority": {"name": "High"},
                             "project": {"key": key.split('-').next().unwrap_or("OPS")},
                             "created": now.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()}}
    })
    .to_string();
    let sig = hmac_sha256(secret.as_bytes(), &[body.as_bytes()]);
    SignedWebhook {
        source: "jira",
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-atlassian-webhook-identifier".into(), delivery_id.into()),
            (
                "x-hub-signature".into(),
                format!("sha256={}", hex::encode(sig)),
            ),
        ],
        body,
    }
}
