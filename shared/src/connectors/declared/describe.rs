//! A connector description: one TOML file per vendor, read into these types and validated as a
//! whole, so a mistake is reported at start-up (and by `switchyard connector check`) with its
//! line, never at the first event that needs the broken part.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::template::{self, Scope};

/// One vendor, as its team describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    /// The connector name routes use (`[a-z][a-z0-9_]*`, not a built-in's).
    pub name: Spanned<String>,
    /// A name for people, shown by the probe's result; empty shows `name` instead.
    #[serde(default)]
    pub title: String,
    /// The API version the description was written against (drift findings name it).
    #[serde(default = "unversioned")]
    pub api_version: String,
    /// The API's base URL when every tenant shares one; a connection secret's `base_url`
    /// (a tenant's own host) takes precedence.
    #[serde(default)]
    pub base_url: Option<String>,
    /// How requests are authenticated (its position places errors about it).
    pub auth: Spanned<Auth>,
    /// The vendor's rate and concurrency budgets; none by default.
    #[serde(default)]
    pub limits: Limits,
    /// The cheap authenticated read that proves a credential works.
    pub probe: Spanned<Probe>,
    /// The actions routes can plan, by name.
    #[serde(default)]
    pub actions: BTreeMap<String, Spanned<Action>>,
    /// Tried in order before the defaults (2xx ok, 401 auth, 429 and 5xx retried, other 4xx
    /// permanent).
    #[serde(default)]
    pub triage: Vec<Spanned<Rule>>,
    /// Date formats the vendor writes beyond the ones always read.
    #[serde(default)]
    pub dates: Dates,
    /// What the drift canary checks: per object type, a read-only sample request and the
    /// fields switchyard relies on.
    #[serde(default)]
    pub contract: BTreeMap<String, Spanned<ContractObject>>,
}

fn unversioned() -> String {
    "unversioned".into()
}

/// How requests are authenticated; the secret holds the values (`{secret.*}`), never this file.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// A key (the credential's `key`) in a header or a query parameter.
    ApiKey {
        /// The header that carries the key; exactly one of `header` and `query` is set.
        #[serde(default)]
        header: Option<String>,
        /// The query parameter that carries the key; exactly one of `header` and `query` is set.
        #[serde(default)]
        query: Option<String>,
    },
    /// HTTP basic with the credential's `username` and `password`.
    Basic,
    /// `Authorization: Bearer` with the credential's `token`.
    Bearer,
    /// OAuth 2.0 refresh tokens (the credential's `token_url`), refreshed under the lease.
    Oauth2Refresh,
    /// OAuth 2.0 client credentials, minted under the lease.
    Oauth2ClientCredentials,
    /// A login request whose answer holds a session token.
    SessionLogin {
        /// The login request, filled from the connection secret's fields (`{secret.NAME}`).
        login: Box<Request>,
        /// JSON pointer to the session token in the login answer.
        token: String,
        /// JSON pointer to the session's life in seconds, when the answer says.
        #[serde(default)]
        expires_in: Option<String>,
        /// How the token is sent: a header (default `Authorization`) and a prefix.
        #[serde(default)]
        send: Send,
        /// The vendor ends sessions this old (`24h`): switchyard logs in again before.
        #[serde(default)]
        max_session_age: Option<String>,
        /// The vendor ends a session after this many calls.
        #[serde(default)]
        max_calls_per_session: Option<u64>,
        /// The vendor ends a session that makes more calls than this in an hour.
        #[serde(default)]
        max_calls_per_hour: Option<u64>,
    },
}

/// How a session login's token is sent on each request: in a header, after a prefix.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Send {
    /// The header that carries the token (`Authorization` unless said otherwise).
    #[serde(default = "authorization")]
    pub header: String,
    /// What goes before the token (`Bearer ` unless said otherwise; `""` for none).
    #[serde(default = "bearer")]
    pub prefix: String,
}

impl Default for Send {
    fn default() -> Self {
        Send {
            header: authorization(),
            prefix: bearer(),
        }
    }
}

fn authorization() -> String {
    "Authorization".into()
}

