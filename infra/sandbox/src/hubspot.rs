//! HubSpot CRM API v3 / associations v4, as documented: bearer token (401
//! `INVALID_AUTHENTICATION` otherwise); errors as `{"status": "error", "message", "correlationId",
//! "category"}`; objects as `{"id": "…", "properties": {…}, "createdAt", "updatedAt",
//! "archived"}`; ten-second rolling limit headers on every answer and, over the limit, 429 with
//! `errorType: RATE_LIMIT` and `policyName: TEN_SECONDLY_ROLLING` (no `Retry-After`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::ratelimit::Verdict;
use super::{LedgerEntry, Shared};

/// Ticket properties the sandbox portal defines (a real portal rejects unknown ones).
const TICKET_PROPERTIES: &[&str] = &[
    "subject",
    "content",
    "hs_pipeline",
    "hs_pipeline_stage",
    "hs_ticket_priority",
    "switchyard_key",
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/account-info/v3/details", get(details))
        .route(
            "/crm/v3/objects/tickets",
            get(list_tickets).post(create_ticket),
        )
        .route("/crm/v3/objects/tickets/search", post(search_tickets))
        .route("/crm/v3/objects/tickets/{id}", patch(update_ticket))
        .route(
            "/crm/v3/objects/contacts/batch/upsert",
            post(upsert_contacts),
        )
        .route("/crm/v3/objects/notes", post(create_note))
        .route("/crm/v3/properties/tickets/{name}", get(ticket_property))
        .route("/crm/v3/objects/companies/search", post(search_companies))
        .route(
            "/oauth/v2/private-apps/get/access-token-info",
            post(token_info),
        )
        .route(
            "/crm/v4/objects/{from}/{from_id}/associations/default/{to}/{to_id}",
            put(associate),
        )
}

/// The private app's scopes: those it was installed with, less any an admin removed.
fn scopes(shared: &Shared) -> Vec<&'static str> {
    let state = shared.state.lock().expect("sandbox state");
    [
        "tickets",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.objects.companies.read",
    ]
    .into_iter()
    .filter(|s| state.has("hubspot", s))
    .collect()
}

/// HubSpot's 403 for a call the app has no scope for, naming the scope it needs.
fn scope(shared: &Shared, needed: &str) -> Option<Response> {
    if scopes(shared).contains(&needed) {
        return None;
    }
    Some(
        (
            StatusCode::FORBIDDEN,
            Json(json!({"status": "error",
                "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
                "correlationId": uuid::Uuid::new_v4().to_string(),
                "errors": [{"message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [needed]}}],
                "links": {"scopes": "https://developers.hubspot.com/scopes"},
                "category": "MISSING_SCOPES"})),
        )
            .into_response(),
    )
}

/// `POST /oauth/v2/private-apps/get/access-token-info`: the token's portal, app and scopes.
async fn token_info(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    if body["tokenKey"] != shared.credentials.hubspot_token.as_str() {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Token not found or invalid",
        );
    }
    Json(json!({"userId": 7001, "hubId": 62515, "appId": 456123, "scopes": scopes(&shared)}))
        .into_response()
}

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"status": "error", "message": message,
                    "correlationId": uuid::Uuid::new_v4().to_string(), "category": category})),
    )
        .into_response()
}

/// Auth, then the ten-second rolling limit.
fn admit(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(shared.credentials.hubspot_token.as_str()) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        ));
    }
    let mut state = shared.state.lock().expect("sandbox state");
    if let Verdict::Limited { .. } = state.hubspot_limits.check(std::time::Instant::now()) {
        let body = json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                          "errorType": "RATE_LIMIT", "correlationId": uuid::Uuid::new_v4().to_string(),
                          "policyName": "TEN_SECONDLY_ROLLING", "groupName": "api"});
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
                    ("x-hubspot-ratelimit-remaining", "0"),
                ],
                Json(body),
            )
                .into_response(),
        );
    }
    None
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn object(id: u64, properties: Value) -> Value {
    json!({"id": id.to_string(), "properties": properties, "createdAt": now(), "updatedAt": now(), "archived": false})
}

async fn details(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    Json(
        json!({"portalId": 62515, "accountType": "STANDARD", "timeZone": "US/Eastern",
                "companyCurrency": "USD", "utcOffset": "-05:00", "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1"}),
    )
    .into_response()
}

