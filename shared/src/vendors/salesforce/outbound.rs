//! Salesforce REST API, pinned to v62.0. Auth: OAuth 2.0 bearer access token against the org's
//! instance URL (`base_url`). Retry logic (see `triage` below): 401 `INVALID_SESSION_ID` →
//! auth; **403 `REQUEST_LIMIT_EXCEEDED` → rate limited**; `UNABLE_TO_LOCK_ROW` and 5xx →
//! transient; other errors (`REQUIRED_FIELD_MISSING`, `INSUFFICIENT_ACCESS…`, 300 multiple
//! external-id matches) → permanent.
//!
//! Actions: `upsert_case` (by an external-id field, default `Switchyard_Key__c`: the vendor-side
//! idempotency key — a retry after a crash updates the same Case instead of creating another),
//! `update_case`, `add_case_comment`.

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use crate::connectors::triage::{
    by_status, draft, str_at, success, Draft, Kind as TriageKind, Refusal, Response,
};
use crate::connectors::{param, Connector, ConnectorError, Outcome, ResolveError};
use crate::drift::{Contract, Field, Kind, RequiredField, Shape};
use crate::routing::{ActionTemplate, PlannedAction};
use crate::secrets::Credential;

/// The recent Cases the canary reads.
const RECENT_CASES: &str = "SELECT Id, CaseNumber, Subject, Status, Priority, IsClosed, \
LastModifiedDate FROM Case ORDER BY LastModifiedDate DESC LIMIT 5";

/// What switchyard relies on in Salesforce's answers (REST API v62.0): the canary compares live
/// answers with it. Dates carry milliseconds and a `+0000` offset.
pub(crate) const CONTRACT: Contract = Contract {
    connector: "salesforce",
    api_version: API_VERSION,
    shapes: &[
        Shape {
            object: "limits",
            call: "GET /services/data/v62.0/limits",
            fields: &[
                Field::new("DailyApiRequests", Kind::Object).read(),
                Field::new("DailyApiRequests/Max", Kind::Number).read(),
                Field::new("DailyApiRequests/Remaining", Kind::Number).read(),
            ],
        },
        Shape {
            object: "case",
            call: "GET /services/data/v62.0/query (recent Cases)",
            fields: &[
                Field::new("attributes", Kind::Object),
                Field::new("attributes/type", Kind::String),
                Field::new("Id", Kind::String).read(),
                Field::new("CaseNumber", Kind::String),
                Field::new("Subject", Kind::String).nullable(),
                Field::new("Status", Kind::String).values(&[
                    "New",
                    "Working",
                    "Escalated",
                    "Closed",
                ]),
                Field::new("Priority", Kind::String)
                    .nullable()
                    .values(&["High", "Medium", "Low"]),
                Field::new("IsClosed", Kind::Bool),
                Field::new("LastModifiedDate", Kind::Date),
            ],
        },
    ],
};

pub(crate) const API_VERSION: &str = "v62.0";
/// The Case field (Text, External ID, Unique) that holds switchyard's idempotency key.
pub(crate) const DEFAULT_EXTERNAL_ID_FIELD: &str = "Switchyard_Key__c";

/// The Salesforce connector: Cases and their comments, through the org's REST API.
pub struct Salesforce {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
}

/// Case fields an action may set from its parameters (`case.Subject`, `case.Priority`, …).
fn case_fields(a: &PlannedAction) -> Map<String, Value> {
    a.params
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("case.").map(|f| (f.to_owned(), json!(v))))
        .collect()
}

/// Salesforce ids: 15 or 18 alphanumeric characters.
fn record_id<'a>(a: &'a PlannedAction, name: &str) -> Result<&'a str, ConnectorError> {
    let id = param(a, name)?;
    if matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(ConnectorError::permanent(format!(
            "{name} {id:?} is not a Salesforce id"
        )))
    }
}

