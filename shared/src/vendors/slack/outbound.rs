//! Slack Web API. Auth: bearer token (bot token, or the access token of a rotating OAuth grant).
//! Retry logic (see `triage` below): HTTP 429 → rate limited with `Retry-After`; **HTTP 200
//! with `ok: false`** is an error by its `error` code (`ratelimited` → rate limited,
//! `token_expired`/`invalid_auth` → refresh, `token_revoked` → reconnect, `internal_error` →
//! transient, the rest → permanent).
//!
//! Exactly once: Slack has no idempotency key, so every post carries message metadata
//! (`event_type: switchyard_action`, the action's key). When a post may already have happened (its
//! answer was lost, or a worker died holding it) the channel's recent history is read first
//! (`conversations.history` with `include_all_metadata`; scope `channels:history`) and a message
//! with the key counts as done.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::connectors::{param, Connector, ConnectorError, Outcome, ResolveError};

/// The message metadata type switchyard's posts carry (with the action's key).
const METADATA_TYPE: &str = "switchyard_action";
use crate::connectors::excerpt;
use crate::connectors::triage::{
    by_status, draft, not_json, str_at, Draft, Kind as TriageKind, Refusal, Response,
};
use crate::drift::{Contract, Field, Kind, Shape};
use crate::routing::PlannedAction;
use crate::secrets::Credential;

/// What switchyard relies on in Slack's answers (Web API): the canary compares live answers
/// with it. A channel's `id` and `name` are how a `#name` in a route finds its channel.
pub(crate) const CONTRACT: Contract = Contract {
    connector: "slack",
    api_version: "web-api",
    shapes: &[
        Shape {
            object: "auth",
            call: "POST /api/auth.test",
            fields: &[
                Field::new("ok", Kind::Bool).read(),
                Field::new("team_id", Kind::String).read(),
                Field::new("user_id", Kind::String),
            ],
        },
        Shape {
            object: "channel",
            call: "GET /api/conversations.list",
            fields: &[
                Field::new("id", Kind::String).read(),
                Field::new("name", Kind::String).read(),
                Field::new("is_channel", Kind::Bool),
                Field::new("is_archived", Kind::Bool),
                Field::new("is_private", Kind::Bool),
                Field::new("created", Kind::Epoch),
                Field::new("topic", Kind::Object).sometimes(),
                Field::new("topic/value", Kind::String),
            ],
        },
    ],
};

/// The Slack connector: calls the Web API with a bot or OAuth access token.
pub struct Slack {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
}

impl Slack {
    /// A connector over a bearer or OAuth credential's base URL and access token; a credential
    /// of another type, or one with no access token yet, is refused.
    pub fn new(http: reqwest::Client, credential: Credential) -> Result<Self, ResolveError> {
        let (base_url, token) = crate::connectors::bearer("slack", credential)?;
        Ok(Self {
            http,
            base_url,
            token,
        })
    }

    /// A read method, with its arguments as query parameters (as Slack's read methods take them).
    async fn read(&self, method: &str, query: &[(&str, String)]) -> Result<Value, ConnectorError> {
        let query = serde_urlencoded::to_string(query)
            .map_err(|e| ConnectorError::Unsupported(format!("query for {method}: {e}")))?;
        let req = self
            .http
            .get(format!("{}/api/{method}?{query}", self.base_url))
            .bearer_auth(self.token.expose_secret());
        send(req).await
    }