/// The first property the portal has no definition for (never had, or an admin deleted).
fn unknown_property(shared: &Shared, props: &Value) -> Option<String> {
    let state = shared.state.lock().expect("sandbox state");
    props
        .as_object()?
        .keys()
        .find(|k| {
            !TICKET_PROPERTIES.contains(&k.as_str())
                || state.hubspot_deleted_properties.contains(*k)
        })
        .cloned()
}

/// `GET /crm/v3/properties/tickets/{name}`: a ticket property's definition, 404 if the portal
/// has none by that name.
async fn ticket_property(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let deleted = shared
        .state
        .lock()
        .expect("sandbox state")
        .hubspot_deleted_properties
        .contains(&name);
    if !TICKET_PROPERTIES.contains(&name.as_str()) || deleted {
        return error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("Unable to find property {name} for object type tickets"),
        );
    }
    Json(
        json!({"name": name, "label": name, "type": "string", "fieldType": "text",
                "groupName": "ticketinformation", "hidden": false}),
    )
    .into_response()
}

async fn create_ticket(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    if let Some(r) = scope(&shared, "tickets") {
        return r;
    }
    let props = body["properties"].clone();
    if let Some(p) = unknown_property(&shared, &props) {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!("Property values were not valid: [{{\"isValid\":false,\"message\":\"Property \\\"{p}\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"{p}\"}}]"),
        );
    }
    let mut state = shared.state.lock().expect("sandbox state");
    state.next_id += 1;
    let id = state.next_id;
    let ticket = object(id, props.clone());
    state.hubspot_tickets.insert(id, ticket.clone());
    state.ledger.push(LedgerEntry {
        vendor: "hubspot",
        operation: "create_ticket".into(),
        object_id: id.to_string(),
        detail: json!({"subject": props["subject"]}),
    });
    (StatusCode::CREATED, Json(ticket)).into_response()
}

/// `GET /crm/v3/objects/tickets?limit=n&properties=a,b`: a page of tickets with the properties
/// asked for (and the ones HubSpot always returns), null where unset.
async fn list_tickets(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    if let Some(r) = scope(&shared, "tickets") {
        return r;
    }
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10usize);
    let mut wanted: Vec<&str> = q
        .get("properties")
        .map(|p| p.split(',').collect())
        .unwrap_or_default();
    wanted.extend(["createdate", "hs_lastmodifieddate", "hs_object_id"]);
    let state = shared.state.lock().expect("sandbox state");
    let results: Vec<Value> = state
        .hubspot_tickets
        .values()
        .take(limit)
        .map(|t| {
            let mut t = t.clone();
            let props: serde_json::Map<String, Value> = wanted
                .iter()
                .map(|p| {
                    let v = match *p {
                        "hs_object_id" => t["id"].clone(),
                        "createdate" => t["createdAt"].clone(),
                        "hs_lastmodifieddate" => t["updatedAt"].clone(),
                        other => t["properties"].get(other).cloned().unwrap_or(Value::Null),
                    };
                    ((*p).to_owned(), v)
                })
                .collect();
            t["properties"] = Value::Object(props);
            t
        })
        .collect();
    Json(json!({"results": results})).into_response()
}

/// A ticket in the sandbox portal, as a person would have opened it.
pub(crate) fn seed_ticket(id: u64, subject: &str, priority: &str) -> Value {
    object(
        id,
        json!({"subject": subject, "hs_pipeline": "0", "hs_pipeline_stage": "1",
               "hs_ticket_priority": priority}),
    )
}

async fn search_tickets(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    if let Some(r) = scope(&shared, "tickets") {
        return r;
    }
    let filter = &body["filterGroups"][0]["filters"][0];
    let (name, value) = (filter["propertyName"].as_str(), &filter["value"]);
    let state = shared.state.lock().expect("sandbox state");
    let results: Vec<Value> = state
        .hubspot_tickets
        .values()
        .filter(|t| name.is_some_and(|n| &t["properties"][n] == value))
        .cloned()
        .collect();
    Json(json!({"total": results.len(), "results": results})).into_response()
}

