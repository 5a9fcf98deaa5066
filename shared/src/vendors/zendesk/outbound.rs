//! Zendesk Support API v2. Auth: API token (`{email}/token:{token}` basic). Retry logic (see
//! `triage` below): 429 → rate limited with `Retry-After`; 401 → auth; 409 (concurrent
//! update), 5xx and network errors → transient; 403 and other 4xx (404 RecordNotFound,
//! 422 RecordInvalid) → permanent with Zendesk's error text.
//!
//! Actions: `update_ticket` (comment public or internal, group, assignee, priority, tags added,
//! `custom_field.<id>`), `create_ticket` (vendor-side key: `external_id` = the idempotency key,
//! looked up before creating).

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::connectors::triage::{by_status, str_at, success, Draft, Refusal, Response};
use crate::connectors::{
    param, wrong_credential, Connector, ConnectorError, Outcome, ResolveError,
};
use crate::drift::{Contract, Field, Kind, RequiredField, Shape};
use crate::routing::{ActionTemplate, PlannedAction};
use crate::secrets::Credential;

/// The Zendesk Support connector: creates and updates tickets, with an API token.
pub struct Zendesk {
    http: reqwest::Client,
    base_url: String,
    email: String,
    token: SecretString,
}

impl Zendesk {
    /// A connector over an `api_token` credential (site URL, e-mail, token); any other is refused.
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

    /// The fields an update or a create sets from the action's parameters.
    fn ticket_fields(a: &PlannedAction) -> Result<serde_json::Map<String, Value>, ConnectorError> {
        let number = |name: &str, v: &str| {
            v.parse::<u64>()
                .map(|n| json!(n))
                .map_err(|_| ConnectorError::Unsupported(format!("{name} {v:?} is not a number")))
        };
        let mut t = serde_json::Map::new();
        // `comment` is plain text; `html_comment` is HTML whose event values the route escaped.
        let public = a.params.get("public").is_some_and(|p| p == "true");
        if let Some(html) = a.params.get("html_comment") {
            t.insert(
                "comment".into(),
                json!({ "html_body": html, "public": public }),
            );
        } else if let Some(body) = a.params.get("comment") {
            t.insert("comment".into(), json!({ "body": body, "public": public }));
        }
        for field in ["group_id", "assignee_id"] {
            if let Some(v) = a.params.get(field) {
                t.insert(field.into(), number(field, v)?);
            }
        }
        if let Some(p) = a.params.get("priority") {
            if !["urgent", "high", "normal", "low"].contains(&p.as_str()) {
                return Err(ConnectorError::Unsupported(format!(
                    "priority {p:?} is not urgent, high, normal or low"
                )));
            }
            t.insert("priority".into(), json!(p));
        }
        if let Some(tags) = a.params.get("tags") {
            // additional_tags adds without replacing the tags the ticket already has.
            let tags: Vec<&str> = tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            t.insert("additional_tags".into(), json!(tags));
        }
        let custom: Vec<Value> = a
            .params
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("custom_field.")?, v)))
            .map(|(id, v)| Ok(json!({"id": number("custom field id", id)?, "value": v})))
            .collect::<Result<_, ConnectorError>>()?;
        if !custom.is_empty() {
            t.insert("custom_fields".into(), json!(custom));
        }
        Ok(t)
    }

    /// Update a ticket, its audit tagged with the action's key (`ticket.metadata`, kept as the
    /// audit's `metadata.custom`). When the update may already have happened (a lost answer, a
    /// dead worker's key), the ticket's audits are read first and one with the key counts as done:
    /// a comment is not posted twice.
    async fn update_ticket(
        &self,
        action: &PlannedAction,
        key: &str,
    ) -> Result<Outcome, ConnectorError> {
        let ticket_id = param(action, "ticket_id")?;
        if ticket_id.is_empty() || !ticket_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::permanent(format!(
                "ticket_id {ticket_id:?} is not a Zendesk ticket id"
            )));
        }
        let mut ticket = Self::ticket_fields(action)?;
        if ticket.is_empty() {
            return Err(ConnectorError::Unsupported(
                "update_ticket needs a comment, group_id, assignee_id, priority, tags or custom_field.<id>".into(),
            ));
        }
        if crate::connectors::is_maybe_done() && self.audited(ticket_id, key).await? {
            return Ok(Outcome {
                object_id: Some(ticket_id.to_owned()),
                detail: format!("ticket {ticket_id} already updated for this action"),
            });
        }
        ticket.insert("metadata".into(), json!({ "switchyard_key": key }));
        let body = send(
            self.request(Method::PUT, &format!("/api/v2/tickets/{ticket_id}.json"))
                .json(&json!({ "ticket": ticket })),
        )
        .await?;
        Ok(dropped(
            &ticket,
            &body,
            outcome(&body, &format!("ticket {ticket_id} updated")),
            action,
        ))
    }

    /// Whether one of the ticket's audits carries this action's key (newest first).
    async fn audited(&self, ticket_id: &str, key: &str) -> Result<bool, ConnectorError> {
        let path = format!("/api/v2/tickets/{ticket_id}/audits.json?sort_order=desc");
        let body = send(self.request(Method::GET, &path)).await?;
        Ok(body["audits"].as_array().is_some_and(|audits| {
            audits
                .iter()
                .any(|a| a["metadata"]["custom"]["switchyard_key"] == key)
        }))
    }

    /// Create a ticket whose `external_id` is the action's idempotency key — looked up first, so
    /// a retry after a crash finds the ticket instead of opening a second one.
    async fn create_ticket(
        &self,
        action: &PlannedAction,
        key: &str,
    ) -> Result<Outcome, ConnectorError> {
        let found = send(self.request(
            Method::GET,
            &format!(
                "/api/v2/tickets.json?{}",
                serde_urlencoded::to_string([("external_id", key)]).unwrap_or_default()
            ),
        ))
        .await?;
        if let Some(existing) = found.pointer("/tickets/0") {
            let id = crate::connectors::id_text(existing.get("id")).unwrap_or_default();
            return Ok(Outcome {
                object_id: Some(id.clone()),
                detail: format!("ticket {id} already created for this action"),
            });
        }
        let mut ticket = Self::ticket_fields(action)?;
        ticket.insert("subject".into(), json!(param(action, "subject")?));
        if !ticket.contains_key("comment") {
            return Err(ConnectorError::Unsupported(
                "create_ticket needs a comment (the description)".into(),
            ));
        }
        if let Some(tags) = ticket.remove("additional_tags") {
            ticket.insert("tags".into(), tags);
        }
        ticket.insert("external_id".into(), json!(key));
        let body = send(
            self.request(Method::POST, "/api/v2/tickets.json")
                .json(&json!({ "ticket": ticket })),
        )
        .await?;
        Ok(dropped(
            &ticket,
            &body,
            outcome(&body, "ticket created"),
            action,
        ))
    }
}

