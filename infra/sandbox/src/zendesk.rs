//! Zendesk Support API v2, as documented: basic auth `{email}/token:{api_token}`; 401
//! `{"error":"Couldn't authenticate you"}`; 404 `{"error":"RecordNotFound","description":"Not found"}`;
//! 422 `RecordInvalid` with `details`; a ticket update answers `{"ticket":…,"audit":…}`.
//! Over the account's per-minute limit: 429, `text/plain` "Number of allowed API requests per
//! minute exceeded", `retry-after` in seconds, `x-rate-limit` and `x-rate-limit-remaining: 0`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Value};

use super::{LedgerEntry, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v2/users/me.json", get(me))
        .route("/api/v2/tickets/{file}", put(update_ticket))
        .route("/api/v2/tickets/{id}/audits.json", get(list_audits))
        .route("/api/v2/ticket_fields.json", get(ticket_fields))
        .route(
            "/api/v2/tickets.json",
            get(list_tickets).post(create_ticket),
        )
        .merge(super::zendesk_users::routes())
        .merge(super::files::zendesk_routes())
}

/// `GET /api/v2/tickets.json[?external_id=…][&sort_by=updated_at&sort_order=desc&per_page=n]`.
async fn list_tickets(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !authenticated(&shared, &headers) {
        return unauthorized();
    }
    let state = shared.state.lock().expect("sandbox state");
    let mut tickets: Vec<Value> = state
        .zendesk_tickets
        .values()
        .filter(|t| {
            q.get("external_id")
                .is_none_or(|e| t["external_id"] == e.as_str())
        })
        .cloned()
        .collect();
    if q.get("sort_by").map(String::as_str) == Some("updated_at") {
        tickets.sort_by(|a, b| a["updated_at"].as_str().cmp(&b["updated_at"].as_str()));
    }
    if q.get("sort_order").map(String::as_str) == Some("desc") {
        tickets.reverse();
    }
    if let Some(n) = q.get("per_page").and_then(|n| n.parse::<usize>().ok()) {
        tickets.truncate(n.clamp(1, 100));
    }
    Json(json!({"tickets": tickets, "next_page": null, "previous_page": null, "count": tickets.len()}))
        .into_response()
}

async fn create_ticket(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(payload): Json<Value>,
) -> Response {
    if !authenticated(&shared, &headers) {
        return unauthorized();
    }
    let t = &payload["ticket"];
    if t.pointer("/comment/body").and_then(Value::as_str).is_none() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(
                json!({"error": "RecordInvalid", "description": "Record validation errors",
                "details": {"description": [{"description": "Description: cannot be blank"}]}}),
            ),
        )
            .into_response();
    }
    let mut state = shared.state.lock().expect("sandbox state");
    state.next_id += 1;
    let id = state.next_id;
    let mut ticket = new_ticket(id, t["subject"].as_str().unwrap_or_default());
    for field in ["external_id", "priority", "group_id", "assignee_id", "tags"] {
        if let Some(v) = t.get(field) {
            ticket[field] = v.clone();
        }
    }
    let drift = state.drift.get("zendesk").cloned().unwrap_or_default();
    if let Some(Value::Array(given)) = t.get("custom_fields") {
        let kept: Vec<Value> = given
            .iter()
            .filter(|f| known_custom_field(f["id"].as_u64(), &drift))
            .cloned()
            .collect();
        ticket["custom_fields"] = json!(kept);
    }
    ticket["description"] = t["comment"]["body"].clone();
    state.zendesk_tickets.insert(id, ticket.clone());
    state.ledger.push(LedgerEntry {
        vendor: "zendesk",
        operation: "create_ticket".into(),
        object_id: id.to_string(),
        detail: json!({"external_id": t["external_id"]}),
    });
    (
        StatusCode::CREATED,
        Json(json!({"ticket": ticket, "audit": {"id": id + 1, "ticket_id": id}})),
    )
        .into_response()
}

pub(crate) fn new_ticket(id: u64, subject: &str) -> Value {
    json!({
        "id": id, "url": format!("https://example.zendesk.com/api/v2/tickets/{id}.json"),
        "subject": subject, "status": "new", "priority": null, "group_id": null,
        "tags": [], "external_id": null, "assignee_id": null, "custom_fields": [],
        "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": null}},
        "created_at": "2024-01-15T10:31:00Z", "updated_at": "2024-01-15T10:31:00Z"
    })
}

/// The account's custom ticket field (a tagger), besides the one a drift may add.
pub const REFUND_REASON_FIELD: u64 = 360_000_000_001;

