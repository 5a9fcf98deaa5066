//! Outbound connectors: one module per vendor behind one trait. Each states its retry logic by
//! triaging every response into an [`Outcome`] or a [`ConnectorError`].

pub mod auth;
pub mod declared;
pub mod download;
pub mod drift;
pub mod grants;
pub mod structure;
pub mod triage;
pub mod wait;

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::routing::PlannedAction;
pub use triage::Refusal;

use crate::secrets::{Credential, SecretError};

/// What a successful action did, for the decision record.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// The vendor object created or changed (ticket id, message ts).
    pub object_id: Option<String>,
    /// What was done, in words (`ticket 42 created`).
    pub detail: String,
}

/// Why an action or probe failed, and so whether to retry.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum ConnectorError {
    /// Retrying cannot help (bad request, missing object): a human must look. `refusal` says
    /// what it was when the vendor said; `reason` says it for people.
    #[error("permanent failure: {reason}")]
    Permanent {
        /// Why, in words for people.
        reason: String,
        /// What the refusal was, when the vendor said.
        refusal: Refusal,
    },
    /// May succeed later (5xx, timeout, connection reset).
    #[error("transient failure: {0}")]
    Transient(String),
    /// The vendor asked us to slow down.
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// The wait the vendor asked for; `None` when it named none.
        retry_after: Option<Duration>,
    },
    /// The credential was rejected: refresh it and retry.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The refresh was refused or the credential is gone: a human must reconnect.
    #[error("re-authorization required: {0}")]
    ReauthRequired(String),
    /// The action or its parameters do not fit this connector.
    #[error("unsupported action: {0}")]
    Unsupported(String),
    /// A write that may have reached the vendor and had its effect: the answer timed out or the
    /// connection broke after the request was sent. Not retried at once; act looks again later,
    /// when the vendor-side key (and a lagging search index) can tell whether it happened.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl ConnectorError {
    /// A permanent failure with nothing more specific to say about it.
    pub fn permanent(reason: impl Into<String>) -> Self {
        ConnectorError::Permanent {
            reason: reason.into(),
            refusal: Refusal::Unspecified,
        }
    }

    /// What the vendor's refusal was, when it said (only permanent failures carry one).
    pub fn refusal(&self) -> &Refusal {
        match self {
            ConnectorError::Permanent { refusal, .. } => refusal,
            _ => &Refusal::Unspecified,
        }
    }

    /// The fields a refused write named as missing or invalid, so the refusal can become a drift
    /// finding naming them.
    pub(crate) fn refused_fields(&self) -> &[String] {
        match self.refusal() {
            Refusal::Invalid { fields } => fields,
            _ => &[],
        }
    }

    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            ConnectorError::Transient(_)
                | ConnectorError::RateLimited { .. }
                | ConnectorError::OutcomeUnknown(_)
        )
    }

    /// A triaged vendor response that was not ok.
    pub(crate) fn from_verdict(v: triage::Verdict) -> Self {
        match v.kind {
            triage::Kind::Ok => ConnectorError::permanent(format!("not an error: {}", v.reason)),
            triage::Kind::RateLimited => ConnectorError::RateLimited {
                retry_after: v.retry_after,
            },
            triage::Kind::Auth => ConnectorError::Auth(v.reason),
            triage::Kind::ReauthRequired => ConnectorError::ReauthRequired(v.reason),
            triage::Kind::Transient => ConnectorError::Transient(v.reason),
            triage::Kind::Permanent => ConnectorError::Permanent {
                reason: v.reason,
                refusal: v.refusal,
            },
        }
    }

    /// The word the external-call record uses for this outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            ConnectorError::Permanent { .. } => "permanent",
            ConnectorError::Transient(_) => "transient",
            ConnectorError::RateLimited { .. } => "rate_limited",
            ConnectorError::Auth(_) => "auth",
            ConnectorError::ReauthRequired(_) => "reauth_required",
            ConnectorError::Unsupported(_) => "unsupported",
            ConnectorError::OutcomeUnknown(_) => "outcome_unknown",
        }
    }

    /// Network-level failures: transient when the request cannot have been sent (no connection)
    /// or only read; for a write that may have been sent, the outcome is unknown. The message
    /// never includes request headers or the URL.
    pub(crate) fn from_reqwest(e: reqwest::Error, writes: bool) -> Self {
        let sent = !e.is_connect() && !e.is_builder();
        if writes && sent {
            ConnectorError::OutcomeUnknown(format!(
                "no answer after the request was sent: {}",
                e.without_url()
            ))
        } else {
            ConnectorError::Transient(format!("request failed: {}", e.without_url()))
        }
    }
}

