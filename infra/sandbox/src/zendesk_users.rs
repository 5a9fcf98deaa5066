//! Zendesk's bulk user upsert, as documented: `POST /api/v2/users/create_or_update_many.json`
//! takes at most 100 users (matched by e-mail or external id) and answers a `job_status`
//! (`queued`, then `working`, then `completed`) whose `url` is `GET /api/v2/job_statuses/{id}`;
//! the completed job lists per user `{"id","status":"Created"|"Updated","email"}` or
//! `{"index","error","details"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{LedgerEntry, Shared};

/// How long a bulk job runs before its status says `completed`.
pub const JOB_RUNS: std::time::Duration = std::time::Duration::from_millis(200);

/// End users by e-mail, and bulk jobs by id: (started, results, total).
#[derive(Debug, Default)]
pub struct Users {
    pub by_email: BTreeMap<String, u64>,
    jobs: BTreeMap<String, (std::time::Instant, Vec<Value>, usize)>,
    pub job_polls: u64,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/api/v2/users/create_or_update_many.json",
            post(create_or_update_many),
        )
        .route("/api/v2/job_statuses/{file}", get(job_status))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "Couldn't authenticate you"})),
    )
        .into_response()
}

fn job(shared: &Shared, id: &str, status: &str, total: usize, results: Option<&[Value]>) -> Value {
    json!({"job_status": {
        "id": id, "url": format!("http://{}/zendesk/api/v2/job_statuses/{id}.json", shared.addr),
        "status": status, "total": total,
        "progress": if results.is_some() { json!(total) } else { Value::Null },
        "message": if results.is_some() { json!("Completed at now") } else { Value::Null },
        "results": results,
    }})
}

async fn create_or_update_many(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !super::zendesk::authenticated(&shared, &headers) {
        return unauthorized();
    }
    let Some(users) = body["users"].as_array() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "InvalidEndpoint", "description": "users is required"})),
        )
            .into_response();
    };
    if users.len() > 100 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "TooManyRecords", "description": "Too many users: at most 100 per request"})),
        )
            .into_response();
    }
    let mut state = shared.state.lock().expect("sandbox state");
    let mut results = Vec::new();
    for (index, u) in users.iter().enumerate() {
        let email = u["email"].as_str().unwrap_or_default().to_lowercase();
        if !email.contains('@') || email.contains(' ') {
            results.push(json!({"index": index, "error": "UserCreateFailed",
                                "details": "Email is not properly formatted"}));
            continue;
        }
        let (id, created) = match state.zendesk_users.by_email.get(&email) {
            Some(id) => (*id, false),
            None => {
                state.next_id += 1;
                let id = 360_000 + state.next_id;
                state.zendesk_users.by_email.insert(email.clone(), id);
                (id, true)
            }
        };
        state.ledger.push(LedgerEntry {
            vendor: "zendesk",
            operation: if created {
                "create_user"
            } else {
                "update_user"
            }
            .into(),
            object_id: id.to_string(),
            detail: json!({}),
        });
        results.push(json!({"id": id, "status": if created { "Created" } else { "Updated" }, "email": email}));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let total = users.len();
    state
        .zendesk_users
        .jobs
        .insert(id.clone(), (std::time::Instant::now(), results, total));
    drop(state);
    Json(job(&shared, &id, "queued", total, None)).into_response()
}

/// A job runs for [`JOB_RUNS`]: `working` until then, `completed` after.
async fn job_status(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !super::zendesk::authenticated(&shared, &headers) {
        return unauthorized();
    }
    let id = file.trim_end_matches(".json");
    let mut state = shared.state.lock().expect("sandbox state");
    state.zendesk_users.job_polls += 1;
    let Some((started, results, total)) = state.zendesk_users.jobs.get(id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "RecordNotFound", "description": "Not found"})),
        )
            .into_response();
    };
    let (running, results, total) = (started.elapsed() < JOB_RUNS, results.clone(), *total);
    drop(state);
    if running {
        return Json(job(&shared, id, "working", total, None)).into_response();
    }
    Json(job(&shared, id, "completed", total, Some(&results))).into_response()
}
