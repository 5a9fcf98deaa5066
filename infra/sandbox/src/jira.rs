//! Jira Cloud REST API v3, as documented: basic auth `{email}:{api_token}` (401 with a plain-text
//! body otherwise); create issue → 201 `{"id","key","self"}`; errors as
//! `{"errorMessages": […], "errors": {field: message}}`; transitions listed then posted by id
//! (204); edits answer 204; `POST /search/jql` answers
//! the JQL it is sent by meaning (`query`): labels, key, project, summary, updated.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Value};

use super::{LedgerEntry, Shared};

/// How long a new issue stays invisible to JQL search (Atlassian: the index is eventually
/// consistent; seconds under load).
pub const SEARCH_LAG: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .merge(super::files::jira_routes())
        .route("/rest/api/3/myself", get(myself))
        .route("/rest/api/3/mypermissions", get(mypermissions))
        .route("/rest/api/3/issue", post(create_issue))
        .route("/rest/api/3/issue/{key}", put(edit_issue))
        .route("/rest/api/3/issue/{key}/comment", post(add_comment))
        .route(
            "/rest/api/3/issue/{key}/transitions",
            get(list_transitions).post(do_transition),
        )
        .route("/rest/api/3/search/jql", post(search))
        .route(
            "/rest/api/3/issue/createmeta/{project}/issuetypes",
            get(createmeta_types),
        )
        .route(
            "/rest/api/3/issue/createmeta/{project}/issuetypes/{id}",
            get(createmeta_fields),
        )
}

/// The sandbox workflow: (transition id, transition name, target status).
const WORKFLOW: &[(&str, &str, &str)] = &[
    ("11", "Start Progress", "In Progress"),
    ("21", "Stop Progress", "To Do"),
    ("31", "Done", "Done"),
];

#[allow(clippy::result_large_err)] // an axum Response, returned at once by every handler
pub(crate) fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    // Burst limit first, answered as Jira documents it.
    {
        let mut state = shared.state.lock().expect("sandbox state");
        if let super::ratelimit::Verdict::Limited { retry_after } =
            state.jira_limits.check(std::time::Instant::now())
        {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as i64;
            let reset = (chrono::Utc::now() + chrono::Duration::seconds(secs + 59))
                .format("%Y-%m-%dT%H:%MZ")
                .to_string();
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("retry-after", secs.to_string()),
                    ("x-ratelimit-reset", reset),
                    ("ratelimit-reason", "jira-burst-based".to_owned()),
                ],
                "",
            )
                .into_response());
        }
    }
    let expected = format!(
        "{}:{}",
        shared.credentials.jira_email, shared.credentials.jira_token
    );
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .is_some_and(|raw| raw == expected.as_bytes());
    if ok {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            [("content-type", "text/plain")],
            "Client must be authenticated to access this resource.",
        )
            .into_response())
    }
}

fn errors(status: StatusCode, messages: &[&str], fields: Value) -> Response {
    (
        status,
        Json(json!({"errorMessages": messages, "errors": fields})),
    )
        .into_response()
}

fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        &["Issue does not exist or you do not have permission to see it."],
        json!({}),
    )
}