/// One vendor's API.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The connector's name, as routes and settings use it (`zendesk`).
    fn name(&self) -> &'static str;

    /// Perform one planned action. `idempotency_key` is stable across retries of the same action.
    async fn perform(
        &self,
        action: &PlannedAction,
        idempotency_key: &str,
    ) -> Result<Outcome, ConnectorError>;

    /// A cheap authenticated call proving the credential works (canary, doctor).
    async fn probe(&self) -> Result<Outcome, ConnectorError>;

    /// What the credential may do, from the vendor's own endpoint, against what `actions` (the
    /// configured ones) need. Connectors with nothing to ask keep this default.
    async fn grants(
        &self,
        _actions: &std::collections::BTreeSet<String>,
    ) -> Result<grants::Grants, ConnectorError> {
        Ok(grants::Grants::default())
    }

    /// What this connector relies on in its vendor's answers (`drift`).
    fn contract(&self) -> Option<&'static crate::drift::Contract> {
        None
    }

    /// A few recent records of each object type in the contract, by read-only calls (the
    /// canary compares their structure with the contract and the last snapshot).
    async fn samples(&self) -> Result<Vec<(&'static str, Vec<serde_json::Value>)>, ConnectorError> {
        Ok(Vec::new())
    }

    /// What can be checked of the connection's setup without writing, for `actions` (this
    /// connector's configured action templates): a post-only endpoint (`drift::endpoint`), a
    /// vendor-side key property the actions rely on.
    async fn check_configuration(
        &self,
        _actions: &[&crate::routing::ActionTemplate],
    ) -> Vec<crate::drift::Finding> {
        Vec::new()
    }

    /// The fields the vendor requires when `actions` (this connector's configured action
    /// templates) create objects, read from its metadata without writing.
    async fn required_fields(
        &self,
        _actions: &[&crate::routing::ActionTemplate],
    ) -> Result<Vec<crate::drift::RequiredField>, ConnectorError> {
        Ok(Vec::new())
    }

    /// The bytes of a file an event names, within `limits` (`download::download` does the
    /// work; a vendor says where its credential may go and how it is sent).
    async fn download(
        &self,
        _file: &crate::event::Attachment,
        _limits: download::Limits,
    ) -> Result<Vec<u8>, ConnectorError> {
        Err(ConnectorError::Unsupported(format!(
            "{} attachments are not fetched",
            self.name()
        )))
    }
}

/// Why a connector could not be built for its connection.
#[derive(Debug, Error)]
pub enum ResolveError {
    /// No built-in or described connector has this name.
    #[error("connector {0:?} is not known to switchyard")]
    Unknown(String),
    /// The deployment names no connection secret for it: (name, name upper-cased for the setting).
    #[error("connector {0:?} has no connection secret configured ({1}_SECRET_ID)")]
    NotConfigured(String, String),
    /// The connection secret could not be read or parsed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The credential could not be refreshed or minted.
    #[error(transparent)]
    Auth(#[from] crate::connectors::auth::AuthError),
    /// A described connector with no base URL in its secret or its description.
    #[error("connector {0:?} has no base URL: put base_url in its secret or its description")]
    NoBaseUrl(String),
    /// The connection secret holds a kind of credential the connector cannot use.
    #[error("connector {connector:?} cannot use a {kind} credential")]
    WrongCredential {
        /// The connector's name.
        connector: String,
        /// The credential's `type` tag (`api_token`, `oauth2_refresh`, …).
        kind: &'static str,
    },
}

pub use crate::http::http_client;

tokio::task_local! {
    /// Set by act when this action may already have happened — its last try's outcome is
    /// unknown, or a worker died holding it: a connector whose vendor has no idempotency key
    /// looks for the effect before it acts again.
    static MAYBE_DONE: bool;
}

/// Run `f` knowing whether its action may already have happened.
pub async fn maybe_done<F: std::future::Future>(flag: bool, f: F) -> F::Output {
    MAYBE_DONE.scope(flag, f).await
}

/// Whether the action being performed may already have happened (see [`maybe_done`]).
pub(crate) fn is_maybe_done() -> bool {
    MAYBE_DONE.try_with(|f| *f).unwrap_or(false)
}

tokio::task_local! {
    /// Set by [`read_response`] from a successful answer's rate headers: the spacing the
    /// vendor's remaining budget allows ([`wait::budget_hint`]). act scopes it around each call
    /// and holds the shared budget when it is slower than the configured pace.
    pub(crate) static BUDGET_HINT: std::cell::Cell<Option<Duration>>;
}

/// Run one connector call and return, beside its result, the spacing its last answer's rate
/// headers asked for (see [`BUDGET_HINT`]).
pub async fn with_budget_hint<F: std::future::Future>(call: F) -> (F::Output, Option<Duration>) {
    BUDGET_HINT
        .scope(std::cell::Cell::new(None), async {
            let out = call.await;
            (out, BUDGET_HINT.with(|h| h.get()))
        })
        .await
}

/// A vendor's reading of one of its answers (its retry logic), before the wait is worked out.
pub type Triage = fn(&triage::Response) -> triage::Draft;

/// Triage a received response with a vendor's rules; ok → the JSON body (`null` when empty).
pub(crate) fn read_response(
    rules: Triage,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: String,
) -> Result<serde_json::Value, ConnectorError> {
    let response = triage::Response::from_parts(status.as_u16(), headers, body);
    let verdict = rules(&response).finish(&response, chrono::Utc::now());
    accept(response, verdict)
}

/// A triaged answer: ok → its JSON body (`null` when empty), with the grants and budget facts
/// its headers carry recorded; anything else → its error.
pub(crate) fn accept(
    response: triage::Response,
    verdict: triage::Verdict,
) -> Result<serde_json::Value, ConnectorError> {
    grants::record(&response.headers);
    if verdict.kind != triage::Kind::Ok {
        return Err(ConnectorError::from_verdict(verdict));
    }
    if let Some(hold) = wait::budget_hint(&response.headers, chrono::Utc::now()) {
        let _ = BUDGET_HINT.try_with(|h| h.set(Some(hold)));
    }
    Ok(serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null))
}

