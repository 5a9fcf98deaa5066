//! HubSpot CRM API v3 (associations v4). Auth: bearer token (a private app's token, or an OAuth
//! access token). Retry logic (see `triage` below): 429 → rate limited, the wait from
//! `Retry-After` or the named policy (`SECONDLY` 1 s, `TEN_SECONDLY_ROLLING` the interval
//! header); 401 `EXPIRED_AUTHENTICATION`/`INVALID_AUTHENTICATION` → auth; 403 `MISSING_SCOPES`,
//! 409 `CONFLICT`, 400 `VALIDATION_ERROR`, 404 → permanent; 423, 477, 5xx → transient.
//!
//! Actions: `create_ticket` (vendor-side key: the ticket property `switchyard_key`, searched
//! before creating — create it in the portal as a single-line text property), `update_ticket`,
//! `upsert_contact` (by e-mail: naturally idempotent), `add_note` (to a ticket or contact),
//! `associate`.

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use crate::connectors::triage::{
    by_status, draft, str_at, success, Draft, Kind as TriageKind, Refusal, Response,
};
use crate::connectors::wait::header;
use crate::connectors::{param, Connector, ConnectorError, Outcome, ResolveError};
use crate::drift::{Contract, Field, Kind, Shape};
use crate::routing::PlannedAction;
use crate::secrets::Credential;
use std::time::Duration;

/// The ticket properties the canary reads (a portal has many more; only these are asked for).
const SAMPLE_PROPERTIES: &str = "subject,hs_pipeline,hs_pipeline_stage,hs_ticket_priority";

/// What switchyard relies on in HubSpot's answers (CRM API v3): the canary compares live answers
/// with it. Property values are strings (or null when unset), whatever the property's type.
pub(crate) const CONTRACT: Contract = Contract {
    connector: "hubspot",
    api_version: "crm-v3",
    shapes: &[
        Shape {
            object: "account",
            call: "GET /account-info/v3/details",
            fields: &[Field::new("portalId", Kind::Id).read()],
        },
        Shape {
            object: "ticket",
            call: "GET /crm/v3/objects/tickets",
            fields: &[
                Field::new("id", Kind::Id).read(),
                Field::new("properties", Kind::Object),
                Field::new("properties/subject", Kind::String).nullable(),
                Field::new("properties/hs_pipeline", Kind::String),
                Field::new("properties/hs_pipeline_stage", Kind::String),
                Field::new("properties/hs_ticket_priority", Kind::String)
                    .nullable()
                    .values(&["LOW", "MEDIUM", "HIGH", "URGENT"]),
                Field::new("createdAt", Kind::Date),
                Field::new("updatedAt", Kind::Date),
                Field::new("archived", Kind::Bool),
            ],
        },
    ],
};

/// The ticket property that carries switchyard's idempotency key.
pub(crate) const KEY_PROPERTY: &str = "switchyard_key";

/// HubSpot-defined association types (v4): note → ticket, note → contact.
const NOTE_TO_TICKET: u32 = 228;
const NOTE_TO_CONTACT: u32 = 202;

/// The HubSpot connector: CRM tickets, contacts, notes and associations, with a bearer token.
pub struct Hubspot {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
}

/// Properties an action sets from its parameters: `<prefix>.<property>`.
fn properties(a: &PlannedAction, prefix: &str) -> Map<String, Value> {
    a.params
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix)
                .and_then(|k| k.strip_prefix('.'))
                .map(|p| (p.to_owned(), json!(v)))
        })
        .collect()
}

/// HubSpot record ids are decimal strings (sometimes sent as numbers).
fn object_id<'a>(a: &'a PlannedAction, name: &str) -> Result<&'a str, ConnectorError> {
    let id = param(a, name)?;
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(ConnectorError::permanent(format!(
            "{name} {id:?} is not a HubSpot record id"
        )))
    }
}