/// The key of the next issue in `project` (numbered per project, as Jira does).
fn next_key(state: &super::State, project: &str) -> String {
    let prefix = format!("{project}-");
    let n = state
        .jira_issues
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .count();
    format!("{project}-{}", n + 1)
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

/// A status as Jira answers it: its name and its category (what boards branch on).
fn status(name: &str) -> Value {
    let category = match name {
        "To Do" => "new",
        "Done" => "done",
        _ => "indeterminate",
    };
    json!({"name": name, "statusCategory": {"key": category}})
}

/// An issue as the sandbox stores it: Jira's shape, with the comments kept beside its fields.
pub(crate) fn new_issue(id: u64, key: &str, summary: &str) -> Value {
    json!({
        "id": id.to_string(), "key": key,
        "self": format!("https://example.atlassian.net/rest/api/3/issue/{id}"),
        "fields": {"summary": summary, "labels": [], "issuetype": {"name": "Task"},
                   "status": status("To Do"), "comments": [],
                   "created": "2024-01-15T10:31:00.000+0000", "updated": now()}
    })
}

/// `GET /issue/createmeta/{project}/issuetypes`: the project's issue types.
async fn createmeta_types(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(_project): Path<String>,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    let types = json!([{"id": "10001", "name": "Task", "subtask": false},
                       {"id": "10004", "name": "Bug", "subtask": false}]);
    Json(json!({"issueTypes": types, "maxResults": 50, "startAt": 0, "total": 2})).into_response()
}

/// `GET /issue/createmeta/{project}/issuetypes/{id}`: the create screen's fields, with a field
/// an admin made required (the `required_field` drift).
async fn createmeta_fields(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((_project, _id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    let field = |id: &str, name: &str, required: bool, default: bool| {
        json!({"fieldId": id, "key": id, "name": name, "required": required,
               "hasDefaultValue": default, "operations": ["set"]})
    };
    let mut fields = vec![
        field("summary", "Summary", true, false),
        field("issuetype", "Issue Type", true, false),
        field("project", "Project", true, false),
        field("reporter", "Reporter", true, true),
        field("labels", "Labels", false, false),
        field("description", "Description", false, false),
    ];
    let state = shared.state.lock().expect("sandbox state");
    let drift = state
        .drift
        .get("jira")
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some((id, name)) = super::drift::required_field(drift) {
        fields.push(field(id, name, true, false));
    }
    let total = fields.len();
    Json(json!({"fields": fields, "maxResults": 50, "startAt": 0, "total": total})).into_response()
}

async fn myself(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    Json(json!({"accountId": "5b10ac8d82e05b22cc7d4ef5", "accountType": "atlassian",
                "emailAddress": shared.credentials.jira_email, "displayName": "switchyard", "active": true}))
        .into_response()
}

/// `GET /mypermissions?permissions=A,B`: each permission with `havePermission`.
async fn mypermissions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    let Some(keys) = q.get("permissions").filter(|k| !k.is_empty()) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"errorMessages": ["The 'permissions' query parameter is required."], "errors": {}})),
        )
            .into_response();
    };
    let state = shared.state.lock().expect("sandbox state");
    let permissions: serde_json::Map<String, Value> = keys
        .split(',')
        .map(|k| {
            (
                k.to_owned(),
                json!({"id": "10", "key": k, "name": k, "type": "PROJECT", "havePermission": state.has("jira", k)}),
            )
        })
        .collect();
    Json(json!({"permissions": permissions})).into_response()
}

async fn create_issue(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    let fields = &body["fields"];
    let mut missing = serde_json::Map::new();
    if fields["summary"].as_str().is_none_or(str::is_empty) {
        missing.insert(
            "summary".into(),
            json!("You must specify a summary of the issue."),
        );
    }
    let Some(project) = fields.pointer("/project/key").and_then(Value::as_str) else {
        missing.insert("project".into(), json!("Specify a valid project ID or key"));
        return errors(StatusCode::BAD_REQUEST, &[], Value::Object(missing));
    };
    let mut state = shared.state.lock().expect("sandbox state");
    // A field an admin made required on the create screen (the `required_field` drift).
    let drift = state
        .drift
        .get("jira")
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some((field, name)) = super::drift::required_field(drift) {
        if fields.get(field).is_none_or(Value::is_null) {
            missing.insert(field.into(), json!(format!("{name} is required.")));
        }
    }
    if !missing.is_empty() {
        return errors(StatusCode::BAD_REQUEST, &[], Value::Object(missing));
    }
    state.next_id += 1;
    let id = state.next_id;
    let key = next_key(&state, project);
    let mut issue = new_issue(id, &key, fields["summary"].as_str().unwrap_or_default());
    issue["fields"]["labels"] = fields.get("labels").cloned().unwrap_or(json!([]));
    issue["fields"]["issuetype"] = fields["issuetype"].clone();
    state.jira_issues.insert(key.clone(), issue);
    let visible = std::time::Instant::now() + state.jira_search_lag;
    state.jira_indexed_at.insert(key.clone(), visible);
    state.ledger.push(LedgerEntry {
        vendor: "jira",
        operation: "create_issue".into(),
        object_id: key.clone(),
        detail: json!({"summary": fields["summary"], "labels": fields["labels"]}),
    });
    (
        StatusCode::CREATED,
        Json(json!({"id": id.to_string(), "key": key,
                    "self": format!("https://example.atlassian.net/rest/api/3/issue/{id}")})),
    )
        .into_response()
}