/// Companies in the sandbox portal, by domain (a read: no ledger entry).
async fn search_companies(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let domain = body
        .pointer("/filterGroups/0/filters/0/value")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let mut state = shared.state.lock().expect("sandbox state");
    state.hubspot_company_reads += 1;
    let results: Vec<Value> = state
        .hubspot_companies
        .get(&domain)
        .cloned()
        .into_iter()
        .collect();
    Json(json!({"total": results.len(), "results": results})).into_response()
}

async fn update_ticket(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    if let Some(r) = scope(&shared, "tickets") {
        return r;
    }
    if let Some(p) = unknown_property(&shared, &body["properties"]) {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!("Property values were not valid: Property \"{p}\" does not exist"),
        );
    }
    let mut state = shared.state.lock().expect("sandbox state");
    let Some(ticket) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| state.hubspot_tickets.get_mut(&n))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "resource not found",
        );
    };
    if let (Some(current), Some(update)) = (
        ticket["properties"].as_object_mut(),
        body["properties"].as_object(),
    ) {
        current.extend(update.clone());
    }
    let ticket = ticket.clone();
    state.ledger.push(LedgerEntry {
        vendor: "hubspot",
        operation: "update_ticket".into(),
        object_id: id,
        detail: body["properties"].clone(),
    });
    Json(ticket).into_response()
}

async fn upsert_contacts(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let mut state = shared.state.lock().expect("sandbox state");
    let mut results = Vec::new();
    for input in body["inputs"].as_array().cloned().unwrap_or_default() {
        if input["idProperty"] != "email" {
            return error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "idProperty must be a unique property, e.g. email",
            );
        }
        let email = input["id"].as_str().unwrap_or_default().to_lowercase();
        let new = !state.hubspot_contacts.contains_key(&email);
        if new {
            state.next_id += 1;
            let id = state.next_id;
            state
                .hubspot_contacts
                .insert(email.clone(), object(id, json!({"email": email})));
        }
        let contact = state.hubspot_contacts.get_mut(&email).expect("present");
        if let (Some(current), Some(update)) = (
            contact["properties"].as_object_mut(),
            input["properties"].as_object(),
        ) {
            current.extend(update.clone());
        }
        let mut result = contact.clone();
        result["new"] = json!(new);
        results.push(result);
        let id = contact["id"].as_str().unwrap_or_default().to_owned();
        state.ledger.push(LedgerEntry {
            vendor: "hubspot",
            operation: if new {
                "create_contact"
            } else {
                "update_contact"
            }
            .into(),
            object_id: id,
            detail: json!({}),
        });
    }
    Json(
        json!({"status": "COMPLETE", "results": results, "startedAt": now(), "completedAt": now()}),
    )
    .into_response()
}

async fn create_note(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    if body.pointer("/properties/hs_timestamp").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Property values were not valid: hs_timestamp is required",
        );
    }
    let to = body
        .pointer("/associations/0/to/id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut state = shared.state.lock().expect("sandbox state");
    let exists = to.parse::<u64>().ok().is_some_and(|n| {
        state.hubspot_tickets.contains_key(&n)
            || state
                .hubspot_contacts
                .values()
                .any(|c| c["id"] == to.as_str())
    });
    if !exists {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!("One or more associations are invalid: {to} not found"),
        );
    }
    state.next_id += 1;
    let id = state.next_id;
    state.ledger.push(LedgerEntry {
        vendor: "hubspot",
        operation: "create_note".into(),
        object_id: to,
        detail: body["properties"].clone(),
    });
    (
        StatusCode::CREATED,
        Json(object(id, body["properties"].clone())),
    )
        .into_response()
}

async fn associate(
    State(shared): State<Arc<Shared>>,
    Path((from, from_id, to, to_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let mut state = shared.state.lock().expect("sandbox state");
    state.ledger.push(LedgerEntry {
        vendor: "hubspot",
        operation: "associate".into(),
        object_id: from_id.clone(),
        detail: json!({"from": from, "to": to, "to_id": to_id}),
    });
    Json(json!({"status": "COMPLETE", "results": [{"from": {"id": from_id}, "to": {"id": to_id},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}}],
                "startedAt": now(), "completedAt": now()}))
    .into_response()
}

/// The sandbox's HubSpot budget: `per_ten_seconds` requests in any trailing ten seconds.
pub fn window(per_ten_seconds: u32) -> super::ratelimit::Window {
    super::ratelimit::Window::new(per_ten_seconds, Duration::from_secs(10))
}
