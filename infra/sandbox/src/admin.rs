//! The sandbox's admin API, for any test suite driving a `switchyard sandbox` process: the effect
//! ledger, faults to inject, a Zendesk 429 storm, objects to act on. Served on the sandbox's own
//! loopback port under `/_admin`; never part of a deployment.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::faults::Fault;
use super::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/ledger", get(ledger))
        .route("/faults", post(inject))
        .route("/storm", post(storm))
        .route("/drift", post(drift).delete(clear_drift))
        .route("/zendesk/tickets", post(seed_ticket))
}

async fn ledger(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.state.lock().expect("sandbox state").ledger.clone()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    vendor: String,
    /// server_error, slow, hang, expired_token, lost_answer, extra_field, mixed_dates
    fault: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default = "one")]
    times: usize,
}

fn one() -> usize {
    1
}

const VENDORS: [&str; 6] = ["zendesk", "slack", "jira", "salesforce", "hubspot", "teams"];

async fn inject(State(shared): State<Arc<Shared>>, Json(r): Json<FaultRequest>) -> Response {
    let Some(vendor) = VENDORS.into_iter().find(|v| *v == r.vendor) else {
        return bad(format!(
            "unknown vendor {:?}; one of {}",
            r.vendor,
            VENDORS.join(", ")
        ));
    };
    let ms = Duration::from_millis(r.ms.unwrap_or(1000));
    let fault = match r.fault.as_str() {
        "server_error" => Fault::ServerError(r.status.unwrap_or(503)),
        "slow" => Fault::Slow(ms),
        "hang" => Fault::Hang(ms),
        "expired_token" => Fault::ExpiredToken,
        "lost_answer" => Fault::LostAnswer,
        "extra_field" => Fault::ExtraField,
        "mixed_dates" => Fault::MixedDates,
        other => return bad(format!("unknown fault {other:?}")),
    };
    shared
        .state
        .lock()
        .expect("sandbox state")
        .faults
        .push(vendor, fault, r.times);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DriftRequest {
    vendor: String,
    /// One of `drift::MODES`.
    mode: String,
    /// The record field to change, `/`-separated (the vendor's default for the mode if absent).
    #[serde(default)]
    field: Option<String>,
}

/// Switch an API change on for a vendor: every later answer carries it.
async fn drift(State(shared): State<Arc<Shared>>, Json(r): Json<DriftRequest>) -> Response {
    match super::drift::Drift::new(&r.vendor, &r.mode, r.field.as_deref()) {
        Ok(d) => {
            shared
                .state
                .lock()
                .expect("sandbox state")
                .drift
                .entry(r.vendor)
                .or_default()
                .push(d);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad(e),
    }
}

async fn clear_drift(State(shared): State<Arc<Shared>>) -> Response {
    shared.state.lock().expect("sandbox state").drift.clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StormRequest {
    seconds: u64,
}

/// Every Zendesk call refused with 429 for `seconds`.
async fn storm(State(shared): State<Arc<Shared>>, Json(r): Json<StormRequest>) -> Response {
    shared
        .state
        .lock()
        .expect("sandbox state")
        .zendesk_limits
        .storm_until = Some(std::time::Instant::now() + Duration::from_secs(r.seconds));
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketRequest {
    id: u64,
    subject: String,
}

async fn seed_ticket(State(shared): State<Arc<Shared>>, Json(r): Json<TicketRequest>) -> Response {
    shared
        .state
        .lock()
        .expect("sandbox state")
        .zendesk_tickets
        .insert(r.id, super::zendesk::new_ticket(r.id, &r.subject));
    (StatusCode::CREATED, Json(json!({"id": r.id}))).into_response()
}

fn bad(reason: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": reason}))).into_response()
}
