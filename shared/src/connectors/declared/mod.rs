//! Connectors described in a file (`shared/connectors/<name>.toml`): a team's own system —
//! base URL, auth (API key, basic, bearer, OAuth, session login), budgets, actions as templated
//! requests, triage rules, an idempotency strategy, a probe and a drift contract — served by the
//! same [`Connector`] trait as the built-in ones, so the shared budgets, breaker, refresh lease,
//! claims, decision records, canary and `doctor` treat it no differently.
//!
//! Descriptions are compiled in (`build.rs`) and validated as a whole when a function starts
//! ([`check_compiled`]); `switchyard connector check FILE` validates one before it is.

pub mod contract;
pub mod describe;
mod login;
pub mod preview;
pub mod template;
pub mod triage;

use std::sync::OnceLock;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

pub use describe::Description;
pub(crate) use describe::DescriptionError;
pub use login::login;

/// A credential's session limits: what its secret states and, for a session login, what its
/// connector's description states, the lower of each.
pub(crate) fn session_policy(
    credential: &crate::secrets::Credential,
) -> crate::secrets::SessionPolicy {
    let stored = credential.stored_session();
    let crate::secrets::Credential::SessionLogin { connector, .. } = credential else {
        return stored;
    };
    let described = get(connector)
        .map(|d| d.description.session_policy())
        .unwrap_or_default();
    let lower = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    crate::secrets::SessionPolicy {
        max_age_seconds: lower(described.max_age_seconds, stored.max_age_seconds),
        max_calls: lower(described.max_calls, stored.max_calls),
    }
}

use super::{id_text, ConnectorError, Outcome, ResolveError};
use crate::routing::PlannedAction;
use crate::secrets::Credential;
use describe::{Action, Auth, Request};

mod compiled {
    include!(concat!(env!("OUT_DIR"), "/described.rs"));
}

/// One loaded description, with what is derived from it once.
#[derive(Debug)]
pub struct Described {
    /// The file name the description was loaded from.
    pub file: &'static str,
    /// The description's name, kept for the process's life (the trait names connectors so).
    pub name: &'static str,
    /// The parsed description.
    pub description: Description,
    /// What the connector relies on in its vendor's answers; `None` when it declares none.
    pub contract: Option<&'static crate::drift::Contract>,
    /// Its `[limits]` in `RATE_LIMITS` form.
    pub limits: crate::pacing::Limits,
}

impl Described {
    /// Its name, kept for the life of the process.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Load descriptions (file name, text); errors name the file and line. Names must be unique and
/// none of `reserved` (the built-in connectors' names).
pub fn load(
    files: &[(&'static str, &str)],
    reserved: &[&str],
) -> Result<Vec<Described>, DescriptionError> {
    let mut out: Vec<Described> = Vec::new();
    for (file, text) in files {
        let description = Description::parse(file, text)?;
        if reserved.contains(&description.name()) {
            return Err(DescriptionError {
                file: (*file).to_owned(),
                line: description.name_line(text),
                message: format!("name {:?} is a built-in connector's", description.name()),
            });
        }
        if out
            .iter()
            .any(|d| d.description.name() == description.name())
        {
            return Err(DescriptionError {
                file: (*file).to_owned(),
                line: 1,
                message: format!("another description is also named {:?}", description.name()),
            });
        }
        let name = description.name().to_owned();
        let limits = match &description.limits.rate {
            Some(rate) => crate::pacing::Limits::parse(&format!("{name}={rate}")),
            None => Ok(crate::pacing::Limits::default()),
        }
        .map(|l| match description.limits.concurrency {
            Some(cap) => l.with_cap(&name, cap),
            None => l,
        })
        .map_err(|e| DescriptionError {
            file: (*file).to_owned(),
            line: 1,
            message: e.to_string(),
        })?;
        out.push(Described {
            file,
            name: Box::leak(name.into_boxed_str()),
            contract: contract::build(&description),
            description,
            limits,
        });
    }
    Ok(out)
}

fn registry() -> &'static Result<Vec<Described>, DescriptionError> {
    static REGISTRY: OnceLock<Result<Vec<Described>, DescriptionError>> = OnceLock::new();
    // Built-in names are the registry's, above this layer: its test holds the compiled-in
    // descriptions clear of them, and `switchyard connector check` refuses them.
    REGISTRY.get_or_init(|| load(compiled::FILES, &[]))
}

/// Fails when a compiled-in description is invalid: functions refuse to start with it.
pub(crate) fn check_compiled() -> Result<(), DescriptionError> {
    registry().as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The compiled-in descriptions (none when one is invalid: see [`check_compiled`]).
pub fn all() -> &'static [Described] {
    registry().as_deref().unwrap_or_default()
}

/// The compiled-in description named `name`; `None` when there is none (or one is invalid).
pub fn get(name: &str) -> Option<&'static Described> {
    all().iter().find(|d| d.description.name() == name)
}

/// Their names, as routes and the `Connectors` parameter use them.
pub fn names() -> Vec<&'static str> {
    all().iter().map(Described::name).collect()
}