impl Hubspot {
    /// A connector over a bearer or OAuth credential's base URL and access token; a credential
    /// of another type, or one with no access token yet, is refused.
    pub fn new(http: reqwest::Client, credential: Credential) -> Result<Self, ResolveError> {
        let (base_url, token) = crate::connectors::bearer("hubspot", credential)?;
        Ok(Self {
            http,
            base_url,
            token,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.token.expose_secret())
    }

    async fn create_ticket(&self, a: &PlannedAction, key: &str) -> Result<Outcome, ConnectorError> {
        let found = send(self.request(Method::POST, "/crm/v3/objects/tickets/search").json(&json!({
                "filterGroups": [{"filters": [{"propertyName": KEY_PROPERTY, "operator": "EQ", "value": key}]}],
                "properties": ["subject"], "limit": 1
            })))
            .await?;
        if let Some(id) = crate::connectors::id_text(found.pointer("/results/0/id")) {
            return Ok(Outcome {
                object_id: Some(id.clone()),
                detail: format!("ticket {id} already created for this action"),
            });
        }
        let mut props = properties(a, "ticket");
        if !props.contains_key("subject") {
            return Err(ConnectorError::Unsupported(
                "create_ticket needs ticket.subject".into(),
            ));
        }
        props.entry("hs_pipeline").or_insert(json!("0"));
        props.entry("hs_pipeline_stage").or_insert(json!("1"));
        props.insert(KEY_PROPERTY.into(), json!(key));
        let body = send(
            self.request(Method::POST, "/crm/v3/objects/tickets")
                .json(&json!({"properties": props})),
        )
        .await?;
        let id = crate::connectors::id_text(body.get("id")).ok_or_else(|| {
            ConnectorError::Transient("HubSpot created a ticket but sent no id".into())
        })?;
        Ok(Outcome {
            object_id: Some(id.clone()),
            detail: format!("ticket {id} created"),
        })
    }

    async fn update_ticket(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let id = object_id(a, "ticket_id")?;
        let props = properties(a, "ticket");
        if props.is_empty() {
            return Err(ConnectorError::Unsupported(
                "update_ticket needs ticket.* properties".into(),
            ));
        }
        send(
            self.request(Method::PATCH, &format!("/crm/v3/objects/tickets/{id}"))
                .json(&json!({"properties": props})),
        )
        .await?;
        Ok(Outcome {
            object_id: Some(id.to_owned()),
            detail: format!("ticket {id} updated"),
        })
    }

    async fn upsert_contact(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let email = param(a, "email")?;
        if !email.contains('@') {
            return Err(ConnectorError::permanent("email is not an e-mail address"));
        }
        let mut props = properties(a, "contact");
        props.insert("email".into(), json!(email));
        let body = send(
            self.request(Method::POST, "/crm/v3/objects/contacts/batch/upsert")
                .json(&json!({
                    "inputs": [{"idProperty": "email", "id": email, "properties": props}]
                })),
        )
        .await?;
        let id = crate::connectors::id_text(body.pointer("/results/0/id"));
        let new = body
            .pointer("/results/0/new")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Outcome {
            object_id: id.clone(),
            detail: format!(
                "contact {} {}",
                id.as_deref().unwrap_or("?"),
                if new { "created" } else { "updated" }
            ),
        })
    }

    async fn add_note(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let (to, type_id) = match (a.params.get("ticket_id"), a.params.get("contact_id")) {
            (Some(_), _) => (object_id(a, "ticket_id")?, NOTE_TO_TICKET),
            (None, Some(_)) => (object_id(a, "contact_id")?, NOTE_TO_CONTACT),
            (None, None) => {
                return Err(ConnectorError::Unsupported(
                    "add_note needs ticket_id or contact_id".into(),
                ))
            }
        };
        let body = send(self.request(Method::POST, "/crm/v3/objects/notes").json(&json!({
                "properties": {"hs_timestamp": crate::dates::format(&chrono::Utc::now()), "hs_note_body": param(a, "note")?},
                "associations": [{"to": {"id": to}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}]
            })))
            .await?;
        Ok(Outcome {
            object_id: crate::connectors::id_text(body.get("id")),
            detail: format!("note added to {to}"),
        })
    }