/// What switchyard relies on in Zendesk's answers (Support API v2, as documented in its ticket and
/// user JSON formats): the canary compares live answers with it.
pub(crate) const CONTRACT: Contract = Contract {
    connector: "zendesk",
    api_version: "v2",
    shapes: &[
        Shape {
            object: "user",
            call: "GET /api/v2/users/me.json",
            fields: &[
                Field::new("id", Kind::Number).read(),
                Field::new("name", Kind::String),
                Field::new("role", Kind::String)
                    .read()
                    .values(&["end-user", "agent", "admin"]),
            ],
        },
        Shape {
            object: "ticket",
            call: "GET /api/v2/tickets.json?sort_by=updated_at&sort_order=desc",
            fields: &[
                Field::new("id", Kind::Id).read(),
                Field::new("url", Kind::String),
                Field::new("subject", Kind::String),
                Field::new("status", Kind::String)
                    .values(&["new", "open", "pending", "hold", "solved", "closed"]),
                Field::new("priority", Kind::String)
                    .nullable()
                    .values(&["urgent", "high", "normal", "low"]),
                Field::new("group_id", Kind::Id).nullable(),
                Field::new("assignee_id", Kind::Id).nullable(),
                Field::new("external_id", Kind::String).nullable(),
                Field::new("tags", Kind::Array),
                Field::new("tags[]", Kind::String),
                Field::new("custom_fields", Kind::Array),
                Field::new("custom_fields[]/id", Kind::Number),
                Field::new("via", Kind::Object).sometimes(),
                Field::new("via/channel", Kind::String),
                Field::new("created_at", Kind::Date),
                Field::new("updated_at", Kind::Date).read(),
            ],
        },
    ],
};

