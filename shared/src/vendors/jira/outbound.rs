//! Jira Cloud platform REST API v3. Auth: API token (`{email}:{api_token}` basic). Retry logic
//! (see `triage` below): 429 with `Retry-After` / ISO `X-RateLimit-Reset` → rate limited; 401 →
//! auth; 409, 503 (`Retry-After`) and other 5xx → transient; 403, 404, 400 → permanent with
//! Jira's `errorMessages` and per-field `errors`.
//!
//! Actions: `create_issue` (project, summary, issue_type, description, labels), `add_comment`,
//! `transition` (by the transition's or the target status's name), `set_labels` (add),
//! `set_fields` (`fields.<id>`).
//! Exactly once on the vendor side: `create_issue` labels the issue `sy-<hash of the idempotency
//! key>` and first searches for that label, so a crash between Jira's 201 and our record does
//! not create a second issue — as far as Jira's search index has caught up (seconds).

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::Digest;

use crate::connectors::{
    param, wrong_credential, Connector, ConnectorError, Outcome, ResolveError,
};
use crate::drift::{Contract, Field, Kind, RequiredField, Shape};
use crate::routing::{ActionTemplate, PlannedAction};

/// What switchyard relies on in Jira's answers (platform REST API v3): the canary compares live
/// answers with it. `statusCategory.key` is the one value it branches on (new, indeterminate,
/// done); Jira's dates carry milliseconds and a `+0000` offset.
pub(crate) const CONTRACT: Contract = Contract {
    connector: "jira",
    api_version: "3",
    shapes: &[
        Shape {
            object: "myself",
            call: "GET /rest/api/3/myself",
            fields: &[
                Field::new("accountId", Kind::String).read(),
                Field::new("accountType", Kind::String).values(&["atlassian", "app", "customer"]),
                Field::new("active", Kind::Bool),
            ],
        },
        Shape {
            object: "issue",
            call: "POST /rest/api/3/search/jql (updated DESC)",
            fields: &[
                Field::new("id", Kind::Id).read(),
                Field::new("key", Kind::String).read(),
                Field::new("fields", Kind::Object),
                Field::new("fields/summary", Kind::String),
                Field::new("fields/labels", Kind::Array),
                Field::new("fields/labels[]", Kind::String),
                Field::new("fields/issuetype", Kind::Object),
                Field::new("fields/issuetype/name", Kind::String),
                Field::new("fields/status", Kind::Object),
                Field::new("fields/status/name", Kind::String).read(),
                Field::new("fields/status/statusCategory", Kind::Object),
                Field::new("fields/status/statusCategory/key", Kind::String).values(&[
                    "new",
                    "indeterminate",
                    "done",
                    "undefined",
                ]),
                Field::new("fields/created", Kind::Date),
                Field::new("fields/updated", Kind::Date),
            ],
        },
    ],
};
use crate::connectors::triage::{by_status, str_at, success, Draft, Refusal, Response};
use crate::connectors::wait::header;
use crate::secrets::Credential;

/// The Jira Cloud connector: issues, comments, transitions and fields, with an API token.
pub struct Jira {
    http: reqwest::Client,
    base_url: String,
    email: String,
    token: SecretString,
}