fn bearer() -> String {
    "Bearer ".into()
}

/// Budgets in `RATE_LIMITS` syntax; `RATE_LIMITS` overrides them per deployment.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `600/minute`, `100/10s+10000/day`: the pace, then longer windows as ceilings.
    #[serde(default)]
    pub rate: Option<String>,
    /// Calls in flight at once across every worker.
    #[serde(default)]
    pub concurrency: Option<u32>,
}

/// A templated HTTP request. Values may use `{param.NAME}` (the route's parameters), `{key}`
/// (the action's idempotency key) and, in a login, `{secret.NAME}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `GET` (the default), `POST`, `PUT`, `PATCH` or `DELETE`, in any case.
    #[serde(default = "get")]
    pub method: String,
    /// Follows the base URL (starts with `/`); each segment is filled, then percent-encoded.
    pub path: String,
    /// Query parameters; their values are templates.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Request headers; their values are templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body; its string values are templates.
    #[serde(default)]
    pub json: Option<toml::Value>,
    /// A form body (`application/x-www-form-urlencoded`).
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
}

fn get() -> String {
    "GET".into()
}

/// A struct whose TOML table holds a request's fields beside its own (flat, as people write it;
/// serde's `flatten` would lose `deny_unknown_fields`, so typos would pass).
macro_rules! with_request {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            /// `GET` (the default), `POST`, `PUT`, `PATCH` or `DELETE`, in any case.
            #[serde(default = "get")]
            pub method: String,
            /// Follows the base URL (starts with `/`); each segment is filled, then encoded.
            pub path: String,
            /// Query parameters; their values are templates.
            #[serde(default)]
            pub query: BTreeMap<String, String>,
            /// Request headers; their values are templates.
            #[serde(default)]
            pub headers: BTreeMap<String, String>,
            /// A JSON body; its string values are templates.
            #[serde(default)]
            pub json: Option<toml::Value>,
            /// A form body (`application/x-www-form-urlencoded`); its values are templates.
            #[serde(default)]
            pub form: Option<BTreeMap<String, String>>,
            $($(#[$fm])* pub $f: $t,)*
        }

        impl $name {
            /// The request part.
            pub fn request(&self) -> Request {
                Request {
                    method: self.method.clone(),
                    path: self.path.clone(),
                    query: self.query.clone(),
                    headers: self.headers.clone(),
                    json: self.json.clone(),
                    form: self.form.clone(),
                }
            }
        }
    };
}

with_request! {
/// The cheap authenticated read `doctor` and the canary make.
pub struct Probe {
    /// JSON pointer to who the credential is (an account name), for `doctor`.
    #[serde(default)]
    pub identity: Option<String>,
}
}

with_request! {
/// One action routes can plan: a templated request and how to read its answer.
pub struct Action {
    /// JSON pointer to the created or changed object's id in the answer.
    #[serde(default)]
    pub id: Option<String>,
    /// A link to the object for humans; may use `{id}` and `{base_url}`.
    #[serde(default)]
    pub link: Option<String>,
    /// JSON pointers of answer fields to keep in the outcome.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Kept fields that are dates, normalised to RFC 3339 whatever format the vendor used.
    #[serde(default)]
    pub keep_dates: Vec<String>,
    /// How the vendor side knows a repeated try; a write needs one unless it is `idempotent`.
    #[serde(default)]
    pub idempotency: Option<Idempotency>,
    /// The request is naturally idempotent (a PUT of a whole object): repeating it is harmless.
    #[serde(default)]
    pub idempotent: bool,
}
}

/// How the vendor side knows a repeated action: a key header it dedupes by, or a lookup for the
/// key the action wrote into the object (run before acting again when a try's outcome is
/// unknown or a worker died holding it).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idempotency {
    /// A request header the vendor dedupes by; the action's idempotency key is sent in it.
    #[serde(default)]
    pub header: Option<String>,
    /// A body field the vendor keeps unique (an external id it upserts or refuses a second
    /// object by); the action's request must put `{key}` in it.
    #[serde(default)]
    pub field: Option<String>,
    /// A read for the object an earlier try made, run first when that try may have acted.
    #[serde(default)]
    pub lookup: Option<Lookup>,
}