fn known_custom_field(id: Option<u64>, drift: &[super::drift::Drift]) -> bool {
    let drifted = super::drift::required_field(drift).and_then(|(f, _)| f.parse().ok());
    id.is_some_and(|id| id == REFUND_REASON_FIELD || Some(id) == drifted)
}

/// `GET /api/v2/ticket_fields.json`: the system fields, the account's custom field, and a custom field an admin made
/// required (the `required_field` drift). `required`: agents must fill it to solve a ticket.
async fn ticket_fields(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authenticated(&shared, &headers) {
        return unauthorized();
    }
    let field = |id: u64, kind: &str, title: &str, required: bool, removable: bool| {
        json!({"id": id, "url": format!("https://example.zendesk.com/api/v2/ticket_fields/{id}.json"),
               "type": kind, "title": title, "raw_title": title, "active": true,
               "required": required, "required_in_portal": !removable && kind == "subject",
               "visible_in_portal": true, "editable_in_portal": true, "removable": removable,
               "created_at": "2024-01-15T10:31:00Z", "updated_at": "2024-01-15T10:31:00Z"})
    };
    let mut fields = vec![
        field(22_001, "subject", "Subject", false, false),
        field(22_002, "description", "Description", false, false),
        field(22_003, "status", "Status", false, false),
        field(22_004, "priority", "Priority", false, false),
        field(22_005, "group", "Group", false, false),
        field(22_006, "assignee", "Assignee", false, false),
        field(REFUND_REASON_FIELD, "tagger", "Refund reason", false, true),
    ];
    let state = shared.state.lock().expect("sandbox state");
    let drift = state
        .drift
        .get("zendesk")
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some((id, title)) = super::drift::required_field(drift) {
        fields.push(field(
            id.parse().unwrap_or(360_012_345_678),
            "tagger",
            title,
            true,
            true,
        ));
    }
    let count = fields.len();
    Json(json!({"ticket_fields": fields, "next_page": null, "previous_page": null, "count": count}))
        .into_response()
}

pub(crate) fn authenticated(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!(
        "{}/token:{}",
        shared.credentials.zendesk_email, shared.credentials.zendesk_token
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .is_some_and(|raw| raw == expected.as_bytes())
}

/// The account's per-minute limit, as middleware: every answer carries `x-rate-limit`,
/// `x-rate-limit-remaining`, `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset`
/// (seconds); over the limit, 429 in `text/plain` with `retry-after`.
pub(crate) async fn limit(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let now = std::time::Instant::now();
    let (verdict, limit, reset) = {
        let mut state = shared.state.lock().expect("sandbox state");
        let verdict = state.zendesk_limits.check(now);
        let w = state.zendesk_limits.window.as_ref();
        (
            verdict,
            w.map(|w| w.limit),
            w.map(|w| w.reset_after(now)).unwrap_or_default(),
        )
    };
    let reset_secs = reset.as_secs_f64().ceil().max(1.0) as u64;
    match verdict {
        super::ratelimit::Verdict::Limited { retry_after } => {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("content-type", "text/plain".to_owned()),
                    ("retry-after", secs.to_string()),
                    ("x-rate-limit", limit.unwrap_or(700).to_string()),
                    ("x-rate-limit-remaining", "0".to_owned()),
                ],
                "Number of allowed API requests per minute exceeded",
            )
                .into_response()
        }
        super::ratelimit::Verdict::Allowed { remaining } => {
            let mut resp = next.run(req).await;
            if let Some(limit) = limit {
                let h = resp.headers_mut();
                for (name, value) in [
                    ("x-rate-limit", limit.to_string()),
                    ("ratelimit-limit", limit.to_string()),
                    ("x-rate-limit-remaining", remaining.to_string()),
                    ("ratelimit-remaining", remaining.to_string()),
                    ("ratelimit-reset", reset_secs.to_string()),
                ] {
                    if let Ok(v) = value.parse() {
                        h.insert(name, v);
                    }
                }
            }
            resp
        }
    }
}

pub(crate) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "Couldn't authenticate you"})),
    )
        .into_response()
}

async fn me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authenticated(&shared, &headers) {
        // Zendesk answers users/me for anonymous callers with an anonymous user, not a 401.
        return Json(json!({"user": {"id": null, "name": "Anonymous user", "role": "end-user"}}))
            .into_response();
    }
    // An admin who demotes the integration's user to end-user takes ticket access away.
    let role = if shared
        .state
        .lock()
        .expect("sandbox state")
        .has("zendesk", "role:agent")
    {
        "admin"
    } else {
        "end-user"
    };
    Json(json!({"user": {"id": 366630390791u64, "name": "switchyard", "email": shared.credentials.zendesk_email, "role": role}}))
        .into_response()
}