    /// Page through a read method (Slack's cursor pagination), at most `pages` pages, until
    /// `pick` finds something in one.
    async fn find_paged<T>(
        &self,
        method: &str,
        query: &[(&str, String)],
        pages: usize,
        pick: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<T>, ConnectorError> {
        let mut cursor = String::new();
        for _ in 0..pages {
            let mut q = query.to_vec();
            q.push(("cursor", cursor));
            let page = self.read(method, &q).await?;
            if let Some(found) = pick(&page) {
                return Ok(Some(found));
            }
            cursor = page["response_metadata"]["next_cursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if cursor.is_empty() {
                break;
            }
        }
        Ok(None)
    }

    /// The channel's id: `C…`/`G…` as given, a `#name` looked up with `conversations.list`.
    async fn channel_id(&self, channel: &str) -> Result<Option<String>, ConnectorError> {
        let Some(name) = channel.strip_prefix('#') else {
            return Ok(Some(channel.to_owned()));
        };
        let query = [
            ("types", "public_channel,private_channel".to_owned()),
            ("limit", "200".to_owned()),
        ];
        self.find_paged("conversations.list", &query, 10, |page| {
            for c in page["channels"].as_array()?.iter().take(5) {
                crate::connectors::drift::observe(&CONTRACT, "channel", c, &[]);
            }
            page["channels"].as_array()?.iter().find_map(|c| {
                (c["name"].as_str() == Some(name)).then(|| c["id"].as_str().map(str::to_owned))?
            })
        })
        .await
    }

    /// The `ts` of a message this action already posted in the last two hours, if any.
    async fn already_posted(
        &self,
        channel: &str,
        key: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let Some(id) = self.channel_id(channel).await? else {
            return Ok(None);
        };
        let oldest = (chrono::Utc::now() - chrono::Duration::hours(2)).timestamp();
        let query = [
            ("channel", id),
            ("oldest", oldest.to_string()),
            ("limit", "200".to_owned()),
            ("include_all_metadata", "true".to_owned()),
        ];
        self.find_paged("conversations.history", &query, 5, |page| {
            page["messages"].as_array()?.iter().find_map(|m| {
                let ours = m["metadata"]["event_type"] == METADATA_TYPE
                    && m["metadata"]["event_payload"]["key"] == key;
                ours.then(|| m["ts"].as_str().map(str::to_owned))?
            })
        })
        .await
    }

    async fn call(&self, method: &str, body: &Value) -> Result<Value, ConnectorError> {
        let req = self
            .http
            .post(format!("{}/api/{method}", self.base_url))
            .bearer_auth(self.token.expose_secret())
            .json(body);
        send(req).await
    }
}

/// The members of a Slack user group (`usergroups.users.list`, scope `usergroups:read`): who
/// may decide where an approval names the group.
pub(crate) async fn group_members(
    connectors: &crate::vendors::Connectors,
    group: &str,
) -> Result<Vec<String>, ConnectorError> {
    let credential = connectors.credential("slack").await.map_err(|e| match e {
        // A store or token endpoint that may answer later; anything else needs a person.
        ResolveError::Secret(_) | ResolveError::Auth(_) => ConnectorError::Transient(e.to_string()),
        _ => ConnectorError::Unsupported(e.to_string()),
    })?;
    let slack = Slack::new(connectors.http.clone(), credential)
        .map_err(|e| ConnectorError::Unsupported(e.to_string()))?;
    let page = slack
        .read("usergroups.users.list", &[("usergroup", group.to_owned())])
        .await?;
    Ok(page["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect())
}

/// Check a Slack token (the rotate function tests a pending token with it).
pub async fn auth_test(
    http: &reqwest::Client,
    base_url: &str,
    token: &SecretString,
) -> Result<Outcome, ConnectorError> {
    let slack = Slack {
        http: http.clone(),
        base_url: base_url.trim_end_matches('/').to_owned(),
        token: token.clone(),
    };
    slack.probe().await
}

#[async_trait]
impl Connector for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    async fn perform(
        &self,
        action: &PlannedAction,
        idempotency_key: &str,
    ) -> Result<Outcome, ConnectorError> {
        match action.action.as_str() {
            "post_message" => {
                let channel = param(action, "channel")?;
                if crate::connectors::is_maybe_done() {
                    if let Some(ts) = self.already_posted(channel, idempotency_key).await? {
                        return Ok(Outcome {
                            object_id: Some(ts),
                            detail: format!("message already posted to {channel} for this action"),
                        });
                    }
                }
                let mut body = json!({
                    "channel": channel, "text": param(action, "text")?,
                    "metadata": {"event_type": METADATA_TYPE, "event_payload": {"key": idempotency_key}},
                });
                if let Some(ts) = action.params.get("thread_ts") {
                    body["thread_ts"] = json!(ts);
                }
                if let Some(blocks) = blocks_of(action)? {
                    body["blocks"] = blocks;
                }
                let resp = self.call("chat.postMessage", &body).await?;
                let ts = resp.get("ts").and_then(Value::as_str).map(str::to_owned);
                let channel = resp
                    .get("channel")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Ok(Outcome {
                    object_id: ts,
                    detail: format!("message posted to {channel}"),
                })
            }
            // Replace a message switchyard posted (the review message, once a person decided):
            // the same text again is the same message, so a repeat changes nothing.
            "update_message" => {
                let channel = param(action, "channel")?;
                let channel = self.channel_id(channel).await?.ok_or_else(|| {
                    ConnectorError::permanent(format!(
                        "no channel {channel} to update a message in"
                    ))
                })?;
                let ts = param(action, "ts")?;
                let mut body =
                    json!({"channel": channel, "ts": ts, "text": param(action, "text")?});
                if let Some(blocks) = blocks_of(action)? {
                    body["blocks"] = blocks;
                }
                self.call("chat.update", &body).await?;
                Ok(Outcome {
                    object_id: Some(ts.to_owned()),
                    detail: format!("message {ts} updated in {channel}"),
                })
            }
            other => Err(ConnectorError::Unsupported(format!(
                "slack has no action {other:?}"
            ))),
        }
    }

    async fn download(
        &self,
        file: &crate::event::Attachment,
        limits: crate::connectors::download::Limits,
    ) -> Result<Vec<u8>, ConnectorError> {
        use crate::connectors::download::{download, origin_of, Fetch};
        // `url_private` is served by files.slack.com, and only with the bot token.
        let url = file
            .url
            .as_deref()
            .ok_or_else(|| ConnectorError::permanent("the file has no url_private"))?;
        let mut trusted: Vec<String> = origin_of(&self.base_url).into_iter().collect();
        trusted.push("https://files.slack.com".into());
        let fetch = Fetch {
            vendor: "slack",
            rules: triage,
            trusted: &trusted,
            limits,
        };
        download(&self.http, url, &fetch, |r| {
            r.bearer_auth(self.token.expose_secret())
        })
        .await
    }

    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        let resp = self.call("auth.test", &json!({})).await?;
        let team = resp
            .get("team_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Outcome {
            object_id: team,
            detail: "authenticated".into(),
        })
    }