impl Idempotency {
    fn strategies(&self) -> usize {
        usize::from(self.header.is_some())
            + usize::from(self.field.is_some())
            + usize::from(self.lookup.is_some())
    }
}

with_request! {
/// The read that finds an action's earlier object by its key.
pub struct Lookup {
    /// JSON pointer that holds the earlier object's id when it exists.
    pub found: String,
}
}

/// One triage rule: when the status (and the body) match, the answer means `kind`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `422`, `4xx`, `502,503`; any status when absent.
    #[serde(default)]
    pub status: Option<String>,
    /// Text the body must contain; any body when absent.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// A JSON pointer that must exist in the body (with `equals`: hold that string).
    #[serde(default)]
    pub json: Option<String>,
    /// The text the value at `json` must equal (a number or boolean compares as its text).
    #[serde(default)]
    pub equals: Option<String>,
    /// What a matching answer means.
    pub kind: RuleKind,
    /// Where the vendor writes the wait in seconds: a header name or a JSON pointer.
    #[serde(default)]
    pub wait_header: Option<String>,
    /// A JSON pointer to the wait in seconds in the body; read only without `wait_header`.
    #[serde(default)]
    pub wait: Option<String>,
    /// A JSON pointer (`*` steps into every array item) to the fields a refusal names.
    #[serde(default)]
    pub fields: Option<String>,
    /// What the answer means, for humans (the decision record and `doctor` show it).
    #[serde(default)]
    pub says: Option<String>,
}

/// What an answer a triage rule matches means, and so what happens next.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Success, when the body is JSON or empty (any other body is read as transient).
    Ok,
    /// A transient failure: retried later.
    Retry,
    /// Rate limited: retried after the wait the answer states.
    RateLimited,
    /// The credential or session was rejected: log in or refresh again, then retry.
    Auth,
    /// A human must reconnect.
    Reauth,
    /// Refused for good: not retried.
    Permanent,
    /// The vendor refused where the call came from (an IP allow-list).
    IpBlocked,
}

/// Date formats beyond RFC 3339, RFC 2822 and epoch numbers (which are always read).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dates {
    /// chrono `strftime` formats, tried in order (`%m/%d/%Y %H:%M`).
    #[serde(default)]
    pub formats: Vec<String>,
    /// The UTC offset of a date written without one (`-05:00`); none: such dates are refused.
    #[serde(default)]
    pub offset: Option<String>,
}

/// One object type the drift canary checks: a read-only sample request and the fields it expects.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractObject {
    /// A `GET` without placeholders whose answer holds sample records of this type.
    pub sample: Request,
    /// JSON pointer to the array of records in the sample's answer (none: the answer is one).
    #[serde(default)]
    pub items: Option<String>,
    /// Field path → `string|number|bool|object|array|id|date|epoch`, `?` after it when null is
    /// documented, `!` when switchyard reads it, `enum:a|b` for branched-on values.
    pub fields: BTreeMap<String, String>,
}

/// A description that cannot be used, with the line it is about.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DescriptionError {
    /// The description's file name, as given to [`Description::parse`].
    pub file: String,
    /// The line the problem is on, counted from 1 (1 when no better place is known).
    pub line: usize,
    /// What is wrong, for the person who wrote the description.
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].lines().count().max(1)
        + usize::from(text[..offset.min(text.len())].ends_with('\n'))
}

