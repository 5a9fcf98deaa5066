//! Slack Web API, as documented: bearer tokens; errors as **HTTP 200 `{"ok":false,"error":…}`**;
//! `chat.postMessage` answers `{"ok":true,"channel","ts","message"}`; `oauth.v2.access` with
//! `grant_type=refresh_token` rotates tokens, and a refresh token works once
//! (`invalid_refresh_token` after that). Over the posting limit: HTTP 429 with `Retry-After`.
//! `usergroups.users.list` answers `{"ok":true,"users":[…]}` (scope `usergroups:read`;
//! `no_such_subteam` for a group that does not exist).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Query;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

use super::{LedgerEntry, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .merge(super::files::slack_routes())
        .route("/api/auth.test", post(auth_test))
        .route("/api/chat.postMessage", post(post_message))
        .route("/api/chat.update", post(update_message))
        .route("/api/oauth.v2.access", post(oauth_access))
        .route("/api/conversations.list", get(conversations_list))
        .route("/api/conversations.history", get(conversations_history))
        .route("/api/usergroups.users.list", get(usergroup_users))
}

fn error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code})).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The Slack error code for a request's token, or `None` when it is valid.
pub(crate) fn check(shared: &Shared, headers: &HeaderMap) -> Option<&'static str> {
    let Some(token) = bearer(headers) else {
        return Some("not_authed");
    };
    let state = shared.state.lock().expect("sandbox state");
    (!state.slack_access_tokens.contains(token)).then_some("invalid_auth")
}

/// Slack's refusal of a request whose token is not valid or lacks `scope`
/// (`missing_scope` names what was needed and what the token has); `None` when it may go on.
fn refused(shared: &Shared, headers: &HeaderMap, scope: &str) -> Option<Response> {
    if let Some(code) = check(shared, headers) {
        return Some(error(code));
    }
    let scopes = granted_scopes(shared);
    (!scopes.contains(&scope)).then(|| {
        Json(
            json!({"ok": false, "error": "missing_scope", "needed": scope,
                    "provided": scopes.join(",")}),
        )
        .into_response()
    })
}

async fn auth_test(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(code) = check(&shared, &headers) {
        return error(code);
    }
    let scopes = granted_scopes(&shared);
    (
        [("x-oauth-scopes", scopes.join(","))],
        Json(json!({"ok": true, "url": "https://example.slack.com/", "team": "Example", "user": "switchyard",
                "team_id": "T0EXAMPLE", "user_id": "U0SWITCHY", "bot_id": "B0SWITCHY", "is_enterprise_install": false})),
    )
        .into_response()
}

/// The bot token's scopes: the app's install scopes less any an admin removed.
fn granted_scopes(shared: &Shared) -> Vec<&'static str> {
    let state = shared.state.lock().expect("sandbox state");
    [
        "chat:write",
        "chat:write.public",
        "channels:read",
        "channels:history",
        "usergroups:read",
    ]
    .into_iter()
    .filter(|s| state.has("slack", s))
    .collect()
}

async fn post_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refusal) = refused(&shared, &headers, "chat:write") {
        return refusal;
    }
    // chat.postMessage: about one message per second per channel, then HTTP 429.
    if let super::ratelimit::Verdict::Limited { retry_after } = shared
        .state
        .lock()
        .expect("sandbox state")
        .slack_limits
        .check(std::time::Instant::now())
    {
        let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
    }
    let Ok(payload) = serde_json::from_str::<Value>(&body) else {
        return error("invalid_json");
    };
    let Some(channel) = payload.get("channel").and_then(Value::as_str) else {
        return error("channel_not_found");
    };
    let text = payload
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if text.is_empty() && payload.get("blocks").is_none() {
        return error("no_text");
    }
    let mut state = shared.state.lock().expect("sandbox state");
    // Channels may be named (#incidents) or given by id (C0INCIDENTS).
    let id = state
        .slack_channels
        .iter()
        .find(|(name, id)| name.as_str() == channel || id.as_str() == channel)
        .map(|(_, id)| id.clone());
    let Some(channel_id) = id else {
        return error("channel_not_found");
    };
    state.next_id += 1;
    let ts = format!(
        "{}.{:06}",
        chrono::Utc::now().timestamp(),
        state.next_id % 1_000_000
    );
    let mut message = json!({"type": "message", "text": text, "user": "U0SWITCHY", "bot_id": "B0SWITCHY", "ts": ts,
                         "thread_ts": payload.get("thread_ts")});
    if let Some(blocks) = payload.get("blocks") {
        message["blocks"] = blocks.clone();
    }
    let mut stored = message.clone();
    if let Some(m) = payload.get("metadata") {
        stored["metadata"] = m.clone();
    }
    state
        .slack_messages
        .entry(channel_id.clone())
        .or_default()
        .push(stored);
    state.ledger.push(LedgerEntry {
        vendor: "slack",
        operation: "chat.postMessage".into(),
        object_id: channel_id.clone(),
        detail: message.clone(),
    });
    Json(json!({"ok": true, "channel": channel_id, "ts": ts, "message": message})).into_response()
}

