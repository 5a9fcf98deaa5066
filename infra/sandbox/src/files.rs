//! Attachments, served the way each vendor documents its download flow:
//!
//! - Zendesk: `content_url` (`/attachments/token/{token}/?name=…`) needs the account's
//!   credentials (private attachments) and answers 302 to a signed URL on another host;
//! - Slack: `url_private_download` needs the bot token; without it Slack answers 200 with its
//!   sign-in page (HTML), not an error;
//! - Jira: `/rest/api/3/attachment/content/{id}` needs the credential and answers 303 to the
//!   media host.
//!
//! The signed URLs are served by `/files/{key}` on `localhost` (the vendors are on `127.0.0.1`:
//! another origin), which refuses a request that carries `Authorization`, as S3 does for a
//! presigned URL ("Only one auth mechanism allowed"): a credential sent along is caught.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Shared;

/// One stored file.
#[derive(Clone, Debug)]
pub struct File {
    pub vendor: &'static str,
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Files by key, and every fetch of a signed URL: (key, whether it carried `Authorization`).
#[derive(Debug, Default)]
pub struct Files {
    pub by_key: std::collections::BTreeMap<String, File>,
    pub signed_fetches: Vec<(String, bool)>,
}

/// The signed URLs' host: the sandbox under another name.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/{key}", get(signed))
}

pub(crate) fn zendesk_routes() -> Router<Arc<Shared>> {
    Router::new().route("/attachments/token/{key}/", get(zendesk))
}

pub(crate) fn slack_routes() -> Router<Arc<Shared>> {
    Router::new().route("/files-pri/{key}/download/{name}", get(slack))
}

pub(crate) fn jira_routes() -> Router<Arc<Shared>> {
    Router::new().route("/rest/api/3/attachment/content/{key}", get(jira))
}

fn signed_url(shared: &Shared, key: &str) -> String {
    format!(
        "http://localhost:{}/files/{key}?X-Amz-Expires=300&X-Amz-Signature=sandbox",
        shared.addr.port()
    )
}

fn exists(shared: &Shared, key: &str, vendor: &str) -> bool {
    let state = shared.state.lock().expect("sandbox state");
    state
        .files
        .by_key
        .get(key)
        .is_some_and(|f| f.vendor == vendor)
}

async fn zendesk(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !super::zendesk::authenticated(&shared, &headers) {
        return super::zendesk::unauthorized();
    }
    if !exists(&shared, &key, "zendesk") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "RecordNotFound", "description": "Not found"})),
        )
            .into_response();
    }
    (StatusCode::FOUND, [("location", signed_url(&shared, &key))]).into_response()
}

async fn slack(
    State(shared): State<Arc<Shared>>,
    Path((key, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if super::slack::check(&shared, &headers).is_some() {
        return (
            StatusCode::OK,
            [("content-type", "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to your workspace</body></html>",
        )
            .into_response();
    }
    let file = {
        let state = shared.state.lock().expect("sandbox state");
        state
            .files
            .by_key
            .get(&key)
            .filter(|f| f.vendor == "slack")
            .cloned()
    };
    match file {
        Some(f) => (StatusCode::OK, [("content-type", f.content_type)], f.bytes).into_response(),
        None => (StatusCode::NOT_FOUND, "file_not_found").into_response(),
    }
}

async fn jira(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = super::jira::authorized(&shared, &headers) {
        return refused;
    }
    if !exists(&shared, &key, "jira") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"errorMessages": ["The attachment does not exist"], "errors": {}})),
        )
            .into_response();
    }
    (
        StatusCode::SEE_OTHER,
        [("location", signed_url(&shared, &key))],
    )
        .into_response()
}

async fn signed(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let carried_auth = headers.contains_key("authorization");
    let file = {
        let mut state = shared.state.lock().expect("sandbox state");
        state.files.signed_fetches.push((key.clone(), carried_auth));
        state.files.by_key.get(&key).cloned()
    };
    if carried_auth {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/xml")],
            "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>",
        )
            .into_response();
    }
    match file {
        Some(f) => (StatusCode::OK, [("content-type", f.content_type)], f.bytes).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [("content-type", "application/xml")],
            "<Error><Code>NoSuchKey</Code></Error>",
        )
            .into_response(),
    }
}