impl Salesforce {
    /// A connector over a bearer or OAuth credential's base URL and access token; a credential
    /// of another type, or one with no access token yet, is refused.
    pub fn new(http: reqwest::Client, credential: Credential) -> Result<Self, ResolveError> {
        let (base_url, token) = crate::connectors::bearer("salesforce", credential)?;
        Ok(Self {
            http,
            base_url,
            token,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(
                method,
                format!("{}/services/data/{API_VERSION}{path}", self.base_url),
            )
            .bearer_auth(self.token.expose_secret())
    }

    async fn upsert_case(&self, a: &PlannedAction, key: &str) -> Result<Outcome, ConnectorError> {
        let field = a
            .params
            .get("external_id_field")
            .map(String::as_str)
            .unwrap_or(DEFAULT_EXTERNAL_ID_FIELD);
        if !field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ConnectorError::permanent(format!(
                "{field:?} is not a field name"
            )));
        }
        // The key goes in the URL path: keep it to characters that need no escaping.
        let value: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let fields = case_fields(a);
        if !fields.contains_key("Subject") {
            return Err(ConnectorError::Unsupported(
                "upsert_case needs case.Subject".into(),
            ));
        }
        let body = send(
            self.request(Method::PATCH, &format!("/sobjects/Case/{field}/{value}"))
                .json(&Value::Object(fields)),
        )
        .await?;
        let id = body.get("id").and_then(Value::as_str).map(str::to_owned);
        let created = body
            .get("created")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Outcome {
            object_id: id.clone(),
            detail: format!(
                "case {} {}",
                id.as_deref().unwrap_or("?"),
                if created {
                    "created"
                } else {
                    "already existed; updated"
                }
            ),
        })
    }

    async fn update_case(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let id = record_id(a, "case_id")?;
        let fields = case_fields(a);
        if fields.is_empty() {
            return Err(ConnectorError::Unsupported(
                "update_case needs case.* fields".into(),
            ));
        }
        send(
            self.request(Method::PATCH, &format!("/sobjects/Case/{id}"))
                .json(&Value::Object(fields)),
        )
        .await?;
        Ok(Outcome {
            object_id: Some(id.to_owned()),
            detail: format!("case {id} updated"),
        })
    }

    async fn add_case_comment(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let id = record_id(a, "case_id")?;
        let published = a.params.get("public").is_some_and(|p| p == "true");
        let body = send(
            self.request(Method::POST, "/sobjects/CaseComment")
                .json(&json!({
                    "ParentId": id, "CommentBody": param(a, "comment")?, "IsPublished": published
                })),
        )
        .await?;
        Ok(Outcome {
            object_id: body.get("id").and_then(Value::as_str).map(str::to_owned),
            detail: format!("comment added to case {id}"),
        })
    }
}

#[async_trait]
impl Connector for Salesforce {
    fn name(&self) -> &'static str {
        "salesforce"
    }

    async fn perform(&self, action: &PlannedAction, key: &str) -> Result<Outcome, ConnectorError> {
        match action.action.as_str() {
            "upsert_case" => self.upsert_case(action, key).await,
            "update_case" => self.update_case(action).await,
            "add_case_comment" => self.add_case_comment(action).await,
            other => Err(ConnectorError::Unsupported(format!(
                "salesforce has no action {other:?}"
            ))),
        }
    }

    /// `limits` proves the token and reports the daily API headroom.
    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        let limits = send(self.request(Method::GET, "/limits")).await?;
        let daily = limits
            .get("DailyApiRequests")
            .ok_or_else(|| ConnectorError::permanent("limits answered without DailyApiRequests"))?;
        Ok(Outcome {
            object_id: None,
            detail: format!(
                "authenticated; daily API requests remaining {} of {}",
                daily.get("Remaining").unwrap_or(&Value::Null),
                daily.get("Max").unwrap_or(&Value::Null)
            ),
        })
    }

    fn contract(&self) -> Option<&'static Contract> {
        Some(&CONTRACT)
    }

    async fn samples(&self) -> Result<Vec<(&'static str, Vec<Value>)>, ConnectorError> {
        let limits = send(self.request(Method::GET, "/limits")).await?;
        let recent = send(self.request(
            Method::GET,
            &format!(
                "/query?{}",
                serde_urlencoded::to_string([("q", RECENT_CASES)]).unwrap_or_default()
            ),
        ))
        .await?;
        let cases = recent["records"].as_array().cloned().unwrap_or_default();
        Ok(vec![("limits", vec![limits]), ("case", cases)])
    }

    /// Case fields a create must set: createable, not nillable and not defaulted on create
    /// (Salesforce's describe), less what `upsert_case` always sets.
    async fn required_fields(
        &self,
        actions: &[&ActionTemplate],
    ) -> Result<Vec<RequiredField>, ConnectorError> {
        let Some(upsert) = actions.iter().find(|a| a.action == "upsert_case") else {
            return Ok(Vec::new());
        };
        let external = upsert
            .params
            .get("external_id_field")
            .map_or(DEFAULT_EXTERNAL_ID_FIELD, String::as_str);
        let d = send(self.request(Method::GET, "/sobjects/Case/describe")).await?;
        Ok(d["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| {
                f["createable"] == true && f["nillable"] == false && f["defaultedOnCreate"] == false
            })
            .filter_map(|f| f["name"].as_str().map(|n| (n, f)))
            .filter(|(n, _)| *n != "Subject" && *n != external)
            .map(|(n, f)| RequiredField {
                object: "case",
                action: "upsert_case",
                field: n.to_owned(),
                name: f["label"].as_str().unwrap_or(n).to_owned(),
                param: format!("case.{n}"),
                enforced_on_create: true,
            })
            .collect())
    }

    /// Object permissions from `describe` (`createable`, `updateable`) of what the actions touch.
    async fn grants(
        &self,
        actions: &std::collections::BTreeSet<String>,
    ) -> Result<crate::connectors::grants::Grants, ConnectorError> {
        let mut objects: Vec<&str> = actions
            .iter()
            .flat_map(|a| required(a))
            .filter_map(|p| p.split('.').next())
            .collect();
        objects.sort_unstable();
        objects.dedup();
        let mut granted = Vec::new();
        for object in objects {
            let d =
                send(self.request(Method::GET, &format!("/sobjects/{object}/describe"))).await?;
            for (flag, verb) in [("createable", "create"), ("updateable", "update")] {
                if d.get(flag).and_then(Value::as_bool) == Some(true) {
                    granted.push(format!("{object}.{verb}"));
                }
            }
        }
        Ok(crate::connectors::grants::Grants::compare(
            "salesforce",
            actions,
            granted,
            required,
        ))
    }
}