/// Atlassian Document Format for plain text: one paragraph per line.
pub(crate) fn adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .map(|line| {
            if line.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": line}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// The label that marks an issue as created by one idempotency key.
/// `fields.<id>` parameters as Jira field values: a select field's option by `{"value": …}`
/// when the route wrote the parameter as JSON, the rest as text (whatever an event put in it).
fn field_params(a: &PlannedAction) -> serde_json::Map<String, Value> {
    a.params
        .iter()
        .filter_map(|(k, v)| Some((k, k.strip_prefix("fields.")?, v)))
        .map(|(param, k, v)| {
            let value = match (k, a.json_param(param)) {
                ("priority", _) => json!({"name": v}),
                ("description" | "environment", _) => adf(v),
                (_, Some(Ok(structure))) => structure,
                _ => json!(v),
            };
            (k.to_owned(), value)
        })
        .collect()
}

pub(crate) fn idempotency_label(key: &str) -> String {
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("sy-{}", &hex::encode(digest)[..16])
}

impl Jira {
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
            other => Err(wrong_credential("jira", &other)),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/rest/api/3{path}", self.base_url))
            .basic_auth(&self.email, Some(self.token.expose_secret()))
            .header("accept", "application/json")
    }

    async fn create_issue(&self, a: &PlannedAction, key: &str) -> Result<Outcome, ConnectorError> {
        let label = idempotency_label(key);
        // Created before a crash? Then it carries our label.
        let found = send(self.request(Method::POST, "/search/jql").json(&json!({
            "jql": format!("labels = \"{label}\""), "fields": ["key"], "maxResults": 1
        })))
        .await?;
        if let Some(existing) = found.pointer("/issues/0/key").and_then(Value::as_str) {
            return Ok(Outcome {
                object_id: Some(existing.to_owned()),
                detail: format!("issue {existing} already created for this action"),
            });
        }
        let mut labels = vec![json!(label)];
        if let Some(extra) = a.params.get("labels") {
            labels.extend(
                extra
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| json!(l)),
            );
        }
        let mut fields = json!({
            "project": {"key": param(a, "project")?},
            "summary": param(a, "summary")?,
            "issuetype": {"name": a.params.get("issue_type").map(String::as_str).unwrap_or("Task")},
            "labels": labels,
        });
        if let Some(description) = a.params.get("description") {
            fields["description"] = adf(description);
        }
        // Any other field the project's create screen needs (`fields.customfield_10042`).
        for (k, v) in field_params(a) {
            fields[k] = v;
        }
        let body = send(
            self.request(Method::POST, "/issue")
                .json(&json!({ "fields": fields })),
        )
        .await?;
        let issue = crate::connectors::id_text(body.get("key")).ok_or_else(|| {
            ConnectorError::Transient("Jira created an issue but sent no key".into())
        })?;
        Ok(Outcome {
            object_id: Some(issue.clone()),
            detail: format!("issue {issue} created"),
        })
    }

    async fn add_comment(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let issue = issue_key(a)?;
        let body = send(
            self.request(Method::POST, &format!("/issue/{issue}/comment"))
                .json(&json!({ "body": adf(param(a, "comment")?) })),
        )
        .await?;
        Ok(Outcome {
            object_id: crate::connectors::id_text(body.get("id")),
            detail: format!("comment added to {issue}"),
        })
    }

    async fn transition(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let issue = issue_key(a)?;
        let wanted = param(a, "to")?;
        let available =
            send(self.request(Method::GET, &format!("/issue/{issue}/transitions"))).await?;
        let transitions = available
            .get("transitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let matches = |t: &Value| {
            [t.get("name"), t.pointer("/to/name")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|n| n.eq_ignore_ascii_case(wanted))
        };
        let Some(id) = transitions
            .iter()
            .find(|t| matches(t))
            .and_then(|t| crate::connectors::id_text(t.get("id")))
        else {
            let names: Vec<&str> = transitions
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect();
            return Err(ConnectorError::permanent(format!(
                "{issue} has no transition to {wanted:?} from its current status (available: {})",
                names.join(", ")
            )));
        };
        send(
            self.request(Method::POST, &format!("/issue/{issue}/transitions"))
                .json(&json!({"transition": {"id": id}})),
        )
        .await?;
        Ok(Outcome {
            object_id: Some(issue.to_owned()),
            detail: format!("{issue} moved to {wanted}"),
        })
    }

    /// `fields.<id>` parameters: plain values for text fields (`fields.summary`,
    /// `fields.customfield_10042`), `{"name": …}` for `priority`.
    async fn set_fields(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let issue = issue_key(a)?;
        let fields = field_params(a);
        if fields.is_empty() {
            return Err(ConnectorError::Unsupported(
                "set_fields needs fields.<id> parameters".into(),
            ));
        }
        send(
            self.request(Method::PUT, &format!("/issue/{issue}"))
                .json(&json!({"fields": fields})),
        )
        .await?;
        Ok(Outcome {
            object_id: Some(issue.to_owned()),
            detail: format!("fields set on {issue}"),
        })
    }

    async fn set_labels(&self, a: &PlannedAction) -> Result<Outcome, ConnectorError> {
        let issue = issue_key(a)?;
        let add: Vec<Value> = param(a, "labels")?
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| json!({"add": l}))
            .collect();
        send(
            self.request(Method::PUT, &format!("/issue/{issue}"))
                .json(&json!({"update": {"labels": add}})),
        )
        .await?;
        Ok(Outcome {
            object_id: Some(issue.to_owned()),
            detail: format!("labels added to {issue}"),
        })
    }
}

fn issue_key(a: &PlannedAction) -> Result<&str, ConnectorError> {
    let key = param(a, "issue")?;
    let valid = key.split_once('-').is_some_and(|(p, n)| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    }) || (!key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(key)
    } else {
        Err(ConnectorError::permanent(format!(
            "{key:?} is not a Jira issue key or id"
        )))
    }
}

