//! A receiver for switchyard's generic signed webhooks, as a careful one behaves: it verifies
//! the Standard Webhooks signature (401 otherwise) and drops a repeated `webhook-id` (200, no
//! second effect) — which is what makes the sender's retries safe.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use secrecy::SecretString;
use serde_json::Value;
use switchyard::vendors::standard_webhooks::inbound::{verify, Flavor};

use super::{LedgerEntry, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/hooks", post(receive))
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let secret = SecretString::from(shared.credentials.webhook_secret.clone());
    if let Err(e) = verify(
        Flavor::Standard,
        &headers,
        body.as_bytes(),
        &[secret],
        Some(chrono::Utc::now()),
    ) {
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut state = shared.state.lock().expect("sandbox state");
    if !state.webhook_ids.insert(id.clone()) {
        return (StatusCode::OK, "duplicate").into_response();
    }
    state.ledger.push(LedgerEntry {
        vendor: "webhook",
        operation: "receive".into(),
        object_id: id,
        detail: serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
    });
    StatusCode::NO_CONTENT.into_response()
}