    async fn associate(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let kinds = ["contacts", "companies", "deals", "tickets", "notes"];
        let (from, to) = (param(a, "from_type")?, param(a, "to_type")?);
        if !kinds.contains(&from) || !kinds.contains(&to) {
            return Err(ConnectorError::Unsupported(format!(
                "associate works between {}",
                kinds.join(", ")
            )));
        }
        let (from_id, to_id) = (object_id(a, "from_id")?, object_id(a, "to_id")?);
        send(self.request(
            Method::PUT,
            &format!("/crm/v4/objects/{from}/{from_id}/associations/default/{to}/{to_id}"),
        ))
        .await?;
        Ok(Outcome {
            object_id: Some(from_id.to_owned()),
            detail: format!("{from} {from_id} associated with {to} {to_id}"),
        })
    }
}

#[async_trait]
impl Connector for Hubspot {
    fn name(&self) -> &'static str {
        "hubspot"
    }

    async fn perform(&self, action: &PlannedAction, key: &str) -> Result<Outcome, ConnectorError> {
        match action.action.as_str() {
            "create_ticket" => self.create_ticket(action, key).await,
            "update_ticket" => self.update_ticket(action).await,
            "upsert_contact" => self.upsert_contact(action).await,
            "add_note" => self.add_note(action).await,
            "associate" => self.associate(action).await,
            other => Err(ConnectorError::Unsupported(format!(
                "hubspot has no action {other:?}"
            ))),
        }
    }

    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        let info = send(self.request(Method::GET, "/account-info/v3/details")).await?;
        let portal = crate::connectors::id_text(info.get("portalId"))
            .ok_or_else(|| ConnectorError::permanent("account-info answered without a portalId"))?;
        Ok(Outcome {
            object_id: Some(portal),
            detail: "authenticated".into(),
        })
    }

    fn contract(&self) -> Option<&'static Contract> {
        Some(&CONTRACT)
    }

    async fn samples(&self) -> Result<Vec<(&'static str, Vec<Value>)>, ConnectorError> {
        let info = send(self.request(Method::GET, "/account-info/v3/details")).await?;
        let page = send(self.request(
            Method::GET,
            &format!("/crm/v3/objects/tickets?limit=5&properties={SAMPLE_PROPERTIES}"),
        ))
        .await?;
        let tickets = page["results"].as_array().cloned().unwrap_or_default();
        Ok(vec![("account", vec![info]), ("ticket", tickets)])
    }

    /// `create_ticket` keys each ticket by the `switchyard_key` property, which a portal admin
    /// creates: without it every create is refused (`PROPERTY_DOESNT_EXIST`).
    async fn check_configuration(
        &self,
        actions: &[&crate::routing::ActionTemplate],
    ) -> Vec<crate::drift::Finding> {
        if !actions.iter().any(|a| a.action == "create_ticket") {
            return Vec::new();
        }
        let path = format!("/crm/v3/properties/tickets/{KEY_PROPERTY}");
        let detail = match send(self.request(Method::GET, &path)).await {
            Ok(_) => return Vec::new(),
            Err(ConnectorError::Permanent {
                refusal: Refusal::NotFound,
                ..
            }) => format!(
                "the ticket property {KEY_PROPERTY:?} does not exist: create_ticket will be refused; create it in the portal (single-line text)"
            ),
            // Not knowable now (a 5xx, a rate limit): the next run asks again.
            Err(_) => return Vec::new(),
        };
        vec![crate::drift::Finding {
            connector: "hubspot".into(),
            object: "configuration".into(),
            kind: crate::drift::FindingKind::Configuration,
            severity: crate::drift::Severity::Breaking,
            path: format!("property {KEY_PROPERTY}"),
            detail,
            example: None,
            routes: Vec::new(),
        }]
    }

    async fn grants(
        &self,
        actions: &std::collections::BTreeSet<String>,
    ) -> Result<crate::connectors::grants::Grants, ConnectorError> {
        // A private app's token info lists its scopes.
        let info = send(
            self.request(Method::POST, "/oauth/v2/private-apps/get/access-token-info")
                .json(&json!({"tokenKey": self.token.expose_secret()})),
        )
        .await?;
        let scopes = info
            .get("scopes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(crate::connectors::grants::Grants::compare(
            "hubspot", actions, scopes, required,
        ))
    }
}