#[async_trait]
impl Connector for Jira {
    fn name(&self) -> &'static str {
        "jira"
    }

    fn contract(&self) -> Option<&'static Contract> {
        Some(&CONTRACT)
    }

    async fn samples(&self) -> Result<Vec<(&'static str, Vec<Value>)>, ConnectorError> {
        let me = send(self.request(Method::GET, "/myself")).await?;
        // Bounded, as the enhanced search requires: issues changed in the last 30 days.
        let recent = send(self.request(Method::POST, "/search/jql").json(&json!({
            "jql": "updated >= -30d ORDER BY updated DESC",
            "maxResults": 5,
            "fields": ["summary", "labels", "issuetype", "status", "created", "updated"],
        })))
        .await?;
        let issues = recent["issues"].as_array().cloned().unwrap_or_default();
        Ok(vec![("myself", vec![me]), ("issue", issues)])
    }

    /// The create screen of each configured `create_issue` (project and issue type): fields
    /// marked `required` without a default, from Jira's create metadata.
    async fn required_fields(
        &self,
        actions: &[&ActionTemplate],
    ) -> Result<Vec<RequiredField>, ConnectorError> {
        let mut out: Vec<RequiredField> = Vec::new();
        // Fields the create always sets itself.
        const SET_BY_CREATE: &[&str] = &[
            "project",
            "summary",
            "issuetype",
            "labels",
            "description",
            "reporter",
        ];
        for a in actions.iter().filter(|a| a.action == "create_issue") {
            let Some(project) = a.params.get("project").filter(|p| !p.contains('{')) else {
                continue;
            };
            let wanted = a.params.get("issue_type").map_or("Task", String::as_str);
            let types = send(self.request(
                Method::GET,
                &format!("/issue/createmeta/{project}/issuetypes"),
            ))
            .await?;
            // Cloud answers `issueTypes`; some deployments page them as `values`.
            let Some(type_id) = types["issueTypes"]
                .as_array()
                .or_else(|| types["values"].as_array())
                .into_iter()
                .flatten()
                .find(|t| t["name"] == wanted)
                .and_then(|t| crate::connectors::id_text(t.get("id")))
            else {
                continue;
            };
            let meta = send(self.request(
                Method::GET,
                &format!("/issue/createmeta/{project}/issuetypes/{type_id}"),
            ))
            .await?;
            let fields = meta["fields"]
                .as_array()
                .or_else(|| meta["values"].as_array());
            for f in fields.into_iter().flatten() {
                let Some(id) = f["fieldId"].as_str() else {
                    continue;
                };
                let needed = f["required"] == true && f["hasDefaultValue"] != true;
                if needed && !SET_BY_CREATE.contains(&id) && !out.iter().any(|r| r.field == id) {
                    out.push(RequiredField {
                        object: "issue",
                        action: "create_issue",
                        field: id.to_owned(),
                        name: f["name"].as_str().unwrap_or(id).to_owned(),
                        param: format!("fields.{id}"),
                        enforced_on_create: true,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn perform(&self, action: &PlannedAction, key: &str) -> Result<Outcome, ConnectorError> {
        match action.action.as_str() {
            "create_issue" => self.create_issue(action, key).await,
            "add_comment" => self.add_comment(action).await,
            "transition" => self.transition(action).await,
            "set_labels" => self.set_labels(action).await,
            "set_fields" => self.set_fields(action).await,
            other => Err(ConnectorError::Unsupported(format!(
                "jira has no action {other:?}"
            ))),
        }
    }

    async fn download(
        &self,
        file: &crate::event::Attachment,
        limits: crate::connectors::download::Limits,
    ) -> Result<Vec<u8>, ConnectorError> {
        use crate::connectors::download::{download, origin_of, Fetch};
        // `content` answers 303 to the media host, which is fetched without the credential.
        let url = match (&file.url, &file.id) {
            (Some(url), _) => url.clone(),
            (None, Some(id)) => format!("{}/rest/api/3/attachment/content/{id}", self.base_url),
            (None, None) => return Err(ConnectorError::permanent("the attachment has no id")),
        };
        let trusted: Vec<String> = origin_of(&self.base_url).into_iter().collect();
        let fetch = Fetch {
            vendor: "jira",
            rules: triage,
            trusted: &trusted,
            limits,
        };
        download(&self.http, &url, &fetch, |r| {
            r.basic_auth(&self.email, Some(self.token.expose_secret()))
        })
        .await
    }

    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        let me = send(self.request(Method::GET, "/myself")).await?;
        let account = me
            .get("accountId")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::Auth("myself answered without an accountId".into()))?;
        Ok(Outcome {
            object_id: Some(account.to_owned()),
            detail: "authenticated".into(),
        })
    }

    async fn grants(
        &self,
        actions: &std::collections::BTreeSet<String>,
    ) -> Result<crate::connectors::grants::Grants, ConnectorError> {
        let mut keys: Vec<&str> = actions.iter().flat_map(|a| required(a)).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            keys.push("BROWSE_PROJECTS");
        }
        let path = format!("/mypermissions?permissions={}", keys.join(","));
        let answer = send(self.request(Method::GET, &path)).await?;
        let granted = keys
            .iter()
            .filter(|k| {
                answer
                    .pointer(&format!("/permissions/{k}/havePermission"))
                    .and_then(Value::as_bool)
                    == Some(true)
            })
            .map(|k| (*k).to_owned())
            .collect();
        Ok(crate::connectors::grants::Grants::compare(
            "jira", actions, granted, required,
        ))
    }
}

/// The project permissions each action needs (Jira's REST reference).
fn required(action: &str) -> &'static [&'static str] {
    match action {
        "create_issue" => &["BROWSE_PROJECTS", "CREATE_ISSUES"],
        "add_comment" => &["BROWSE_PROJECTS", "ADD_COMMENTS"],
        "transition" => &["BROWSE_PROJECTS", "TRANSITION_ISSUES"],
        "set_labels" | "set_fields" => &["BROWSE_PROJECTS", "EDIT_ISSUES"],
        _ => &[],
    }
}

// ---------------------------------------------------------------- triage
// Which answers retry, which 200s are errors, which refusals mean re-authorization.

/// Send one request to jira and read its answer with [`triage`] (one external-call record).
async fn send(req: reqwest::RequestBuilder) -> Result<serde_json::Value, ConnectorError> {
    crate::connectors::send("jira", triage, req).await
}

/// Jira Cloud: `{"errorMessages": […], "errors": {field: message}}`; 429 with `Retry-After` and
/// an ISO `X-RateLimit-Reset`; 503 with `Retry-After` when a resource limit is hit.
pub(crate) fn triage(r: &Response) -> Draft {
    if (200..300).contains(&r.status) {
        // 204 No Content is Jira's answer to transitions and edits.
        return success(r);
    }
    let mut invalid = Vec::new();
    let detail = r
        .json()
        .map(|v| {
            let mut parts: Vec<String> = v
                .get("errorMessages")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(errors) = v.get("errors").and_then(Value::as_object) {
                parts.extend(
                    errors
                        .iter()
                        .map(|(field, m)| format!("{field}: {}", m.as_str().unwrap_or_default())),
                );
                if !errors.is_empty() {
                    let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
                    parts.push(format!("invalid fields [{}]", fields.join(", ")));
                    invalid = fields.into_iter().map(str::to_owned).collect();
                }
            }
            if let Some(m) = str_at(&v, "/message") {
                parts.push(m.to_owned());
            }
            parts.join("; ")
        })
        .unwrap_or_default();
    let mut d = by_status(r, &detail);
    if !invalid.is_empty() {
        d = d.refused(Refusal::Invalid { fields: invalid });
    }
    if let Some(reason) = header(&r.headers, "ratelimit-reason") {
        d.reason = format!("{} (RateLimit-Reason: {reason})", d.reason);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adf_keeps_lines_as_paragraphs() {
        let doc = adf("Checkout is down\n\nsince 09:40");
        assert_eq!(doc["content"].as_array().unwrap().len(), 3);
        assert_eq!(doc["content"][2]["content"][0]["text"], "since 09:40");
    }

    #[test]
    fn labels_are_stable_and_issue_keys_checked() {
        assert_eq!(idempotency_label("act#e1#0"), idempotency_label("act#e1#0"));
        assert_ne!(idempotency_label("act#e1#0"), idempotency_label("act#e1#1"));
        let action = |issue: &str| PlannedAction {
            json: Default::default(),
            connector: "jira".into(),
            action: "add_comment".into(),
            params: [("issue".to_owned(), issue.to_owned())].into(),
        };
        assert!(issue_key(&action("OPS-142")).is_ok());
        assert!(issue_key(&action("10000")).is_ok());
        assert!(issue_key(&action("OPS-1/../../admin")).is_err());
    }
}
