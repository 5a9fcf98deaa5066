//! Microsoft Teams webhooks, as they behave: a Workflows webhook answers **202** with an empty
//! body; a legacy incoming webhook (`webhookb2`) answers **200 `1`**, and when throttled answers
//! **200** with "Microsoft Teams endpoint returned HTTP error 429 …"; a bad payload is 400 "Bad
//! payload received by generic incoming webhook."; a deleted webhook is 410. Both carry the card
//! in `attachments[0]` (`application/vnd.microsoft.card.adaptive`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use super::ratelimit::Verdict;
use super::{LedgerEntry, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/workflows/{token}", post(workflows))
        .route("/webhookb2/{token}", post(legacy))
}

#[derive(PartialEq)]
enum Kind {
    Workflows,
    Legacy,
}

async fn workflows(State(s): State<Arc<Shared>>, Path(t): Path<String>, body: String) -> Response {
    receive(&s, &t, &body, Kind::Workflows)
}

async fn legacy(State(s): State<Arc<Shared>>, Path(t): Path<String>, body: String) -> Response {
    receive(&s, &t, &body, Kind::Legacy)
}

fn receive(shared: &Shared, token: &str, body: &str, kind: Kind) -> Response {
    let mut state = shared.state.lock().expect("sandbox state");
    if token != shared.credentials.teams_webhook_token || state.teams_webhook_removed {
        return (StatusCode::GONE, "Connector configuration not found").into_response();
    }
    if let Verdict::Limited { .. } = state.teams_limits.check(std::time::Instant::now()) {
        return match kind {
            Kind::Legacy => (
                StatusCode::OK,
                "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=msgapi-sandbox,cv=switchyard.0.",
            )
                .into_response(),
            Kind::Workflows => {
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response()
            }
        };
    }
    let card = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let a = v.pointer("/attachments/0")?;
        (a["contentType"] == "application/vnd.microsoft.card.adaptive"
            && a.pointer("/content/body/0").is_some())
        .then(|| a["content"].clone())
    });
    let Some(card) = card else {
        return (
            StatusCode::BAD_REQUEST,
            "Bad payload received by generic incoming webhook.",
        )
            .into_response();
    };
    state.ledger.push(LedgerEntry {
        vendor: "teams",
        operation: "post_message".into(),
        object_id: "channel".into(),
        detail: card,
    });
    match kind {
        Kind::Workflows => StatusCode::ACCEPTED.into_response(),
        Kind::Legacy => (StatusCode::OK, "1").into_response(),
    }
}