impl Description {
    /// Parse and validate one description; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, DescriptionError> {
        let err = |offset: usize, message: String| DescriptionError {
            file: file.to_owned(),
            line: line_of(text, offset),
            message,
        };
        let d: Description = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            err(at, e.message().trim().to_owned())
        })?;
        d.validate(text).map_err(|(at, m)| err(at, m))?;
        Ok(d)
    }

    /// The connector name routes use, without its position in the file.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// The line of `text` (this description's file) that names it.
    pub(crate) fn name_line(&self, text: &str) -> usize {
        line_of(text, self.name.span().start)
    }

    /// A session login's limits as the refresher applies them. A per-hour call limit is kept
    /// as a per-session one: after that many calls switchyard logs in again, which keeps every
    /// hour of every session under it whatever window the vendor counts in.
    pub(crate) fn session_policy(&self) -> crate::secrets::SessionPolicy {
        let Auth::SessionLogin {
            max_session_age,
            max_calls_per_session,
            max_calls_per_hour,
            ..
        } = self.auth.get_ref()
        else {
            return Default::default();
        };
        crate::secrets::SessionPolicy {
            max_age_seconds: max_session_age
                .as_deref()
                .and_then(|a| crate::settings::parse_interval(a).ok())
                .map(|d| d.as_secs()),
            max_calls: match (max_calls_per_session, max_calls_per_hour) {
                (Some(a), Some(b)) => Some(*a.min(b)),
                (a, b) => a.or(*b),
            },
        }
    }

    fn validate(&self, text: &str) -> Result<(), (usize, String)> {
        let name = self.name.get_ref();
        let ok_name = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok_name {
            return Err((
                self.name.span().start,
                format!("name {name:?} must be lower-case letters, digits and _, starting with a letter"),
            ));
        }
        let at = self.auth.span().start;
        if let Auth::ApiKey { header, query } = self.auth.get_ref() {
            if header.is_some() == query.is_some() {
                return Err((
                    at,
                    "api_key auth needs exactly one of header or query".into(),
                ));
            }
        }
        if let Auth::SessionLogin {
            login,
            token,
            expires_in,
            max_session_age,
            ..
        } = self.auth.get_ref()
        {
            check_request(login, Scope::Login).map_err(|m| (at, format!("auth.login: {m}")))?;
            for p in std::iter::once(token).chain(expires_in) {
                check_pointer(p).map_err(|m| (at, format!("auth: {m}")))?;
            }
            if let Some(age) = max_session_age {
                crate::settings::parse_interval(age)
                    .map_err(|m| (at, format!("auth.max_session_age: {m}")))?;
            }
        }
        if let Some(rate) = &self.limits.rate {
            let at = text_offset(text, "[limits]");
            crate::pacing::Limits::parse(&format!("{name}={rate}"))
                .map_err(|m| (at, format!("limits.rate: {m}")))?;
        }
        let probe = self.probe.get_ref();
        check_request(&probe.request(), Scope::Read)
            .map_err(|m| (self.probe.span().start, format!("probe: {m}")))?;
        for (action_name, action) in &self.actions {
            let at = action.span().start;
            let a = action.get_ref();
            let fail = |m: String| (at, format!("action {action_name}: {m}"));
            check_request(&a.request(), Scope::Action).map_err(fail)?;
            for p in a.id.iter().chain(&a.keep).chain(&a.keep_dates) {
                check_pointer(p).map_err(fail)?;
            }
            if let Some(link) = &a.link {
                template::check(link, Scope::Link).map_err(|m| fail(format!("link: {m}")))?;
            }
            let writes = !a.method.eq_ignore_ascii_case("GET");
            match &a.idempotency {
                Some(i) if i.strategies() != 1 => {
                    return Err(fail(
                        "idempotency needs exactly one of header, field or lookup".into(),
                    ))
                }
                Some(Idempotency { field: Some(f), .. }) => {
                    let carries = a.json.as_ref().and_then(|j| j.get(f)).and_then(|v| v.as_str());
                    let form = a.form.as_ref().and_then(|m| m.get(f)).map(String::as_str);
                    if !carries.or(form).is_some_and(|t| template::names(t).iter().any(|n| n == "key")) {
                        return Err(fail(format!(
                            "idempotency.field {f:?}: the request's body must set {f} to {{key}}"
                        )));
                    }
                }
                Some(Idempotency {
                    lookup: Some(l), ..
                }) => {
                    check_request(&l.request(), Scope::Action)
                        .map_err(|m| fail(format!("idempotency.lookup: {m}")))?;
                    check_pointer(&l.found).map_err(fail)?;
                    if !template::uses_key(&l.request()) || !template::uses_key(&a.request()) {
                        return Err(fail(
                            "a lookup finds the action by its key: both the request and the lookup must use {key}".into(),
                        ));
                    }
                }
                Some(_) => {}
                None if writes && !a.idempotent => {
                    return Err(fail(format!(
                        "a {} needs an idempotency strategy (header, field or lookup), or idempotent = true if repeating it is harmless",
                        a.method
                    )))
                }
                None => {}
            }
        }
        for rule in &self.triage {
            let at = rule.span().start;
            let r = rule.get_ref();
            let fail = |m: String| (at, format!("triage rule: {m}"));
            if let Some(s) = &r.status {
                StatusMatch::parse(s).map_err(fail)?;
            }
            for p in r.json.iter().chain(&r.wait).chain(&r.fields) {
                check_pointer(p).map_err(fail)?;
            }
            if r.equals.is_some() && r.json.is_none() {
                return Err(fail("equals needs json (the pointer it compares)".into()));
            }
            if r.status.is_none() && r.body_contains.is_none() && r.json.is_none() {
                return Err(fail(
                    "a rule must match on status, body_contains or json".into(),
                ));
            }
        }
        let at = text_offset(text, "[dates]");
        for f in &self.dates.formats {
            if chrono::format::StrftimeItems::new(f).parse().is_err() {
                return Err((at, format!("dates: {f:?} is not a chrono format")));
            }
        }
        if let Some(o) = &self.dates.offset {
            o.parse::<chrono::FixedOffset>()
                .map_err(|_| (at, format!("dates.offset {o:?} is not like -05:00")))?;
        }
        for (object, c) in &self.contract {
            let at = c.span().start;
            let c = c.get_ref();
            let fail = |m: String| (at, format!("contract.{object}: {m}"));
            check_request(&c.sample, Scope::Read).map_err(fail)?;
            if !c.sample.method.eq_ignore_ascii_case("GET") {
                return Err(fail(
                    "a sample must be a GET (the canary never writes)".into(),
                ));
            }
            if let Some(p) = &c.items {
                check_pointer(p).map_err(fail)?;
            }
            for (path, kind) in &c.fields {
                super::contract::field_kind(kind).map_err(|m| fail(format!("{path}: {m}")))?;
            }
        }
        Ok(())
    }
}