async fn edit_issue(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    let mut state = shared.state.lock().expect("sandbox state");
    let Some(issue) = state.jira_issues.get_mut(&key) else {
        return not_found();
    };
    let adds: Vec<Value> = body
        .pointer("/update/labels")
        .and_then(Value::as_array)
        .map(|ops| ops.iter().filter_map(|op| op.get("add").cloned()).collect())
        .unwrap_or_default();
    if let Some(set) = body.get("fields").and_then(Value::as_object) {
        for (k, v) in set {
            issue["fields"][k] = v.clone();
        }
    }
    if let Some(labels) = issue
        .pointer_mut("/fields/labels")
        .and_then(Value::as_array_mut)
    {
        for l in &adds {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
    }
    state.ledger.push(LedgerEntry {
        vendor: "jira",
        operation: "edit_issue".into(),
        object_id: key,
        detail: json!({"labels_added": adds, "fields": body.get("fields")}),
    });
    StatusCode::NO_CONTENT.into_response()
}

async fn add_comment(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    if body.pointer("/body/type").and_then(Value::as_str) != Some("doc") {
        return errors(
            StatusCode::BAD_REQUEST,
            &[],
            json!({"comment": "Comment body is not valid Atlassian Document Format."}),
        );
    }
    let mut state = shared.state.lock().expect("sandbox state");
    state.next_id += 1;
    let id = state.next_id.to_string();
    let Some(issue) = state.jira_issues.get_mut(&key) else {
        return not_found();
    };
    if let Some(comments) = issue
        .pointer_mut("/fields/comments")
        .and_then(Value::as_array_mut)
    {
        comments.push(body["body"].clone());
    }
    state.ledger.push(LedgerEntry {
        vendor: "jira",
        operation: "add_comment".into(),
        object_id: key,
        detail: body["body"].clone(),
    });
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "body": body["body"], "created": "2026-11-28T10:31:00.000+0000"})),
    )
        .into_response()
}

