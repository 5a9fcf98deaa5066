//! Zendesk Support API v2. Auth: API token (`{email}/token:{token}` basic). Retry logic (see
//! `triage::zendesk`): 429 → rate limited with `Retry-After`; 401 → auth; 409 (concurrent
//! update), 5xx and network errors → transient; 403 and other 4xx (404 RecordNotFound,
//! 422 RecordInvalid) → permanent with Zendesk's error text.

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::{
    param, read_response, wrong_credential, Connector, ConnectorError, Outcome, ResolveError,
};
use crate::routing::PlannedAction;
use crate::secrets::Credential;

pub struct Zendesk {
    http: reqwest::Client,
    base_url: String,
    email: String,
    token: SecretString,
}

impl Zendesk {
    pub fn new(http: reqwest::Client, credential: Credential) -> Result<Self, ResolveError> {
        let base_url = credential.base_url().to_owned();
        match credential {
            Credential::ApiToken {
                email, api_token, ..
            } => Ok(Self {
                http,
                base_url,
                email,
                token: api_token,
            }),
            other => Err(wrong_credential("zendesk", &other)),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base_url, path))
            .basic_auth(
                format!("{}/token", self.email),
                Some(self.token.expose_secret()),
            )
    }

    async fn send(&self, req: RequestBuilder) -> Result<Value, ConnectorError> {
        let resp = req.send().await.map_err(ConnectorError::from_reqwest)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.map_err(ConnectorError::from_reqwest)?;
        read_response("zendesk", status, &headers, body)
    }

    async fn update_ticket(&self, action: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let ticket_id = param(action, "ticket_id")?;
        if ticket_id.is_empty() || !ticket_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::Permanent(format!(
                "ticket_id {ticket_id:?} is not a Zendesk ticket id"
            )));
        }
        let mut ticket = serde_json::Map::new();
        if let Some(body) = action.params.get("comment") {
            let public = action.params.get("public").is_some_and(|p| p == "true");
            ticket.insert("comment".into(), json!({ "body": body, "public": public }));
        }
        if let Some(group) = action.params.get("group_id") {
            let group: u64 = group.parse().map_err(|_| {
                ConnectorError::Unsupported(format!("group_id {group:?} is not a number"))
            })?;
            ticket.insert("group_id".into(), json!(group));
        }
        if ticket.is_empty() {
            return Err(ConnectorError::Unsupported(
                "update_ticket needs a comment or a group_id".into(),
            ));
        }
        let body = self
            .send(
                self.request(Method::PUT, &format!("/api/v2/tickets/{ticket_id}.json"))
                    .json(&json!({ "ticket": ticket })),
            )
            .await?;
        // Defensive: the id may be a number or a string; a missing one is not fatal.
        let id = body
            .pointer("/ticket/id")
            .map(|v| v.to_string().trim_matches('"').to_owned());
        Ok(Outcome {
            object_id: id,
            detail: format!("ticket {ticket_id} updated"),
        })
    }
}

#[async_trait]
impl Connector for Zendesk {
    fn name(&self) -> &'static str {
        "zendesk"
    }

    async fn perform(
        &self,
        action: &PlannedAction,
        _idempotency_key: &str,
    ) -> Result<Outcome, ConnectorError> {
        match action.action.as_str() {
            "update_ticket" => self.update_ticket(action).await,
            other => Err(ConnectorError::Unsupported(format!(
                "zendesk has no action {other:?}"
            ))),
        }
    }

    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        let body = self
            .send(self.request(Method::GET, "/api/v2/users/me.json"))
            .await?;
        // An anonymous "user" (id null) means the credentials were not accepted.
        match body.pointer("/user/id") {
            Some(Value::Number(id)) => Ok(Outcome {
                object_id: Some(id.to_string()),
                detail: "authenticated".into(),
            }),
            _ => Err(ConnectorError::Auth(
                "users/me answered without an authenticated user".into(),
            )),
        }
    }
}
