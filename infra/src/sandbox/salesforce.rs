//! Salesforce REST API v62.0, as documented: bearer access token (401
//! `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]` otherwise);
//! errors as arrays of `{message, errorCode, fields}`; upsert by external id answers 201
//! `{"id","success","errors","created":true}` or 200 with `created: false`; a PATCH by id answers
//! 204; the daily API limit answers **403** `REQUEST_LIMIT_EXCEEDED`; every response carries
//! `Sforce-Limit-Info: api-usage=N/MAX`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{LedgerEntry, Shared};

/// The sandbox org's external-id field on Case.
pub const EXTERNAL_ID_FIELD: &str = "Switchyard_Key__c";
pub const DAILY_MAX: u64 = 15_000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/services/data/v62.0/limits", get(limits))
        .route(
            "/services/data/v62.0/sobjects/Case/{id}",
            patch(update_case),
        )
        .route(
            "/services/data/v62.0/sobjects/Case/{field}/{value}",
            patch(upsert_case),
        )
        .route(
            "/services/data/v62.0/sobjects/CaseComment",
            post(add_comment),
        )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"message": message, "errorCode": code, "fields": []}])),
    )
        .into_response()
}

/// Auth and the daily limit, as Salesforce checks them before anything else.
fn admit(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(shared.credentials.salesforce_token.as_str()) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    }
    let mut state = shared.state.lock().expect("sandbox state");
    if state.salesforce_api_calls >= state.salesforce_daily_max {
        return Some(error(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        ));
    }
    state.salesforce_api_calls += 1;
    None
}

fn with_usage(shared: &Shared, resp: Response) -> Response {
    let (used, max) = {
        let s = shared.state.lock().expect("sandbox state");
        (s.salesforce_api_calls, s.salesforce_daily_max)
    };
    let mut resp = resp;
    if let Ok(v) = format!("api-usage={used}/{max}").parse() {
        resp.headers_mut().insert("sforce-limit-info", v);
    }
    resp
}

async fn limits(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let (used, max) = {
        let s = shared.state.lock().expect("sandbox state");
        (s.salesforce_api_calls, s.salesforce_daily_max)
    };
    let body = json!({"DailyApiRequests": {"Max": max, "Remaining": max - used},
                      "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200}});
    with_usage(&shared, Json(body).into_response())
}

#[allow(clippy::result_large_err)] // an axum Response, returned at once by the handler
fn fields(body: &Value) -> Result<Map<String, Value>, Response> {
    body.as_object().cloned().ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object",
        )
    })
}

async fn upsert_case(
    State(shared): State<Arc<Shared>>,
    Path((field, value)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    if field != EXTERNAL_ID_FIELD {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
        );
    }
    let update = match fields(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut state = shared.state.lock().expect("sandbox state");
    let existing = state
        .salesforce_cases
        .iter()
        .find(|(_, c)| c[EXTERNAL_ID_FIELD] == value.as_str())
        .map(|(id, _)| id.clone());
    let (id, created) = match existing {
        Some(id) => (id, false),
        None => {
            if update
                .get("Subject")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                drop(state);
                return error(
                    StatusCode::BAD_REQUEST,
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [Subject]",
                );
            }
            state.next_id += 1;
            let id = format!("500{:012}AAA", state.next_id);
            state.salesforce_cases.insert(
                id.clone(),
                json!({"Id": id, EXTERNAL_ID_FIELD: value, "Status": "New", "comments": []}),
            );
            (id, true)
        }
    };
    let case = state
        .salesforce_cases
        .get_mut(&id)
        .expect("just found or made");
    for (k, v) in update {
        case[k] = v;
    }
    state.ledger.push(LedgerEntry {
        vendor: "salesforce",
        operation: if created {
            "create_case"
        } else {
            "update_case"
        }
        .into(),
        object_id: id.clone(),
        detail: json!({"external_id": value}),
    });
    drop(state);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({"id": id, "success": true, "errors": [], "created": created});
    with_usage(&shared, (status, Json(body)).into_response())
}

async fn update_case(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let update = match fields(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut state = shared.state.lock().expect("sandbox state");
    let Some(case) = state.salesforce_cases.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    for (k, v) in update.clone() {
        case[k] = v;
    }
    state.ledger.push(LedgerEntry {
        vendor: "salesforce",
        operation: "update_case".into(),
        object_id: id,
        detail: Value::Object(update),
    });
    drop(state);
    with_usage(&shared, StatusCode::NO_CONTENT.into_response())
}

async fn add_comment(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let parent = body["ParentId"].as_str().unwrap_or_default().to_owned();
    let mut state = shared.state.lock().expect("sandbox state");
    state.next_id += 1;
    let id = format!("00a{:012}AAA", state.next_id);
    let Some(case) = state.salesforce_cases.get_mut(&parent) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!([{"message": format!("Parent ID: id value of incorrect type: {parent}"),
                         "errorCode": "FIELD_INTEGRITY_EXCEPTION", "fields": ["ParentId"]}]),
            ),
        )
            .into_response();
    };
    if let Some(comments) = case["comments"].as_array_mut() {
        comments.push(body["CommentBody"].clone());
    }
    state.ledger.push(LedgerEntry {
        vendor: "salesforce",
        operation: "add_case_comment".into(),
        object_id: parent,
        detail: json!({"public": body["IsPublished"]}),
    });
    drop(state);
    with_usage(
        &shared,
        (
            StatusCode::CREATED,
            Json(json!({"id": id, "success": true, "errors": []})),
        )
            .into_response(),
    )
}