/// Where a table header is (for tables without a span of their own); the top when absent.
fn text_offset(text: &str, header: &str) -> usize {
    text.find(header).unwrap_or(0)
}

fn check_pointer(p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(())
    } else {
        Err(format!("{p:?} is not a JSON pointer (they start with /)"))
    }
}

fn check_request(r: &Request, scope: Scope) -> Result<(), String> {
    const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
    if !METHODS.contains(&r.method.to_ascii_uppercase().as_str()) {
        return Err(format!(
            "method {:?} is not one of {}",
            r.method,
            METHODS.join(", ")
        ));
    }
    if !r.path.starts_with('/') {
        return Err(format!(
            "path {:?} must start with / (it follows the base URL)",
            r.path
        ));
    }
    if r.json.is_some() && r.form.is_some() {
        return Err("a request has a json or a form body, not both".into());
    }
    for t in template::strings(r) {
        template::check(t, scope)?;
    }
    Ok(())
}

/// Statuses a rule matches: codes and classes (`4xx`), comma-separated.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StatusMatch(Vec<(u16, u16)>);

impl StatusMatch {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim) {
            let range = match part.as_bytes() {
                [d, b'x', b'x'] | [d, b'X', b'X'] if (b'1'..=b'5').contains(d) => {
                    let base = u16::from(d - b'0') * 100;
                    (base, base + 99)
                }
                _ => {
                    let code: u16 = part
                        .parse()
                        .ok()
                        .filter(|c| (100..600).contains(c))
                        .ok_or_else(|| {
                            format!("status {part:?} is neither a code nor a class like 4xx")
                        })?;
                    (code, code)
                }
            };
            ranges.push(range);
        }
        Ok(StatusMatch(ranges))
    }

    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}