/// Ticket fields Zendesk documents; others in a live answer are drift (information).
const TICKET_FIELDS: &[&str] = &[
    "id",
    "url",
    "external_id",
    "type",
    "subject",
    "raw_subject",
    "description",
    "priority",
    "status",
    "recipient",
    "requester_id",
    "submitter_id",
    "assignee_id",
    "organization_id",
    "group_id",
    "collaborator_ids",
    "follower_ids",
    "email_cc_ids",
    "forum_topic_id",
    "problem_id",
    "has_incidents",
    "is_public",
    "due_at",
    "tags",
    "custom_fields",
    "satisfaction_rating",
    "sharing_agreement_ids",
    "custom_status_id",
    "fields",
    "followup_ids",
    "ticket_form_id",
    "brand_id",
    "allow_channelback",
    "allow_attachments",
    "from_messaging_channel",
    "via",
    "created_at",
    "updated_at",
    "generated_timestamp",
];

/// Zendesk drops a custom field it does not know with a 200. The answer's ticket says what was
/// kept: a field sent and not there is reported (in the outcome, and as a drift finding).
fn dropped(
    sent: &serde_json::Map<String, Value>,
    body: &Value,
    mut o: Outcome,
    a: &PlannedAction,
) -> Outcome {
    let kept: Vec<&Value> = body
        .pointer("/ticket/custom_fields")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(|f| f.get("id")).collect())
        .unwrap_or_default();
    let lost: Vec<String> = sent
        .get("custom_fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("id"))
        .filter(|id| !kept.contains(id))
        .map(|id| format!("custom_field.{id}"))
        .collect();
    if !lost.is_empty() {
        crate::connectors::drift::write_dropped("zendesk", &a.action, &lost);
        o.detail = format!(
            "{}; Zendesk dropped {} (not a field of this account)",
            o.detail,
            lost.join(", ")
        );
    }
    o
}

/// The ticket id (a number, or a string from some proxies) and its update time, read
/// defensively: a missing id or an odd date format is reported, never fatal.
fn outcome(body: &Value, what: &str) -> Outcome {
    let ticket = body.get("ticket").unwrap_or(&Value::Null);
    crate::connectors::drift::observe(&CONTRACT, "ticket", ticket, TICKET_FIELDS);
    let id = crate::connectors::id_text(ticket.get("id"));
    let updated = ticket
        .get("updated_at")
        .and_then(|v| crate::dates::parse_json(v).ok())
        .map(|t| format!(" at {}", crate::dates::format(&t)))
        .unwrap_or_default();
    let what = match (&id, what) {
        (Some(id), "ticket created") => format!("ticket {id} created"),
        (None, w) => format!("{w} (the answer had no ticket id)"),
        (_, w) => w.to_owned(),
    };
    Outcome {
        object_id: id,
        detail: format!("{what}{updated}"),
    }
}