async fn list_transitions(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    let state = shared.state.lock().expect("sandbox state");
    let Some(issue) = state.jira_issues.get(&key) else {
        return not_found();
    };
    let current = issue
        .pointer("/fields/status/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let transitions: Vec<Value> = WORKFLOW
        .iter()
        .filter(|(_, _, to)| *to != current)
        .map(|(id, name, to)| json!({"id": id, "name": name, "to": {"name": to}, "hasScreen": false}))
        .collect();
    Json(json!({"expand": "transitions", "transitions": transitions})).into_response()
}

async fn do_transition(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    let mut state = shared.state.lock().expect("sandbox state");
    let Some(issue) = state.jira_issues.get_mut(&key) else {
        return not_found();
    };
    let wanted = body.pointer("/transition/id").and_then(Value::as_str);
    let Some((_, _, to)) = WORKFLOW.iter().find(|(id, _, _)| Some(*id) == wanted) else {
        return errors(
            StatusCode::BAD_REQUEST,
            &["Transition id is not valid for this issue."],
            json!({}),
        );
    };
    issue["fields"]["status"] = status(to);
    issue["fields"]["updated"] = json!(now());
    state.ledger.push(LedgerEntry {
        vendor: "jira",
        operation: "transition".into(),
        object_id: key,
        detail: json!({"to": to}),
    });
    StatusCode::NO_CONTENT.into_response()
}

/// Whether an issue meets one JQL condition (the fields `search` accepts).
fn issue_matches(issue: &Value, c: &crate::query::Condition) -> bool {
    let value = crate::query::text(&c.value);
    let fields = &issue["fields"];
    let equal = |found: bool| match c.op.as_str() {
        "=" => found,
        "!=" => !found,
        _ => false,
    };
    match c.field.as_str() {
        "labels" => equal(
            fields["labels"]
                .as_array()
                .is_some_and(|ls| ls.iter().any(|l| l == value)),
        ),
        "key" => equal(issue["key"] == value),
        "project" => equal(
            issue["key"]
                .as_str()
                .is_some_and(|k| k.split_once('-').is_some_and(|(p, _)| p == value)),
        ),
        "summary" => {
            let summary = fields["summary"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            c.op == "~" && summary.contains(&value.to_lowercase())
        }
        "updated" => {
            // A relative date (`-30d`, `-4h`) or `yyyy-mm-dd`, against the issue's `updated`.
            let now = chrono::Utc::now();
            let at = match value
                .strip_prefix('-')
                .and_then(|v| v.split_at_checked(v.len().saturating_sub(1)))
            {
                Some((n, "d")) => n.parse().ok().map(|n| now - chrono::Duration::days(n)),
                Some((n, "h")) => n.parse().ok().map(|n| now - chrono::Duration::hours(n)),
                _ => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| d.and_utc()),
            };
            let updated = fields["updated"]
                .as_str()
                .and_then(|u| chrono::DateTime::parse_from_str(u, "%Y-%m-%dT%H:%M:%S%.3f%z").ok());
            match (at, updated) {
                (Some(at), Some(u)) => match c.op.as_str() {
                    ">=" => u >= at,
                    ">" => u > at,
                    "<=" => u <= at,
                    "<" => u < at,
                    _ => false,
                },
                _ => false,
            }
        }
        _ => false,
    }
}

async fn search(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return r;
    }
    // Parsed and answered by meaning: switchyard's vendor-side key (`labels = "…"`), the
    // canary's recent issues (`updated >= -30d ORDER BY updated DESC`), and whatever else the
    // fields below can answer.
    let parsed = match crate::query::jql(body["jql"].as_str().unwrap_or_default()) {
        Ok(q) => q,
        Err(e) => {
            let message = format!("Error in the JQL Query: {e}");
            return errors(StatusCode::BAD_REQUEST, &[&message], json!({}));
        }
    };
    let conditions = parsed.filter.iter().flat_map(|f| f.conditions());
    for c in conditions {
        if !matches!(
            c.field.as_str(),
            "labels" | "updated" | "project" | "key" | "summary"
        ) {
            let message = format!(
                "Field '{}' does not exist or you do not have permission to view it.",
                c.field
            );
            return errors(StatusCode::BAD_REQUEST, &[&message], json!({}));
        }
    }
    let wanted: Vec<&str> = body["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let max = body["maxResults"].as_u64().unwrap_or(50) as usize;
    let state = shared.state.lock().expect("sandbox state");
    let mut found: Vec<&Value> = state
        .jira_issues
        .values()
        .filter(|i| {
            let key = i["key"].as_str().unwrap_or_default();
            state
                .jira_indexed_at
                .get(key)
                .is_none_or(|at| *at <= std::time::Instant::now())
        })
        .filter(|i| {
            parsed
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(&|c| issue_matches(i, c)))
        })
        .collect();
    if let Some((field, descending)) = &parsed.order_by {
        // Jira's timestamps (one format) and keys sort as text.
        let of = |i: &Value| {
            i["fields"]
                .get(field)
                .or(i.get(field))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        found.sort_by_key(|i| of(i));
        if *descending {
            found.reverse();
        }
    }
    // Only the fields asked for (`key` and `id` always), as the enhanced search answers.
    let issues: Vec<Value> = found
        .into_iter()
        .take(max)
        .map(|i| {
            let fields: serde_json::Map<String, Value> = wanted
                .iter()
                .filter_map(|f| Some(((*f).to_owned(), i["fields"].get(*f)?.clone())))
                .collect();
            let mut out = json!({"id": i["id"], "key": i["key"], "self": i["self"]});
            if !fields.is_empty() {
                out["fields"] = Value::Object(fields);
            }
            out
        })
        .collect();
    Json(json!({"issues": issues, "isLast": true})).into_response()
}