    fn contract(&self) -> Option<&'static Contract> {
        Some(&CONTRACT)
    }

    async fn samples(&self) -> Result<Vec<(&'static str, Vec<Value>)>, ConnectorError> {
        let auth = self.call("auth.test", &json!({})).await?;
        let page = self
            .read(
                "conversations.list",
                &[
                    ("types", "public_channel".to_owned()),
                    ("exclude_archived", "true".to_owned()),
                    ("limit", "5".to_owned()),
                ],
            )
            .await?;
        let channels = page["channels"].as_array().cloned().unwrap_or_default();
        Ok(vec![("auth", vec![auth]), ("channel", channels)])
    }

    async fn grants(
        &self,
        actions: &std::collections::BTreeSet<String>,
    ) -> Result<crate::connectors::grants::Grants, ConnectorError> {
        // auth.test answers the token's scopes in the `x-oauth-scopes` header.
        let req = self
            .http
            .post(format!("{}/api/auth.test", self.base_url))
            .bearer_auth(self.token.expose_secret());
        let scopes: Vec<String> = crate::connectors::send_with("slack", req, |a| {
            let scopes = a
                .headers
                .get("x-oauth-scopes")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            crate::connectors::read_response(triage, a.status, &a.headers, a.body).map(|_| scopes)
        })
        .await?;
        Ok(crate::connectors::grants::Grants::compare(
            "slack", actions, scopes, required,
        ))
    }
}

/// Block Kit layout as JSON text; `text` stays as the notification fallback. Blocks are the
/// route's own JSON (or switchyard's review card); text that merely looks like JSON is not.
fn blocks_of(action: &PlannedAction) -> Result<Option<Value>, ConnectorError> {
    if !action.params.contains_key("blocks") {
        return Ok(None);
    }
    let blocks: Value = action
        .json_param("blocks")
        .ok_or_else(|| {
            ConnectorError::Unsupported("blocks must be written in the route as a JSON list".into())
        })?
        .map_err(|e| ConnectorError::Unsupported(format!("blocks is not JSON: {e}")))?;
    if !blocks.is_array() {
        return Err(ConnectorError::Unsupported(
            "blocks must be a JSON list".into(),
        ));
    }
    Ok(Some(blocks))
}

