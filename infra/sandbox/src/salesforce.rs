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
            // `Case/describe` meets this route before the generic describe one.
            patch(update_case).get(describe_case),
        )
        .route(
            "/services/data/v62.0/sobjects/Case/{field}/{value}",
            patch(upsert_case),
        )
        .route(
            "/services/data/v62.0/sobjects/CaseComment",
            post(add_comment),
        )
        .route("/services/data/v62.0/query", get(query))
        .route(
            "/services/data/v62.0/sobjects/{object}/describe",
            get(describe),
        )
        .route(
            "/services/oauth2/token",
            post(super::salesforce_auth::token),
        )
        .route(
            "/services/data/v62.0/composite/sobjects/Contact/{field}",
            patch(upsert_contacts),
        )
}

async fn describe_case(
    state: State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if id != "describe" {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    }
    describe(state, Path("Case".to_owned()), headers).await
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

/// A Case as a query answers it (the sandbox keeps its comments beside it).
pub(crate) fn new_case(id: &str, key: &str, subject: &str) -> Value {
    let number: String = id.chars().filter(char::is_ascii_digit).collect();
    json!({"attributes": {"type": "Case", "url": format!("/services/data/v62.0/sobjects/Case/{id}")},
           "Id": id, "CaseNumber": format!("{:0>8}", number.trim_start_matches('5').trim_start_matches('0')),
           "Subject": subject, "Status": "New", "Priority": "Medium", "IsClosed": false,
           "LastModifiedDate": now(), EXTERNAL_ID_FIELD: key, "comments": []})
}

/// Case's fields as describe documents them (name, label, createable, nillable,
/// defaultedOnCreate), with a field an admin made required (the `required_field` drift).
fn case_fields(shared: &Shared) -> Vec<Value> {
    let field = |name: &str, label: &str, createable: bool, nillable: bool, defaulted: bool| {
        json!({"name": name, "label": label, "type": "string", "createable": createable,
               "updateable": createable, "nillable": nillable, "defaultedOnCreate": defaulted})
    };
    let mut fields = vec![
        field("Id", "Case ID", false, false, true),
        field("CaseNumber", "Case Number", false, false, true),
        field("Subject", "Subject", true, true, false),
        field("Description", "Description", true, true, false),
        field("Status", "Status", true, true, true),
        field("Priority", "Priority", true, true, true),
        field("OwnerId", "Owner ID", true, false, true),
        field(EXTERNAL_ID_FIELD, "Switchyard Key", true, true, false),
    ];
    let state = shared.state.lock().expect("sandbox state");
    let drift = state
        .drift
        .get("salesforce")
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some((name, label)) = super::drift::required_field(drift) {
        fields.push(field(name, label, true, false, false));
    }
    fields
}

/// `describe` of an object: what the integration user's profile lets it do with it.
async fn describe(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let (create, update) = {
        let s = shared.state.lock().expect("sandbox state");
        (
            s.has("salesforce", &format!("{object}.create")),
            s.has("salesforce", &format!("{object}.update")),
        )
    };
    let fields = if object == "Case" {
        case_fields(&shared)
    } else {
        Vec::new()
    };
    let body = json!({"name": object, "label": object, "createable": create, "updateable": update,
                      "queryable": true, "deletable": false, "fields": fields});
    with_usage(&shared, Json(body).into_response())
}

/// The sandbox org's accounts: (Website, Name); ids are `001…`.
pub const ACCOUNTS: [(&str, &str); 5] = [
    ("acme.com", "Acme Corp"),
    ("globex.com", "Globex"),
    ("initech.com", "Initech"),
    ("umbrella.com", "Umbrella"),
    ("hooli.com", "Hooli"),
];

fn account_id(i: usize) -> String {
    format!("001{:012}AAA", i + 1)
}

/// SOQL, parsed and answered by meaning (`query`): Accounts by `Id`, `Name` or `Website` (the
/// bulk sync's company look-up) and recent Cases (the canary's). A query that does not parse is a
/// `MALFORMED_QUERY`, another object an `INVALID_TYPE`, another field an `INVALID_FIELD`, as
/// Salesforce answers them.
async fn query(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&shared, &headers) {
        return r;
    }
    let q = params.get("q").map(String::as_str).unwrap_or_default();
    let parsed = match crate::query::soql(q) {
        Ok(parsed) => parsed,
        Err(e) => return error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &e),
    };
    let (records, known): (Vec<Value>, &[&str]) = match parsed.object.as_str() {
        "Account" => {
            shared
                .state
                .lock()
                .expect("sandbox state")
                .salesforce_account_reads += 1;
            let accounts = ACCOUNTS.iter().enumerate().map(|(i, (website, name))| {
                let id = account_id(i);
                json!({"attributes": {"type": "Account", "url": format!("/services/data/v62.0/sobjects/Account/{id}")},
                       "Id": id, "Name": name, "Website": website})
            });
            (accounts.collect(), &["Id", "Name", "Website"])
        }
        "Case" => {
            let state = shared.state.lock().expect("sandbox state");
            (
                state.salesforce_cases.values().cloned().collect(),
                &[
                    "Id",
                    "CaseNumber",
                    "Subject",
                    "Status",
                    "Priority",
                    "IsClosed",
                    "LastModifiedDate",
                ],
            )
        }
        other => {
            let message = format!("sObject type '{other}' is not supported.");
            return error(StatusCode::BAD_REQUEST, "INVALID_TYPE", &message);
        }
    };
    let named = parsed
        .fields
        .iter()
        .chain(
            parsed
                .filter
                .iter()
                .flat_map(|f| f.conditions())
                .map(|c| &c.field),
        )
        .chain(parsed.order_by.iter().map(|(f, _)| f));
    for field in named {
        if !known.contains(&field.as_str()) {
            let message = format!("No such column '{field}' on entity '{}'.", parsed.object);
            return error(StatusCode::BAD_REQUEST, "INVALID_FIELD", &message);
        }
    }
    let mut records: Vec<Value> = records
        .into_iter()
        .filter(|r| {
            parsed.filter.as_ref().is_none_or(|f| {
                f.matches(&|c| {
                    let value = crate::query::text(&c.value);
                    let field = match &r[c.field.as_str()] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    match c.op.as_str() {
                        "=" => field == value,
                        "!=" => field != value,
                        _ => false,
                    }
                })
            })
        })
        .collect();
    if let Some((field, descending)) = &parsed.order_by {
        records.sort_by_key(|r| r[field.as_str()].as_str().map(str::to_owned));
        if *descending {
            records.reverse();
        }
    }
    let records: Vec<Value> = records
        .into_iter()
        .take(parsed.limit.unwrap_or(2000))
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                o.retain(|k, _| k == "attributes" || parsed.fields.iter().any(|f| f == k));
            }
            r
        })
        .collect();
    let body = json!({"totalSize": records.len(), "done": true, "records": records});
    with_usage(&shared, Json(body).into_response())
}