#[async_trait]
impl Connector for Zendesk {
    fn name(&self) -> &'static str {
        "zendesk"
    }

    fn contract(&self) -> Option<&'static Contract> {
        Some(&CONTRACT)
    }

    async fn samples(&self) -> Result<Vec<(&'static str, Vec<Value>)>, ConnectorError> {
        let me = send(self.request(Method::GET, "/api/v2/users/me.json")).await?;
        let recent = send(self.request(
            Method::GET,
            "/api/v2/tickets.json?sort_by=updated_at&sort_order=desc&per_page=5",
        ))
        .await?;
        let tickets = recent["tickets"].as_array().cloned().unwrap_or_default();
        Ok(vec![
            ("user", vec![me["user"].clone()]),
            ("ticket", tickets),
        ])
    }

    /// Active ticket fields marked `required` (agents must fill them to solve a ticket; Zendesk
    /// does not refuse an API create without them, so a ticket switchyard creates waits for a
    /// person) and, when a route creates tickets through a ticket form, the form's fields.
    async fn required_fields(
        &self,
        actions: &[&ActionTemplate],
    ) -> Result<Vec<RequiredField>, ConnectorError> {
        if !actions.iter().any(|a| a.action == "create_ticket") {
            return Ok(Vec::new());
        }
        let fields = send(self.request(Method::GET, "/api/v2/ticket_fields.json")).await?;
        Ok(fields["ticket_fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["active"] == true && f["required"] == true)
            // System fields (subject, description, status…) are set by the action or defaulted.
            .filter(|f| f["removable"] != false)
            .filter_map(|f| {
                let id = f["id"].as_u64()?;
                Some(RequiredField {
                    object: "ticket",
                    action: "create_ticket",
                    field: id.to_string(),
                    name: f["title"].as_str().unwrap_or_default().to_owned(),
                    param: format!("custom_field.{id}"),
                    enforced_on_create: false,
                })
            })
            .collect())
    }

    async fn perform(
        &self,
        action: &PlannedAction,
        idempotency_key: &str,
    ) -> Result<Outcome, ConnectorError> {
        match action.action.as_str() {
            "update_ticket" => self.update_ticket(action, idempotency_key).await,
            "create_ticket" => self.create_ticket(action, idempotency_key).await,
            other => Err(ConnectorError::Unsupported(format!(
                "zendesk has no action {other:?}"
            ))),
        }
    }

    async fn download(
        &self,
        file: &crate::event::Attachment,
        limits: crate::connectors::download::Limits,
    ) -> Result<Vec<u8>, ConnectorError> {
        use crate::connectors::download::{download, origin_of, Fetch};
        // `content_url` may be on another host (Zendesk: "take care not to inadvertently send
        // Zendesk authentication credentials"): only the account's own origin gets them.
        let url = file
            .url
            .as_deref()
            .ok_or_else(|| ConnectorError::permanent("the attachment has no content_url"))?;
        let trusted: Vec<String> = origin_of(&self.base_url).into_iter().collect();
        let fetch = Fetch {
            vendor: "zendesk",
            rules: triage,
            trusted: &trusted,
            limits,
        };
        download(&self.http, url, &fetch, |r| {
            r.basic_auth(
                format!("{}/token", self.email),
                Some(self.token.expose_secret()),
            )
        })
        .await
    }

    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        let body = send(self.request(Method::GET, "/api/v2/users/me.json")).await?;
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

    /// Ticket actions need an agent or admin: an end-user token can only see its own requests.
    async fn grants(
        &self,
        actions: &std::collections::BTreeSet<String>,
    ) -> Result<crate::connectors::grants::Grants, ConnectorError> {
        let me = send(self.request(Method::GET, "/api/v2/users/me.json")).await?;
        let role = me
            .pointer("/user/role")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        // Admins can do everything agents can.
        let granted = match role {
            "admin" => vec!["role:admin".to_owned(), "role:agent".to_owned()],
            other => vec![format!("role:{other}")],
        };
        Ok(crate::connectors::grants::Grants::compare(
            "zendesk",
            actions,
            granted,
            |a| match a {
                "create_ticket" | "update_ticket" => &["role:agent"],
                _ => &[],
            },
        ))
    }
}

// ---------------------------------------------------------------- triage
// Which answers retry, which 200s are errors, which refusals mean re-authorization.

/// Send one request to zendesk and read its answer with [`triage`] (one external-call record).
async fn send(req: reqwest::RequestBuilder) -> Result<serde_json::Value, ConnectorError> {
    crate::connectors::send("zendesk", triage, req).await
}

/// Zendesk: `{"error": "RecordNotFound", "description": "Not found"}` or
/// `{"error": {"title": …, "message": …}}`; 409 means a concurrent update (retry).
pub(crate) fn triage(r: &Response) -> Draft {
    if (200..300).contains(&r.status) {
        return success(r);
    }
    let mut invalid = Vec::new();
    let detail = r
        .json()
        .map(|v| {
            let error = match v.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(e @ Value::Object(_)) => [str_at(e, "/title"), str_at(e, "/message")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": "),
                _ => String::new(),
            };
            let description = str_at(&v, "/description").unwrap_or_default();
            let mut text = format!("{error} {description}").trim().to_owned();
            // RecordInvalid: `details` names each field (`base` entries by `field_key`).
            if let Some(details) = v.get("details").and_then(Value::as_object) {
                let mut fields = Vec::new();
                let mut words = Vec::new();
                for (key, items) in details {
                    for item in items.as_array().into_iter().flatten() {
                        match (key.as_str(), item.get("field_key").and_then(Value::as_u64)) {
                            ("base", Some(id)) => fields.push(format!("custom_field.{id}")),
                            ("base", None) => {}
                            (k, _) => fields.push(k.to_owned()),
                        }
                        if let Some(d) = str_at(item, "/description") {
                            words.push(d.to_owned());
                        }
                    }
                }
                if !words.is_empty() {
                    text = format!("{text}: {}", words.join("; "));
                }
                if !fields.is_empty() {
                    text = format!("{text}; invalid fields [{}]", fields.join(", "));
                }
                invalid = fields;
            }
            text
        })
        .unwrap_or_default();
    let d = by_status(r, &detail);
    if invalid.is_empty() {
        d
    } else {
        d.refused(Refusal::Invalid { fields: invalid })
    }
}