async fn update_ticket(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authenticated(&shared, &headers) {
        return unauthorized();
    }
    let Some(id) = file
        .strip_suffix(".json")
        .and_then(|i| i.parse::<u64>().ok())
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "InvalidEndpoint", "description": "Not found"})),
        )
            .into_response();
    };
    let Ok(payload) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "Unprocessable JSON", "description": "Could not parse the request body"})))
            .into_response();
    };
    let Some(update) = payload.get("ticket").and_then(Value::as_object) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": "ParameterMissing", "description": "Parameter ticket is required"}),
            ),
        )
            .into_response();
    };
    let mut state = shared.state.lock().expect("sandbox state");
    let audit_id = {
        state.next_id += 1;
        state.next_id
    };
    let drift = state.drift.get("zendesk").cloned().unwrap_or_default();
    let Some(ticket) = state.zendesk_tickets.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "RecordNotFound", "description": "Not found"})),
        )
            .into_response();
    };
    let mut events = Vec::new();
    if let Some(group) = update.get("group_id") {
        if !group.is_u64() {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(
                    json!({"error": "RecordInvalid", "description": "Record validation errors",
                            "details": {"group_id": [{"description": "Group: is invalid"}]}}),
                ),
            )
                .into_response();
        }
        ticket["group_id"] = group.clone();
        events.push(json!({"type": "Change", "field_name": "group_id", "value": group}));
    }
    for field in ["assignee_id", "priority"] {
        if let Some(v) = update.get(field) {
            ticket[field] = v.clone();
            events.push(json!({"type": "Change", "field_name": field, "value": v}));
        }
    }
    if let Some(Value::Array(given)) = update.get("custom_fields") {
        // Merged by id; a field the account does not have is dropped without a word (200).
        let current = ticket["custom_fields"]
            .as_array_mut()
            .expect("custom_fields is a list");
        for f in given
            .iter()
            .filter(|f| known_custom_field(f["id"].as_u64(), &drift))
        {
            current.retain(|c| c["id"] != f["id"]);
            current.push(f.clone());
            events.push(
                json!({"type": "Change", "field_name": f["id"].to_string(), "value": f["value"]}),
            );
        }
    }
    if let Some(Value::Array(add)) = update.get("additional_tags") {
        let tags = ticket["tags"].as_array_mut().expect("tags is a list");
        for t in add {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        events.push(json!({"type": "Change", "field_name": "tags", "value": ticket["tags"]}));
    }
    if let Some(comment) = update.get("comment") {
        events.push(json!({"type": "Comment", "body": comment.get("body"), "public": comment.get("public").and_then(Value::as_bool).unwrap_or(true)}));
    }
    ticket["updated_at"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let ticket = ticket.clone();
    let audit = json!({"id": audit_id, "ticket_id": id, "events": events});
    // The audit keeps the update's `metadata` as its custom metadata, beside the system's.
    let mut stored = audit.clone();
    stored["metadata"] = json!({"system": {"client": "switchyard"},
                                "custom": update.get("metadata").cloned().unwrap_or(json!({}))});
    stored["created_at"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    state.zendesk_audits.entry(id).or_default().push(stored);
    state.ledger.push(LedgerEntry {
        vendor: "zendesk",
        operation: "update_ticket".into(),
        object_id: id.to_string(),
        detail: audit.clone(),
    });
    Json(json!({"ticket": ticket, "audit": audit})).into_response()
}

/// `GET /api/v2/tickets/{id}/audits.json[?sort_order=desc]`: the ticket's audits with their metadata.
async fn list_audits(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authenticated(&shared, &headers) {
        return unauthorized();
    }
    let state = shared.state.lock().expect("sandbox state");
    let Some(ticket) = id
        .parse::<u64>()
        .ok()
        .filter(|t| state.zendesk_tickets.contains_key(t))
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "RecordNotFound", "description": "Not found"})),
        )
            .into_response();
    };
    let mut audits = state
        .zendesk_audits
        .get(&ticket)
        .cloned()
        .unwrap_or_default();
    if q.get("sort_order").map(String::as_str) == Some("desc") {
        audits.reverse();
    }
    let count = audits.len();
    Json(json!({"audits": audits, "next_page": null, "previous_page": null, "count": count}))
        .into_response()
}