/// sObject Collections upsert: at most 200 records, each with `attributes.type` = Contact and the
/// external id; 200 with one UpsertResult per record, in order (`allOrNone: false`).
async fn upsert_contacts(
    State(shared): State<Arc<Shared>>,
    Path(field): Path<String>,
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
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "records is required",
        );
    };
    if records.len() > 200 {
        return error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    let mut state = shared.state.lock().expect("sandbox state");
    let mut results = Vec::new();
    for r in records {
        let key = r.get(EXTERNAL_ID_FIELD).and_then(Value::as_str);
        let typed = r.pointer("/attributes/type").and_then(Value::as_str) == Some("Contact");
        let email_ok = r
            .get("Email")
            .and_then(Value::as_str)
            .is_some_and(|e| e.contains('@') && !e.contains(' '));
        let (Some(key), true, true) = (key, typed, email_ok) else {
            let (code, message, fields) = if !typed {
                ("INVALID_TYPE", "attributes.type must be Contact", json!([]))
            } else if key.is_none() {
                (
                    "MISSING_ARGUMENT",
                    "Switchyard_Key__c not specified",
                    json!([EXTERNAL_ID_FIELD]),
                )
            } else {
                (
                    "INVALID_EMAIL_ADDRESS",
                    "Email: invalid email address",
                    json!(["Email"]),
                )
            };
            results.push(json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]}));
            continue;
        };
        let (id, created) = match state.salesforce_contacts.get(key) {
            Some(c) => (c["Id"].as_str().unwrap_or_default().to_owned(), false),
            None => {
                state.next_id += 1;
                (format!("003{:012}AAA", state.next_id), true)
            }
        };
        let mut contact = r.clone();
        contact["Id"] = json!(id);
        state.salesforce_contacts.insert(key.to_owned(), contact);
        state.ledger.push(LedgerEntry {
            vendor: "salesforce",
            operation: if created {
                "create_contact"
            } else {
                "update_contact"
            }
            .into(),
            object_id: id.clone(),
            detail: json!({"account": r.get("AccountId")}),
        });
        results.push(json!({"id": id, "success": true, "errors": [], "created": created}));
    }
    drop(state);
    with_usage(&shared, Json(Value::Array(results)).into_response())
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
    let mut state = shared.state.lock().expect("sandbox state");
    let valid = token == Some(shared.credentials.salesforce_token.as_str())
        || token.is_some_and(|t| state.salesforce_sessions.admit(t));
    if !valid {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    }
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
    let (id, created) =
        match existing {
            Some(id) => (id, false),
            None => {
                if update
                    .get("Subject")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    drop(state);
                    return (
                        StatusCode::BAD_REQUEST,
                        Json(json!([{"message": "Required fields are missing: [Subject]",
                                 "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Subject"]}])),
                    )
                        .into_response();
                }
                // A field an admin made required on Case (the `required_field` drift).
                let drift = state.drift.get("salesforce").cloned().unwrap_or_default();
                if let Some((field, _)) = super::drift::required_field(&drift) {
                    if update.get(field).is_none_or(Value::is_null) {
                        drop(state);
                        return (
                        StatusCode::BAD_REQUEST,
                        Json(json!([{"message": format!("Required fields are missing: [{field}]"),
                                     "errorCode": "REQUIRED_FIELD_MISSING", "fields": [field]}])),
                    )
                        .into_response();
                    }
                }
                state.next_id += 1;
                let id = format!("500{:012}AAA", state.next_id);
                let case = new_case(&id, &value, "");
                state.salesforce_cases.insert(id.clone(), case);
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
    case["LastModifiedDate"] = json!(now());
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