/// `chat.update`: replace a message's `text` and `blocks`. Only the app's own messages
/// (`cant_update_message`), by channel id and `ts` (`message_not_found`); same scope as posting.
async fn update_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refusal) = refused(&shared, &headers, "chat:write") {
        return refusal;
    }
    let Ok(payload) = serde_json::from_str::<Value>(&body) else {
        return error("invalid_json");
    };
    let (Some(channel), Some(ts)) = (
        payload.get("channel").and_then(Value::as_str),
        payload.get("ts").and_then(Value::as_str),
    ) else {
        return error("message_not_found");
    };
    let mut state = shared.state.lock().expect("sandbox state");
    if !state.slack_channels.values().any(|id| id == channel) {
        return error("channel_not_found");
    }
    let Some(message) = state
        .slack_messages
        .get_mut(channel)
        .and_then(|ms| ms.iter_mut().find(|m| m["ts"] == ts))
    else {
        return error("message_not_found");
    };
    if message["bot_id"] != "B0SWITCHY" {
        return error("cant_update_message");
    }
    if let Some(text) = payload.get("text") {
        message["text"] = text.clone();
    }
    match payload.get("blocks") {
        Some(blocks) => message["blocks"] = blocks.clone(),
        None => {
            if let Some(m) = message.as_object_mut() {
                m.remove("blocks");
            }
        }
    }
    let updated = message.clone();
    state.ledger.push(LedgerEntry {
        vendor: "slack",
        operation: "chat.update".into(),
        object_id: channel.to_owned(),
        detail: json!({"ts": ts, "text": updated["text"], "blocks": updated["blocks"]}),
    });
    Json(json!({"ok": true, "channel": channel, "ts": ts, "text": updated["text"]})).into_response()
}

async fn oauth_access(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let c = &shared.credentials;
    if form.get("client_id") != Some(&c.slack_client_id)
        || form.get("client_secret") != Some(&c.slack_client_secret)
    {
        return error("invalid_client_id");
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return error("invalid_grant_type");
    }
    let Some(refresh) = form.get("refresh_token") else {
        return error("invalid_refresh_token");
    };
    let mut state = shared.state.lock().expect("sandbox state");
    // Single use: spending a refresh token removes it.
    if !state.slack_refresh_tokens.remove(refresh) {
        state.ledger.push(LedgerEntry {
            vendor: "slack",
            operation: "oauth.v2.access refused".into(),
            object_id: "T0EXAMPLE".into(),
            detail: json!({"error": "invalid_refresh_token"}),
        });
        return error("invalid_refresh_token");
    }
    let rnd = uuid::Uuid::new_v4().simple().to_string();
    let access = format!("xoxe.xoxb-1-{rnd}");
    let next_refresh = format!("xoxe-1-{}", uuid::Uuid::new_v4().simple());
    state.slack_access_tokens.insert(access.clone());
    state.slack_refresh_tokens.insert(next_refresh.clone());
    state.slack_rotations += 1;
    state.ledger.push(LedgerEntry {
        vendor: "slack",
        operation: "oauth.v2.access".into(),
        object_id: "T0EXAMPLE".into(),
        detail: json!({"grant_type": "refresh_token"}),
    });
    Json(
        json!({"ok": true, "app_id": "A0SWITCHY", "token_type": "bot", "access_token": access,
                "refresh_token": next_refresh, "expires_in": 43200, "scope": "chat:write",
                "team": {"id": "T0EXAMPLE", "name": "Example"}}),
    )
    .into_response()
}

