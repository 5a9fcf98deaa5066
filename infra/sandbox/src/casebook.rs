//! Casebook: a fictional legal case-management API (`shared/connectors/casebook.toml` describes
//! it), playing the seed article's proprietary systems:
//! - a session login (`POST /api/v2/sessions`) with no refresh token; a session lasts 24 h
//!   (`session_life`, compressible in tests) and is logged out after `max_calls_per_hour` calls
//!   in an hour — every later call answers 401;
//! - records stored by three backends, each writing `opened_at` its own way: ISO 8601 (cloud),
//!   `MM/DD/YYYY HH:MM` New York winter time (legacy), epoch milliseconds (archive);
//! - a field the documentation does not mention, required when switched on (`require`): 422
//!   with the field named;
//! - rate limits documented as 429 but answered by its gateway as a 400 with a message and a
//!   `retry_in` (`throttle`);
//! - an IP allow-list refusal and HTML error pages come from the shared fault layer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{LedgerEntry, Shared};

pub const SESSION_LIFE: Duration = Duration::from_secs(86_400);
pub const MAX_CALLS_PER_HOUR: u64 = 1_000;
const ORIGINS: [&str; 3] = ["cloud", "legacy", "archive"];

/// One live session: when it began, and its calls in the current hour.
#[derive(Debug)]
struct Session {
    issued: Instant,
    hour_started: Instant,
    calls_this_hour: u64,
}

#[derive(Debug)]
pub struct Casebook {
    sessions: HashMap<String, Session>,
    pub session_life: Duration,
    pub max_calls_per_hour: u64,
    /// Sessions begun, and calls refused because their session had ended (by age or calls).
    pub logins: u64,
    pub refused_sessions: u64,
    pub cases: BTreeMap<u64, Value>,
    /// Fields the API requires beyond its documentation.
    pub required: BTreeSet<String>,
    /// Answer this many next calls with the gateway's rate-limit 400.
    pub throttle: u32,
    next_case: u64,
}

impl Default for Casebook {
    fn default() -> Self {
        let mut c = Casebook {
            sessions: HashMap::new(),
            session_life: SESSION_LIFE,
            max_calls_per_hour: MAX_CALLS_PER_HOUR,
            logins: 0,
            refused_sessions: 0,
            cases: BTreeMap::new(),
            required: BTreeSet::new(),
            throttle: 0,
            next_case: 5001,
        };
        // A few cases from each backend, as any firm has (the canary reads recent ones).
        for (matter, title) in [
            ("M-100", "Lease dispute, 14 Elm St"),
            ("M-101", "Supplier contract review"),
            ("M-102", "Trademark renewal"),
        ] {
            c.add_case(matter, title, "", None);
        }
        c
    }
}

impl Casebook {
    fn add_case(
        &mut self,
        matter: &str,
        title: &str,
        description: &str,
        external_ref: Option<&str>,
    ) -> Value {
        let n = self.next_case;
        self.next_case += 1;
        let origin = ORIGINS[(n % 3) as usize];
        let now = chrono::Utc::now();
        // Each backend writes the same instant its own way.
        let opened_at = match origin {
            "cloud" => json!(now.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "legacy" => {
                let ny =
                    now.with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).expect("offset"));
                json!(ny.format("%m/%d/%Y %H:%M").to_string())
            }
            _ => json!(now.timestamp_millis()),
        };
        let case = json!({
            "id": n, "number": format!("CB-{n}"), "matter": matter, "title": title,
            "description": description, "status": "open", "origin": origin,
            "opened_at": opened_at, "external_ref": external_ref,
        });
        self.cases.insert(n, case.clone());
        case
    }

    /// Admit a call on `token`'s session; why not when the session is not (or no longer) valid.
    fn admit(&mut self, token: Option<&str>) -> Result<(), &'static str> {
        let token = token.unwrap_or_default();
        let Some(s) = self.sessions.get_mut(token) else {
            return Err("Not logged in");
        };
        if s.issued.elapsed() >= self.session_life {
            self.sessions.remove(token);
            self.refused_sessions += 1;
            return Err("Session expired");
        }
        if s.hour_started.elapsed() >= Duration::from_secs(3_600) {
            s.hour_started = Instant::now();
            s.calls_this_hour = 0;
        }
        s.calls_this_hour += 1;
        if s.calls_this_hour > self.max_calls_per_hour {
            // The article's system: the session is logged out, not just this call refused.
            self.sessions.remove(token);
            self.refused_sessions += 1;
            return Err("Session terminated: too many calls");
        }
        Ok(())
    }
}