/// The object permissions each action needs.
fn required(action: &str) -> &'static [&'static str] {
    match action {
        "upsert_case" => &["Case.create", "Case.update"],
        "update_case" => &["Case.update"],
        "add_case_comment" => &["CaseComment.create"],
        _ => &[],
    }
}

// ---------------------------------------------------------------- triage
// Which answers retry, which 200s are errors, which refusals mean re-authorization.

/// Send one request to salesforce and read its answer with [`triage`] (one external-call record).
async fn send(req: reqwest::RequestBuilder) -> Result<serde_json::Value, ConnectorError> {
    crate::connectors::send("salesforce", triage, req).await
}

/// Salesforce REST: errors are `[{"message": …, "errorCode": "INVALID_SESSION_ID"}]`; the daily
/// API limit is a **403** `REQUEST_LIMIT_EXCEEDED`; sObject collections answer 200 with
/// per-record `{"success": false, "errors": [{"statusCode": …}]}`.
pub(crate) fn triage(r: &Response) -> Draft {
    let v = r.json();
    if (200..300).contains(&r.status) {
        return match v {
            Some(Value::Array(items)) => {
                let failed: Vec<&Value> = items
                    .iter()
                    .filter(|i| i.get("success") == Some(&Value::Bool(false)))
                    .collect();
                match failed.first() {
                    None => draft(TriageKind::Ok, format!("HTTP {}", r.status)),
                    Some(first) => {
                        let code = str_at(first, "/errors/0/statusCode")
                            .or_else(|| str_at(first, "/errors/0/errorCode"))
                            .unwrap_or("UNKNOWN");
                        let message = str_at(first, "/errors/0/message").unwrap_or_default();
                        let mut d = salesforce_code(code, r.status);
                        d.reason = format!(
                            "{} of {} records failed; first: {code}: {message}",
                            failed.len(),
                            items.len()
                        );
                        d
                    }
                }
            }
            _ => success(r),
        };
    }
    let first = v.as_ref().and_then(|v| match v {
        Value::Array(a) => a.first().cloned(),
        Value::Object(_) => Some(v.clone()),
        _ => None,
    });
    let code = first
        .as_ref()
        .and_then(|f| str_at(f, "/errorCode").or_else(|| str_at(f, "/error")))
        .unwrap_or_default();
    let message = first
        .as_ref()
        .and_then(|f| str_at(f, "/message").or_else(|| str_at(f, "/error_description")))
        .unwrap_or_default();
    if code.is_empty() {
        return by_status(r, "");
    }
    let mut d = salesforce_code(code, r.status);
    d.reason = format!("HTTP {}: {code}: {message}", r.status);
    // REQUIRED_FIELD_MISSING, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST…: the fields, by API name.
    let fields: Vec<&str> = first
        .as_ref()
        .and_then(|f| f.get("fields"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !fields.is_empty() {
        d.reason
            .push_str(&format!("; invalid fields [{}]", fields.join(", ")));
        d = d.refused(Refusal::Invalid {
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        });
    }
    if r.status == 300 {
        d.kind = TriageKind::Permanent;
        d.reason
            .push_str(" (the external id matches several records)");
    }
    d
}

fn salesforce_code(code: &str, status: u16) -> Draft {
    let kind = match code {
        "REQUEST_LIMIT_EXCEEDED" | "TOO_MANY_APEX_REQUESTS" => TriageKind::RateLimited,
        "INVALID_SESSION_ID" | "INVALID_AUTH_HEADER" => TriageKind::Auth,
        "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "QUERY_TIMEOUT" => TriageKind::Transient,
        _ if status == 429 => TriageKind::RateLimited,
        _ if status == 401 => TriageKind::Auth,
        _ if status >= 500 => TriageKind::Transient,
        // INSUFFICIENT_ACCESS…, API_DISABLED_FOR_ORG, NOT_FOUND, REQUIRED_FIELD_MISSING, …
        _ => TriageKind::Permanent,
    };
    draft(kind, String::new())
}