/// The bot token scopes each action needs (Slack's method reference).
fn required(action: &str) -> &'static [&'static str] {
    match action {
        // channels:history lets a post whose answer was lost be found instead of repeated.
        "post_message" => &["chat:write", "channels:history"],
        "update_message" => &["chat:write"],
        _ => &[],
    }
}

// ---------------------------------------------------------------- triage
// Which answers retry, which 200s are errors, which refusals mean re-authorization.

/// Send one request to slack and read its answer with [`triage`] (one external-call record).
async fn send(req: reqwest::RequestBuilder) -> Result<serde_json::Value, ConnectorError> {
    crate::connectors::send("slack", triage, req).await
}

/// Slack Web API: errors in HTTP 200 bodies (`{"ok": false, "error": "…"}`); HTTP 429 with
/// `Retry-After`. Incoming webhooks answer plain text (`ok`, `invalid_payload`, `no_service`).
pub(crate) fn triage(r: &Response) -> Draft {
    if r.status == 429 {
        return draft(
            TriageKind::RateLimited,
            "HTTP 429 (Slack rate limit for this method)",
        );
    }
    let Some(v) = r.json() else {
        let text = r.body.trim();
        if (200..300).contains(&r.status) && text == "ok" {
            return draft(TriageKind::Ok, "webhook accepted");
        }
        if (200..300).contains(&r.status) && !text.is_empty() && !text.starts_with('<') {
            return slack_code(text, r.status);
        }
        if !(200..300).contains(&r.status) && slack_code_like(text) {
            return slack_code(text, r.status);
        }
        return if (200..300).contains(&r.status) {
            not_json(r)
        } else {
            by_status(r, "")
        };
    };
    match v.get("ok") {
        Some(Value::Bool(true)) => {
            let warning = str_at(&v, "/warning")
                .map(|w| format!(" (warning: {w})"))
                .unwrap_or_default();
            draft(TriageKind::Ok, format!("ok{warning}"))
        }
        Some(Value::Bool(false)) => {
            let mut d = slack_code(str_at(&v, "/error").unwrap_or("unknown_error"), r.status);
            // missing_scope names the scope the method needs.
            if let Some(needed) = str_at(&v, "/needed") {
                d.reason = format!("{}; needs {needed}", d.reason);
            }
            d
        }
        _ if !(200..300).contains(&r.status) => by_status(r, ""),
        // Every Web API answer carries `ok`; without it this is not Slack talking (a proxy).
        _ => draft(
            TriageKind::Transient,
            format!(
                "HTTP {} without Slack's `ok` field: {}",
                r.status,
                excerpt(&r.body)
            ),
        ),
    }
}

fn slack_code_like(text: &str) -> bool {
    !text.is_empty() && text.len() < 64 && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn slack_code(code: &str, status: u16) -> Draft {
    let kind = match code {
        "ratelimited" | "rate_limited" => TriageKind::RateLimited,
        "invalid_auth" | "not_authed" | "token_expired" => TriageKind::Auth,
        "token_revoked"
        | "account_inactive"
        | "app_uninstalled"
        | "no_service"
        | "invalid_refresh_token" => TriageKind::ReauthRequired,
        "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "team_added_to_org"
        | "rollup_error" => TriageKind::Transient,
        _ if status >= 500 => TriageKind::Transient,
        // missing_scope, not_in_channel, channel_not_found, invalid_blocks, msg_too_long, …
        _ => TriageKind::Permanent,
    };
    let hint = match code {
        "missing_scope" => " (the token lacks a scope; a human must add it and reinstall)",
        "token_revoked" | "app_uninstalled" => " (a human must reinstall or reconnect)",
        _ => "",
    };
    let refusal = match code {
        // The workspace's IP allow-list refused the network the call came from.
        "accesslimited" => Refusal::IpAllowList,
        "missing_scope" | "not_allowed_token_type" => Refusal::MissingPermission,
        "channel_not_found" | "message_not_found" | "thread_not_found" => Refusal::NotFound,
        _ => Refusal::Unspecified,
    };
    draft(kind, format!("Slack error {code} (HTTP {status}){hint}")).refused(refusal)
}

/// chat.postMessage is limited per channel.
pub(crate) fn pacing_class(action: &PlannedAction) -> Option<String> {
    (action.action == "post_message").then(|| {
        format!(
            "post_message#{}",
            action.params.get("channel").map_or("", String::as_str)
        )
    })
}
