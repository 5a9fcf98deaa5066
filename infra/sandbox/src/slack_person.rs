//! A person in the sandbox's Slack: clicks a button (or picks an option) on a message the app
//! posted, and Slack sends the app its documented `block_actions` interaction — form-encoded
//! `payload=<JSON>`, signed `v0=HMAC-SHA256(signing secret, "v0:{ts}:{body}")` — with a
//! `response_url` (Slack's `hooks.slack.com/actions/…`, here the sandbox's) that records what the
//! app answers there in the ledger.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{LedgerEntry, Sandbox, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/actions/{team}/{id}/{token}", post(respond))
}

/// What an app posts to a `response_url`: recorded, answered as Slack answers.
async fn respond(
    State(shared): State<Arc<Shared>>,
    Path((_team, id, _token)): Path<(String, String, String)>,
    body: String,
) -> Response {
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    shared
        .state
        .lock()
        .expect("sandbox state")
        .ledger
        .push(LedgerEntry {
            vendor: "slack",
            operation: "response_url".into(),
            object_id: id,
            detail: message,
        });
    Json(json!({"ok": true})).into_response()
}

/// One click: who, on which message, on what.
pub struct Click<'a> {
    pub user: &'a str,
    pub channel: &'a str,
    pub ts: &'a str,
    pub action_id: &'a str,
    /// For a select: the option's value picked; for a text field: what the person typed (then
    /// Enter).
    pub option: Option<&'a str>,
}

impl Sandbox {
    /// The app's messages in `channel` with blocks holding `action_id`, oldest first: `ts` each.
    pub fn slack_messages_with(&self, channel: &str, action_id: &str) -> Vec<String> {
        let state = self.state.lock().expect("sandbox state");
        state
            .slack_messages
            .get(channel)
            .map(|ms| {
                ms.iter()
                    .filter(|m| m["blocks"].to_string().contains(action_id))
                    .filter_map(|m| m["ts"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A message as it stands now (after any `chat.update`).
    pub fn slack_message(&self, channel: &str, ts: &str) -> Option<Value> {
        let state = self.state.lock().expect("sandbox state");
        state
            .slack_messages
            .get(channel)?
            .iter()
            .find(|m| m["ts"] == ts)
            .cloned()
    }

    /// The signed interaction Slack sends `app_url` when a person clicks: its status and body.
    /// `Err` when the message or its element does not exist (a person cannot click it).
    pub async fn slack_click(
        &self,
        app_url: &str,
        signing_secret: &str,
        click: Click<'_>,
    ) -> Result<(u16, String), String> {
        let body = self.interaction(click)?;
        self.slack_send_signed(
            app_url,
            signing_secret,
            body,
            chrono::Utc::now().timestamp(),
        )
        .await
    }

    /// The form-encoded `block_actions` body for `click`, as Slack documents the payload.
    pub fn interaction(&self, click: Click<'_>) -> Result<String, String> {
        let message = self
            .slack_message(click.channel, click.ts)
            .ok_or_else(|| format!("no message {} in {}", click.ts, click.channel))?;
        let (block_id, element) = message["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|b| {
                // Buttons and selects sit in an actions block; a text field in an input block.
                let mut elements = b["elements"].as_array().cloned().unwrap_or_default();
                if b["type"] == "input" {
                    elements.push(b["element"].clone());
                }
                elements
                    .into_iter()
                    .find(|e| e["action_id"] == click.action_id)
                    .map(|e| (b["block_id"].clone(), e))
            })
            .ok_or_else(|| format!("the message has no {} to click", click.action_id))?;
        let now = chrono::Utc::now();
        let action_ts = format!("{}.{:06}", now.timestamp(), now.timestamp_subsec_micros());
        let mut action = json!({"action_id": click.action_id, "block_id": block_id,
                                "type": element["type"], "action_ts": action_ts});
        let mut values = json!({});
        if element["type"] == "plain_text_input" {
            // Slack sends the field's text both as the action's value and in the state.
            let typed = click.option.unwrap_or_default();
            action["value"] = json!(typed);
            values[block_id.as_str().unwrap_or_default()][click.action_id] =
                json!({"type": "plain_text_input", "value": typed});
        } else if element["type"] == "static_select" {
            let picked = element["options"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| Some(o["value"].as_str().unwrap_or_default()) == click.option)
                .ok_or_else(|| format!("the select has no option {:?}", click.option))?;
            action["selected_option"] = picked.clone();
            action["placeholder"] = element["placeholder"].clone();
        } else {
            for k in ["text", "value", "style"] {
                if !element[k].is_null() {
                    action[k] = element[k].clone();
                }
            }
        }
        let n = {
            let mut state = self.state.lock().expect("sandbox state");
            state.next_id += 1;
            state.next_id
        };
        let channel_name = {
            let state = self.state.lock().expect("sandbox state");
            state
                .slack_channels
                .iter()
                .find(|(_, id)| id.as_str() == click.channel)
                .map(|(name, _)| name.trim_start_matches('#').to_owned())
                .unwrap_or_default()
        };
        let payload = json!({
            "type": "block_actions",
            "user": {"id": click.user, "username": click.user.to_lowercase(), "name": click.user.to_lowercase(), "team_id": "T0EXAMPLE"},
            "api_app_id": "A0SWITCHY", "token": "XXYYZZ",
            "container": {"type": "message", "message_ts": click.ts, "channel_id": click.channel, "is_ephemeral": false},
            "trigger_id": format!("{n}.1234567890.{:032x}", n),
            "team": {"id": "T0EXAMPLE", "domain": "example"},
            "enterprise": null, "is_enterprise_install": false,
            "channel": {"id": click.channel, "name": channel_name},
            "message": message,
            "state": {"values": values},
            "response_url": format!("http://{}/slack-hooks/actions/T0EXAMPLE/{n}/{:016x}", self.addr, n * 7919),
            "actions": [action],
        });
        Ok(form(&payload))
    }

    /// POST `body` to `app_url` signed as Slack signs at `timestamp` (epoch seconds).
    pub async fn slack_send_signed(
        &self,
        app_url: &str,
        signing_secret: &str,
        body: String,
        timestamp: i64,
    ) -> Result<(u16, String), String> {
        let ts = timestamp.to_string();
        let key =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, signing_secret.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, format!("v0:{ts}:{body}").as_bytes());
        let signature: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let resp = reqwest::Client::new()
            .post(app_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", format!("v0={signature}"))
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }
}

/// An interaction payload form-encoded as Slack posts it (`payload=<JSON>`).
pub fn form(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap_or_default()
}