/// One line about a loaded description, for `switchyard connector check`.
pub fn summary(d: &Described) -> String {
    let desc = &d.description;
    let auth = match desc.auth.get_ref() {
        Auth::ApiKey { .. } => "api_key",
        Auth::Basic => "basic",
        Auth::Bearer => "bearer",
        Auth::Oauth2Refresh => "oauth2_refresh",
        Auth::Oauth2ClientCredentials => "oauth2_client_credentials",
        Auth::SessionLogin { .. } => "session_login",
    };
    let mut parts = vec![
        format!("{auth} auth"),
        format!(
            "actions {}",
            desc.actions.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        format!("{} triage rules", desc.triage.len()),
    ];
    if let Some(rate) = &desc.limits.rate {
        parts.push(format!("budget {rate}"));
    }
    if let Some(cap) = desc.limits.concurrency {
        parts.push(format!("{cap} calls at once"));
    }
    if !desc.contract.is_empty() {
        parts.push(format!(
            "contract {}",
            desc.contract.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    format!(
        "{}: ok: connector {} (API {}): {}",
        d.file,
        d.name,
        desc.api_version,
        parts.join("; ")
    )
}

/// How a request carries the credential.
enum Sign {
    Header(String, SecretString),
    Query(String, SecretString),
    Basic(String, SecretString),
    /// The login request itself.
    None,
}

/// A tenant's own host (the secret's `base_url`) first, else the one the description names.
fn base_url(described: &Described, credential: &Credential) -> Option<String> {
    match credential.base_url() {
        "" => described
            .description
            .base_url
            .clone()
            .filter(|b| !b.is_empty()),
        own => Some(own.to_owned()),
    }
}

/// A described vendor over one credential.
pub(crate) struct Declared {
    described: &'static Described,
    http: reqwest::Client,
    base_url: String,
    sign: Sign,
}

fn wrong(d: &Described, c: &Credential) -> ResolveError {
    ResolveError::WrongCredential {
        connector: d.description.name().to_owned(),
        kind: c.kind(),
    }
}

impl Declared {
    pub fn new(
        described: &'static Described,
        http: reqwest::Client,
        credential: Credential,
    ) -> Result<Self, ResolveError> {
        let base_url = base_url(described, &credential)
            .ok_or_else(|| ResolveError::NoBaseUrl(described.name.to_owned()))?;
        let bearer = |t: SecretString| {
            Sign::Header(
                "Authorization".into(),
                format!("Bearer {}", t.expose_secret()).into(),
            )
        };
        let sign = match (described.description.auth.get_ref(), credential) {
            (Auth::ApiKey { header, query }, Credential::ApiKey { key, .. }) => {
                match (header, query) {
                    (Some(h), _) => Sign::Header(h.clone(), key),
                    (None, Some(q)) => Sign::Query(q.clone(), key),
                    (None, None) => unreachable!("validated: one of header or query"),
                }
            }
            (
                Auth::Basic,
                Credential::Basic {
                    username, password, ..
                },
            ) => Sign::Basic(username, password),
            (Auth::Bearer, Credential::BearerToken { token, .. }) => bearer(token),
            (Auth::Oauth2Refresh, Credential::Oauth2Refresh { access_token, .. }) => {
                bearer(access_token)
            }
            (
                Auth::Oauth2ClientCredentials,
                Credential::Oauth2ClientCredentials {
                    access_token: Some(t),
                    ..
                },
            ) => bearer(t),
            (
                Auth::SessionLogin { send, .. },
                Credential::SessionLogin {
                    access_token: Some(t),
                    ..
                },
            ) => Sign::Header(
                send.header.clone(),
                format!("{}{}", send.prefix, t.expose_secret()).into(),
            ),
            (_, other) => return Err(wrong(described, &other)),
        };
        Ok(Declared {
            described,
            http,
            base_url,
            sign,
        })
    }

    fn d(&self) -> &'static Description {
        &self.described.description
    }

    /// The request `r` with placeholders from `value`, signed. `Unsupported` names a missing
    /// parameter; nothing is sent.
    pub fn request(
        &self,
        r: &Request,
        value: &dyn Fn(&str) -> Option<String>,
        extra: Option<(&str, &str)>,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        let missing = |n: String| {
            ConnectorError::Unsupported(format!(
                "{} needs {{{n}}}, which the action does not have",
                self.d().name()
            ))
        };
        let mut url = reqwest::Url::parse(&self.base_url).map_err(|e| {
            ConnectorError::permanent(format!("the connection's base_url is not a URL: {e}"))
        })?;
        {
            // Each segment is filled, then percent-encoded: a value cannot add a path step.
            let segments: Vec<String> = r
                .path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| template::render(s, value))
                .collect::<Result<_, _>>()
                .map_err(missing)?;
            // `..` and `.` would step out of the path (the URL pops a segment for them), and an
            // empty value would drop one: refused as the built-in connectors refuse a bad id.
            if let Some(bad) = segments
                .iter()
                .find(|s| matches!(s.trim(), "" | "." | ".."))
            {
                return Err(ConnectorError::Unsupported(format!(
                    "{}: a path parameter is {bad:?}, which is not an id",
                    self.d().name()
                )));
            }
            let mut path = url.path_segments_mut().map_err(|_| {
                ConnectorError::permanent("the connection's base_url cannot take a path")
            })?;
            path.pop_if_empty().extend(segments);
        }
        for (k, v) in &r.query {
            let v = template::render(v, value).map_err(missing)?;
            url.query_pairs_mut().append_pair(k, &v);
        }
        if let Sign::Query(name, key) = &self.sign {
            url.query_pairs_mut().append_pair(name, key.expose_secret());
        }
        let method = reqwest::Method::from_bytes(r.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ConnectorError::Unsupported(format!("method {}", r.method)))?;
        let mut req = self.http.request(method, url);
        for (k, v) in &r.headers {
            req = req.header(k, template::render(v, value).map_err(missing)?);
        }
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req = match &self.sign {
            Sign::Header(name, v) => {
                let mut hv =
                    reqwest::header::HeaderValue::from_str(v.expose_secret()).map_err(|_| {
                        ConnectorError::permanent("the credential is not a valid header value")
                    })?;
                hv.set_sensitive(true);
                req.header(name.as_str(), hv)
            }
            Sign::Basic(user, password) => req.basic_auth(user, Some(password.expose_secret())),
            Sign::Query(..) | Sign::None => req,
        };
        if let Some(j) = &r.json {
            req = req.json(&template::render_json(j, value).map_err(missing)?);
        }
        if let Some(f) = &r.form {
            let pairs: Vec<(String, String)> = f
                .iter()
                .map(|(k, v)| Ok((k.clone(), template::render(v, value)?)))
                .collect::<Result<_, String>>()
                .map_err(missing)?;
            req = req.form(&pairs);
        }
        Ok(req)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ConnectorError> {
        let d = self.d();
        super::send_with(d.name(), req, |a| {
            let r = crate::connectors::triage::Response::from_parts(
                a.status.as_u16(),
                &a.headers,
                a.body,
            );
            let verdict = triage::triage(d, &r, chrono::Utc::now());
            super::accept(r, verdict)
        })
        .await
    }

    fn action(&self, name: &str) -> Result<&'static Action, ConnectorError> {
        self.d()
            .actions
            .get(name)
            .map(|a| a.get_ref())
            .ok_or_else(|| {
                ConnectorError::Unsupported(format!(
                    "{} has no action {name:?} (it has: {})",
                    self.d().name(),
                    self.d()
                        .actions
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// A date as the vendor wrote it, in RFC 3339: the lenient parser first, then the
    /// description's formats (dated with its offset when they carry none).
    pub(crate) fn read_date(&self, v: &Value) -> Option<String> {
        if let Ok(at) = crate::dates::parse_json(v) {
            return Some(crate::dates::format(&at));
        }
        read_described_date(&self.d().dates, v.as_str()?)
    }

    fn outcome(
        &self,
        name: &str,
        a: &Action,
        answer: &Value,
        params: &dyn Fn(&str) -> Option<String>,
    ) -> Outcome {
        let id = a.id.as_deref().and_then(|p| id_text(answer.pointer(p)));
        let leaf = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
        let mut kept: Vec<String> = a
            .keep
            .iter()
            .filter_map(|p| Some(format!("{}={}", leaf(p), triage_text(answer.pointer(p)?)?)))
            .collect();
        kept.extend(a.keep_dates.iter().filter_map(|p| {
            let v = answer.pointer(p)?;
            Some(match self.read_date(v) {
                Some(d) => format!("{}={d}", leaf(p)),
                None => format!(
                    "{}={} (not a date switchyard can read)",
                    leaf(p),
                    triage_text(v)?
                ),
            })
        }));
        let link = a.link.as_deref().and_then(|l| {
            template::render(l, &|n: &str| match n {
                "id" => id.clone(),
                "base_url" => Some(self.base_url.clone()),
                other => params(other),
            })
            .ok()
        });
        let mut detail = format!("{}.{name}", self.d().name());
        if let Some(id) = &id {
            detail.push_str(&format!(" {id}"));
        }
        if !kept.is_empty() {
            detail.push_str(&format!(" ({})", kept.join(", ")));
        }
        if let Some(link) = link {
            detail.push_str(&format!(" {link}"));
        }
        Outcome {
            object_id: id,
            detail,
        }
    }
}

fn triage_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A date in one of `dates.formats`, to RFC 3339 (a date alone is midnight).
pub(crate) fn read_described_date(dates: &describe::Dates, s: &str) -> Option<String> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    for f in &dates.formats {
        if let Ok(at) = chrono::DateTime::parse_from_str(s, f) {
            return Some(crate::dates::format(&at.with_timezone(&chrono::Utc)));
        }
        let naive = NaiveDateTime::parse_from_str(s, f)
            .ok()
            .or_else(|| NaiveDate::parse_from_str(s, f).ok()?.and_hms_opt(0, 0, 0));
        if let (Some(naive), Some(offset)) = (naive, dates.offset.as_deref()) {
            let offset: chrono::FixedOffset = offset.parse().ok()?;
            let at = offset.from_local_datetime(&naive).single()?;
            return Some(crate::dates::format(&at.with_timezone(&chrono::Utc)));
        }
    }
    None
}

#[async_trait]
impl super::Connector for Declared {
    fn name(&self) -> &'static str {
        self.described.name()
    }

    async fn perform(&self, action: &PlannedAction, key: &str) -> Result<Outcome, ConnectorError> {
        let a = self.action(&action.action)?;
        let value = |n: &str| -> Option<String> {
            match n {
                "key" => Some(key.to_owned()),
                _ => action.params.get(n.strip_prefix("param.")?).cloned(),
            }
        };
        let idem = a.idempotency.as_ref();
        // Its last try may have made the object: find it by the key it carries before acting.
        if let Some(lookup) = idem.and_then(|i| i.lookup.as_ref()) {
            if super::is_maybe_done() {
                let answer = self
                    .send(self.request(&lookup.request(), &value, None)?)
                    .await?;
                if let Some(id) = id_text(answer.pointer(&lookup.found)) {
                    return Ok(Outcome {
                        detail: format!(
                            "{}.{} already done: {id} (found by its key)",
                            self.d().name(),
                            action.action
                        ),
                        object_id: Some(id),
                    });
                }
            }
        }
        let header = idem.and_then(|i| i.header.as_deref()).map(|h| (h, key));
        let answer = self
            .send(self.request(&a.request(), &value, header)?)
            .await?;
        Ok(self.outcome(&action.action, a, &answer, &value))
    }

    async fn probe(&self) -> Result<Outcome, ConnectorError> {
        let p = self.d().probe.get_ref();
        let answer = self
            .send(self.request(&p.request(), &|_| None, None)?)
            .await?;
        let who = p
            .identity
            .as_deref()
            .and_then(|i| id_text(answer.pointer(i)));
        let title = if self.d().title.is_empty() {
            self.d().name()
        } else {
            &self.d().title
        };
        Ok(Outcome {
            detail: match &who {
                Some(w) => format!("{title}: authenticated as {w}"),
                None => format!("{title}: authenticated"),
            },
            object_id: who,
        })
    }

    fn contract(&self) -> Option<&'static crate::drift::Contract> {
        self.described.contract
    }

    async fn samples(&self) -> Result<Vec<(&'static str, Vec<Value>)>, ConnectorError> {
        let Some(contract) = self.described.contract else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for shape in contract.shapes {
            let c = self.d().contract[shape.object].get_ref();
            let answer = self.send(self.request(&c.sample, &|_| None, None)?).await?;
            let records = match c.items.as_deref() {
                Some(p) => answer
                    .pointer(p)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                None => vec![answer],
            };
            out.push((shape.object, records.into_iter().take(10).collect()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