/// The scopes each action needs (HubSpot's CRM API reference).
fn required(action: &str) -> &'static [&'static str] {
    match action {
        "create_ticket" | "update_ticket" | "associate" => &["tickets"],
        "upsert_contact" | "add_note" => &["crm.objects.contacts.write"],
        _ => &[],
    }
}

// ---------------------------------------------------------------- triage
// Which answers retry, which 200s are errors, which refusals mean re-authorization.

/// Send one request to hubspot and read its answer with [`triage`] (one external-call record).
async fn send(req: reqwest::RequestBuilder) -> Result<serde_json::Value, ConnectorError> {
    crate::connectors::send("hubspot", triage, req).await
}

/// HubSpot: `{"status": "error", "message": …, "category": …, "errorType": "RATE_LIMIT",
/// "policyName": "TEN_SECONDLY_ROLLING"}`. A 429 rarely carries `Retry-After`; the policy says
/// which window to wait out.
pub(crate) fn triage(r: &Response) -> Draft {
    if (200..300).contains(&r.status) {
        return match r.json() {
            Some(v) if str_at(&v, "/status") == Some("error") => draft(
                TriageKind::Permanent,
                format!(
                    "HTTP {} with an error body: {}",
                    r.status,
                    hubspot_detail(&v)
                ),
            ),
            _ => success(r),
        };
    }
    let v = r.json().unwrap_or(Value::Null);
    let category = str_at(&v, "/category").unwrap_or_default();
    let detail = hubspot_detail(&v);
    if r.status == 429 || str_at(&v, "/errorType") == Some("RATE_LIMIT") {
        let policy = str_at(&v, "/policyName").unwrap_or_default();
        let implied_wait = match policy {
            "SECONDLY" => Some(Duration::from_secs(1)),
            "TEN_SECONDLY_ROLLING" => Some(
                header(&r.headers, "x-hubspot-ratelimit-interval-milliseconds")
                    .and_then(|ms| ms.parse().ok())
                    .map(Duration::from_millis)
                    .unwrap_or(Duration::from_secs(10)),
            ),
            // DAILY resets at midnight in the account's time zone, which the response omits.
            _ => None,
        };
        return Draft {
            implied_wait,
            ..draft(
                TriageKind::RateLimited,
                format!("HTTP {}: {detail}", r.status),
            )
        };
    }
    match (r.status, category) {
        (401, _) | (_, "EXPIRED_AUTHENTICATION" | "INVALID_AUTHENTICATION") => {
            draft(TriageKind::Auth, format!("HTTP {}: {detail}", r.status))
        }
        (403, "MISSING_SCOPES") => {
            let scopes: Vec<&str> = v
                .pointer("/errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|e| {
                    ["/context/requiredGranularScopes", "/context/requiredScopes"]
                        .into_iter()
                        .filter_map(|p| e.pointer(p).and_then(Value::as_array))
                        .flatten()
                        .filter_map(Value::as_str)
                })
                .collect();
            let needs = if scopes.is_empty() {
                String::new()
            } else {
                format!("; needs {}", scopes.join(", "))
            };
            draft(
                TriageKind::Permanent,
                format!("HTTP 403: {detail}{needs} (a human must grant the scopes)"),
            )
            .refused(Refusal::MissingPermission)
        }
        // "Contact already exists. Existing ID: 151": retrying cannot help.
        (409, _) => draft(TriageKind::Permanent, format!("HTTP 409: {detail}")),
        // 477 Migration In Progress; 423 Locked (object being merged).
        (477, _) => draft(TriageKind::Transient, format!("HTTP 477: {detail}")),
        _ => by_status(r, &detail),
    }
}

fn hubspot_detail(v: &Value) -> String {
    [
        str_at(v, "/category"),
        str_at(v, "/policyName"),
        str_at(v, "/message"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(": ")
}

/// create_ticket searches for its idempotency key first: the search limit applies.
pub(crate) fn pacing_class(action: &PlannedAction) -> Option<String> {
    (action.action == "create_ticket").then(|| "search".to_owned())
}