/// `conversations.list`: the workspace's channels, `{id, name}` (names without `#`).
async fn conversations_list(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(code) = check(&shared, &headers) {
        return error(code);
    }
    let state = shared.state.lock().expect("sandbox state");
    let channels: Vec<Value> = state
        .slack_channels
        .iter()
        .map(|(name, id)| {
            // A public channel as conversations.list documents it.
            json!({"id": id, "name": name.trim_start_matches('#'), "is_channel": true,
                   "is_group": false, "is_im": false, "is_private": false, "is_archived": false,
                   "is_general": false, "is_member": true, "created": 1_449_252_889,
                   "creator": "U0SWITCHYARD", "num_members": 4,
                   "topic": {"value": "", "creator": "", "last_set": 0},
                   "purpose": {"value": "Where switchyard posts", "creator": "U0SWITCHYARD", "last_set": 1_449_252_889}})
        })
        .collect();
    Json(json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": ""}}))
        .into_response()
}

/// `conversations.history`: a channel's messages, newest first, from `oldest`; message metadata
/// only with `include_all_metadata=true`. Needs `channels:history`.
async fn conversations_history(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = refused(&shared, &headers, "channels:history") {
        return refusal;
    }
    let state = shared.state.lock().expect("sandbox state");
    let Some(channel) = q.get("channel") else {
        return error("channel_not_found");
    };
    if !state.slack_channels.values().any(|id| id == channel) {
        return error("channel_not_found");
    }
    let oldest: f64 = q.get("oldest").and_then(|o| o.parse().ok()).unwrap_or(0.0);
    let with_metadata = q.get("include_all_metadata").map(String::as_str) == Some("true");
    // Documented paging: `limit` (default 100, at most 999) messages a page, and an opaque
    // `cursor` (Slack's are base64 of `next_ts:<ts>`) naming where the next page starts.
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .map_or(100, |l| l.clamp(1, 999));
    let ts_of = |m: &Value| -> f64 { m["ts"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0.0) };
    let start_at: Option<f64> = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match base64::engine::general_purpose::STANDARD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix("next_ts:").and_then(|ts| ts.parse().ok()))
        {
            Some(ts) => Some(ts),
            None => return error("invalid_cursor"),
        },
    };
    let newest_first: Vec<&Value> = state
        .slack_messages
        .get(channel)
        .map(|ms| {
            ms.iter()
                .rev()
                .filter(|m| ts_of(m) >= oldest && start_at.is_none_or(|s| ts_of(m) <= s))
                .collect()
        })
        .unwrap_or_default();
    let messages: Vec<Value> = newest_first
        .iter()
        .take(limit)
        .map(|m| {
            let mut m = (*m).clone();
            if !with_metadata {
                if let Some(o) = m.as_object_mut() {
                    o.remove("metadata");
                }
            }
            m
        })
        .collect();
    let next_cursor = newest_first.get(limit).map_or(String::new(), |next| {
        base64::engine::general_purpose::STANDARD.encode(format!(
            "next_ts:{}",
            next["ts"].as_str().unwrap_or_default()
        ))
    });
    Json(
        json!({"ok": true, "messages": messages, "has_more": !next_cursor.is_empty(),
                "response_metadata": {"next_cursor": next_cursor}}),
    )
    .into_response()
}

/// `usergroups.users.list`: a user group's members' ids. Needs `usergroups:read`.
async fn usergroup_users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = refused(&shared, &headers, "usergroups:read") {
        return refusal;
    }
    let Some(group) = q.get("usergroup").filter(|g| !g.is_empty()) else {
        return error("invalid_arguments");
    };
    let state = shared.state.lock().expect("sandbox state");
    match state.slack_usergroups.get(group) {
        Some(users) => Json(json!({"ok": true, "users": users})).into_response(),
        None => error("no_such_subteam"),
    }
}