/// Casebook's answer to a call without a valid session.
fn refused(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"code": 4010, "message": message})),
    )
        .into_response()
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v2/sessions", post(login))
        .route("/api/v2/me", get(me))
        .route("/api/v2/cases", get(list_cases))
        .route("/api/v2/matters/{matter}/cases", post(create_case))
}

async fn login(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let c = &shared.credentials;
    if body["username"] != c.casebook_username.as_str()
        || body["password"] != c.casebook_password.as_str()
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 4011, "message": "Invalid username or password"})),
        )
            .into_response();
    }
    let token = format!("cbs_{}", uuid::Uuid::new_v4().simple());
    let mut state = shared.state.lock().expect("sandbox state");
    let cb = &mut state.casebook;
    cb.sessions.insert(
        token.clone(),
        Session {
            issued: Instant::now(),
            hour_started: Instant::now(),
            calls_this_hour: 0,
        },
    );
    cb.logins += 1;
    let life = cb.session_life.as_secs();
    // No refresh token: when the session ends, the only way on is to log in again.
    (
        StatusCode::CREATED,
        Json(json!({"session": {"token": token, "expires_in": life}})),
    )
        .into_response()
}

fn session(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-casebook-session")?.to_str().ok()
}

/// The gateway's rate-limit answer (documented as a 429; it sends a 400).
fn throttled(cb: &mut Casebook) -> Option<Response> {
    if cb.throttle == 0 {
        return None;
    }
    cb.throttle -= 1;
    Some(
        (StatusCode::BAD_REQUEST, Json(json!({"code": 1003, "message": "Too many requests. Retry in 1 seconds.", "retry_in": 1})))
            .into_response(),
    )
}

/// What every call but the login meets first: the session check, then the gateway's limit.
fn gate(cb: &mut Casebook, headers: &HeaderMap) -> Option<Response> {
    if let Err(why) = cb.admit(session(headers)) {
        return Some(refused(why));
    }
    throttled(cb)
}

async fn me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut state = shared.state.lock().expect("sandbox state");
    if let Err(why) = state.casebook.admit(session(&headers)) {
        return refused(why);
    }
    Json(json!({"user": {"name": "switchyard integration", "firm": "Example LLP"}})).into_response()
}

async fn list_cases(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut state = shared.state.lock().expect("sandbox state");
    let cb = &mut state.casebook;
    if let Some(r) = gate(cb, &headers) {
        return r;
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(25);
    let items: Vec<Value> = cb
        .cases
        .values()
        .rev()
        .filter(|c| {
            q.get("external_ref")
                .is_none_or(|r| c["external_ref"] == r.as_str())
        })
        .take(limit)
        .cloned()
        .collect();
    Json(json!({"items": items, "total": items.len()})).into_response()
}

async fn create_case(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(matter): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut state = shared.state.lock().expect("sandbox state");
    let cb = &mut state.casebook;
    if let Some(r) = gate(cb, &headers) {
        return r;
    }
    let missing: Vec<Value> = std::iter::once("title")
        .chain(cb.required.iter().map(String::as_str))
        .filter(|f| body[*f].as_str().is_none_or(str::is_empty))
        .map(|f| json!({"field": f, "message": "can't be blank"}))
        .collect();
    if !missing.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"errors": missing})),
        )
            .into_response();
    }
    let text = |f: &str| body[f].as_str().unwrap_or_default().to_owned();
    let external_ref = body["external_ref"].as_str().map(str::to_owned);
    let case = cb.add_case(
        &matter,
        &text("title"),
        &text("description"),
        external_ref.as_deref(),
    );
    state.ledger.push(LedgerEntry {
        vendor: "casebook",
        operation: "create_case".into(),
        object_id: case["number"].as_str().unwrap_or_default().to_owned(),
        detail: json!({"matter": matter, "external_ref": external_ref, "origin": case["origin"]}),
    });
    (StatusCode::CREATED, Json(json!({"case": case}))).into_response()
}