/// Send a request to `vendor` and read its answer with its triage `rules` (one external-call
/// record).
pub async fn send(
    vendor: &str,
    rules: Triage,
    req: reqwest::RequestBuilder,
) -> Result<serde_json::Value, ConnectorError> {
    send_with(vendor, req, |a| {
        read_response(rules, a.status, &a.headers, a.body)
    })
    .await
}

/// Send a request and read its answer with `read`; the call's record gets the outcome.
pub(crate) async fn send_with<T>(
    vendor: &str,
    req: reqwest::RequestBuilder,
    read: impl FnOnce(crate::calls::Answer) -> Result<T, ConnectorError>,
) -> Result<T, ConnectorError> {
    let (call, answer) = crate::calls::send(vendor, req).await;
    let writes = call.writes();
    let result = answer
        .map_err(|e| ConnectorError::from_reqwest(e, writes))
        .and_then(read);
    match &result {
        Ok(_) => call.finish("ok"),
        Err(e) => call.finish(e.outcome()),
    }
    result
}

/// The base URL and bearer token of a `bearer_token` or `oauth2_refresh` credential.
pub fn bearer(
    connector: &str,
    credential: Credential,
) -> Result<(String, secrecy::SecretString), ResolveError> {
    let base_url = credential.base_url().to_owned();
    match credential {
        Credential::BearerToken { token, .. } => Ok((base_url, token)),
        Credential::Oauth2Refresh { access_token, .. } => Ok((base_url, access_token)),
        Credential::Oauth2ClientCredentials {
            access_token: Some(t),
            ..
        }
        | Credential::Oauth2JwtBearer {
            access_token: Some(t),
            ..
        } => Ok((base_url, t)),
        other => Err(wrong_credential(connector, &other)),
    }
}

/// An id as vendors send it: a string, or a number (some APIs and proxies); empty is none.
pub(crate) fn id_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A short, safe excerpt of an error body for messages (vendor errors can be HTML pages).
pub fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(200).collect()
}

pub(crate) fn param<'a>(action: &'a PlannedAction, name: &str) -> Result<&'a str, ConnectorError> {
    action.params.get(name).map(String::as_str).ok_or_else(|| {
        ConnectorError::Unsupported(format!(
            "{}.{} needs parameter {name}",
            action.connector, action.action
        ))
    })
}

pub(crate) fn wrong_credential(connector: &str, c: &Credential) -> ResolveError {
    ResolveError::WrongCredential {
        connector: connector.to_owned(),
        kind: c.kind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_flattens_and_cuts() {
        let html = format!("<html>\n  <body>{}</body></html>", "x".repeat(500));
        let e = excerpt(&html);
        assert!(e.starts_with("<html> <body>") && e.chars().count() == 200);
    }

    /// A one-connection HTTP server on loopback that answers each request with `answer(path)`
    /// and reports the API-key header each request carried.
    async fn server(
        answer: fn(&str, u16) -> String,
    ) -> (
        u16,
        tokio::sync::mpsc::UnboundedReceiver<(String, Option<String>)>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("x-api-key: "))
                    .map(str::to_owned);
                let _ = tx.send((path.clone(), key));
                let _ = sock.write_all(answer(&path, port).as_bytes()).await;
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn redirects_stay_on_the_origin_called() {
        let (other, mut other_seen) = server(|_, _| {
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".into()
        })
        .await;
        static OTHER: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
        OTHER.set(other).unwrap();
        let (port, mut seen) = server(|path, port| match path {
            "/away" => format!(
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{}/stolen\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                OTHER.get().unwrap()
            ),
            "/move" => format!("HTTP/1.1 301 Moved\r\nlocation: http://127.0.0.1:{port}/here\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
            _ => "HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nhere".into(),
        })
        .await;
        let http = http_client();
        let get = |path: &str| {
            http.get(format!("http://127.0.0.1:{port}{path}"))
                .header("x-api-key", "k-123")
                .send()
        };
        // Within the origin: followed, the credential kept.
        let r = get("/move").await.unwrap();
        assert_eq!(
            (r.status().as_u16(), r.text().await.unwrap()),
            (200, "here".into())
        );
        assert_eq!(seen.recv().await.unwrap().0, "/move");
        assert_eq!(
            seen.recv().await.unwrap(),
            ("/here".into(), Some("k-123".into()))
        );
        // To another origin: not followed; the 302 is the answer and nothing reaches it.
        let r = get("/away").await.unwrap();
        assert_eq!(r.status().as_u16(), 302);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(other_seen.try_recv().is_err());
    }
}
