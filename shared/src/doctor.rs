//! `switchyard doctor`: is every configured connection ready? For each one: the secret is there
//! and well-formed (errors name the secret and the field, never a value), the credential
//! authenticates and as whom, the permissions the vendor grants against those the configured
//! actions need, the rate-limit headroom the vendor reports, when an OAuth token expires, the
//! vendor's clock against ours, an IP-allowlist rejection named as such, and what to fix.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde::Serialize;

use crate::connectors::auth::AuthError;
use crate::connectors::grants::{ResponseFacts, FACTS};
use crate::connectors::{Connector, ConnectorError, Refusal, ResolveError};
use crate::vendors::Connectors;

/// Beyond this, signatures and token lifetimes (JWT `exp`, webhook timestamps) start to fail.
pub(crate) const MAX_CLOCK_SKEW_SECS: i64 = 60;

/// The result of `switchyard doctor`'s checks for one connection (one row of [`render`]).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// The connector's name, or `intake` for the intake signing secret.
    pub connection: String,
    /// The Secrets Manager secret checked: the connection's credential or intake's signing keys.
    pub secret_id: String,
    /// `type` of the stored credential, when it parses.
    pub credential: Option<String>,
    /// Whether the vendor accepted the credential; `false` for a webhook connection with no login.
    pub authenticated: bool,
    /// Who the credential is (an account, a portal, a team), or what was checked.
    pub identity: Option<String>,
    /// What the checks found, or the error that stopped them.
    pub detail: String,
    /// What the vendor says the credential may do (scopes, permissions, role).
    pub granted: Vec<String>,
    /// Permissions configured actions need and the credential lacks: `perm (connector.action)`.
    pub missing: Vec<String>,
    /// The rate-limit headroom the vendor reported.
    pub headroom: Option<String>,
    /// Vendor clock minus ours, from its `Date` header.
    pub clock_skew_seconds: Option<i64>,
    /// An OAuth access token's expiry (RFC 3339).
    pub token_expires_at: Option<String>,
    /// Whether the connection can be used: the checks passed and no needed permission is missing.
    pub ready: bool,
    /// Problems that do not stop the connection from working yet (a vendor clock off by > 60 s).
    pub warnings: Vec<String>,
    /// What a human should do, when not ready.
    pub fix: Option<String>,
}

impl Report {
    /// A row for `connection`, nothing checked yet.
    fn new(connection: &str, secret_id: &str) -> Self {
        Report {
            connection: connection.to_owned(),
            secret_id: secret_id.to_owned(),
            credential: None,
            authenticated: false,
            identity: None,
            detail: String::new(),
            granted: Vec::new(),
            missing: Vec::new(),
            headroom: None,
            clock_skew_seconds: None,
            token_expires_at: None,
            ready: false,
            warnings: Vec::new(),
            fix: None,
        }
    }
}

const IP_FIX: &str = "the vendor's IP allowlist refused this network: allow switchyard's egress address (the NAT gateway's) there";

fn fix_for(e: &ConnectorError) -> String {
    match e {
        _ if e.refusal() == &Refusal::IpAllowList => IP_FIX.into(),
        ConnectorError::Auth(_) | ConnectorError::ReauthRequired(_) => {
            "the credential was refused: reconnect or replace it".into()
        }
        ConnectorError::Permanent {
            refusal: Refusal::MissingPermission,
            ..
        } => "authenticated but not allowed: grant the missing permission".into(),
        ConnectorError::RateLimited { .. } => {
            "the credential's API budget is spent: wait or raise the limit".into()
        }
        _ => "the vendor did not answer properly: try again, check its status page".into(),
    }
}

/// Check every connection the settings name (`<CONNECTOR>_SECRET_ID`); `planned` lists the
/// actions the routing config can plan per connector.
/// `marks`: the PacingTable's "needs reconnect" marks, when the doctor can read it.
pub async fn check(
    connectors: &Connectors,
    planned: &BTreeMap<String, BTreeSet<String>>,
    marks: Option<&crate::reconnect::Reconnect>,
) -> Vec<Report> {
    crate::calls::within(
        crate::calls::CallContext::new("doctor"),
        check_all(connectors, planned, marks),
    )
    .await
}

async fn check_all(
    connectors: &Connectors,
    planned: &BTreeMap<String, BTreeSet<String>>,
    marks: Option<&crate::reconnect::Reconnect>,
) -> Vec<Report> {
    let mut out = Vec::new();
    if let Some(id) = connectors.settings.optional("INTAKE_SECRET_ID") {
        out.push(intake_secret(&connectors.secrets, id).await);
    }
    for name in crate::vendors::configured(&connectors.settings) {
        let secret_id = crate::vendors::secret_id(&connectors.settings, name)
            .unwrap_or_default()
            .to_owned();
        let mut r = Report::new(name, &secret_id);
        match connectors.secrets.credential(&secret_id).await {
            Ok(c) => {
                r.credential = Some(c.kind().to_owned());
                if let Some(at) = c.expires_at() {
                    r.token_expires_at = Some(crate::dates::format(&at));
                }
            }
            Err(e) => {
                r.detail = e.to_string();
                r.fix = Some(format!(
                    "put a valid credential in {secret_id} (see docs/credentials.md)"
                ));
                out.push(r);
                continue;
            }
        }
        // Workers have parked this connection's actions: say so before anything else.
        if let (Some(marks), Ok(value)) = (marks, connectors.secrets.get(&secret_id).await) {
            let fp = crate::reconnect::fingerprint(&value);
            if let Ok(Some(reason)) = marks.pending(&secret_id, &fp).await {
                r.detail = format!("needs reconnect (its actions are parked): {reason}");
                r.fix = Some(format!(
                    "reconnect: store a new credential in {secret_id}; parked actions then resume"
                ));
                out.push(r);
                continue;
            }
        }
        let connector = match connectors.get(name).await {
            Ok(c) => c,
            Err(e) => {
                r.fix = Some(match &e {
                    ResolveError::Auth(AuthError::IpRefused { .. }) => IP_FIX.into(),
                    ResolveError::WrongCredential { .. } => {
                        "store the credential type this connector takes".into()
                    }
                    _ => "reconnect: the stored grant was refused".into(),
                });
                r.detail = e.to_string();
                out.push(r);
                continue;
            }
        };
        let empty = BTreeSet::new();
        let actions = planned.get(name).unwrap_or(&empty);
        let facts = FACTS
            .scope(std::cell::RefCell::new(ResponseFacts::default()), async {
                examine(connector.as_ref(), actions, &mut r).await;
                FACTS.with(|f| f.borrow().clone())
            })
            .await;
        r.headroom = facts.headroom;
        if let Some(vendor) = facts.vendor_date {
            let skew = (vendor - Utc::now()).num_seconds();
            r.clock_skew_seconds = Some(skew);
            if skew.abs() > MAX_CLOCK_SKEW_SECS {
                r.warnings.push(format!(
                    "the vendor's clock is {skew:+} s from ours: signed timestamps and token expiry may be refused; check NTP"
                ));
            }
        }
        out.push(r);
    }
    out
}

/// The intake signing secret: it parses, no entry is blank (anyone could sign with it), and the
/// unsigned sender has its endpoint token. Names sources and positions, never values.
async fn intake_secret(secrets: &crate::secrets::SecretCache, secret_id: &str) -> Report {
    let mut r = Report::new("intake", secret_id);
    let raw = match secrets.get(secret_id).await {
        Ok(v) => v,
        Err(e) => {
            r.detail = e.to_string();
            r.fix = Some(format!(
                "create {secret_id} with each source's signing secrets"
            ));
            return r;
        }
    };
    let lists: crate::secrets::SigningSecrets = match crate::secrets::read_signing(&raw) {
        Ok(l) => l,
        Err(e) => {
            r.detail = format!("not readable: {}", crate::secrets::shape_error(&e));
            r.fix = Some("store a JSON object of lists: {\"zendesk\": [\"…\"], …}".into());
            return r;
        }
    };
    r.credential = Some("signing secrets".into());
    let mut blank: Vec<String> = lists
        .iter()
        .flat_map(|(source, list)| {
            crate::secrets::unusable_entries(list)
                .into_iter()
                .map(move |(i, _)| format!("{source}[{i}]"))
        })
        .collect();
    blank.sort();
    let mut problems = Vec::new();
    if !blank.is_empty() {
        problems.push(format!(
            "blank entries (ignored; anyone could sign with them): {}",
            blank.join(", ")
        ));
    }
    let has_token = lists.get("salesforce_token").is_some_and(|t| {
        t.iter()
            .any(|t| crate::webhook::signature::is_usable(secrecy::ExposeSecret::expose_secret(t)))
    });
    if lists.contains_key("salesforce") && !has_token {
        problems.push(
            "salesforce is configured without a \"salesforce_token\": every outbound message is refused"
                .into(),
        );
    }
    let mut sources: Vec<&str> = lists
        .iter()
        .filter(|(_, l)| {
            l.iter().any(|s| {
                crate::webhook::signature::is_usable(secrecy::ExposeSecret::expose_secret(s))
            })
        })
        .map(|(k, _)| k.as_str())
        .collect();
    sources.sort();
    r.identity = Some(format!("{} entries", sources.len()));
    r.ready = problems.is_empty();
    r.detail = if problems.is_empty() {
        format!("usable: {}", sources.join(", "))
    } else {
        problems.join("; ")
    };
    if !r.ready {
        r.fix = Some(format!(
            "in {secret_id}: remove or fill the blank entries; add \"salesforce_token\": [\"<random>\"] and register the Salesforce endpoint with ?token=<it>"
        ));
    }
    r
}

/// Probe, then compare grants; fills `r`.
async fn examine(connector: &dyn Connector, actions: &BTreeSet<String>, r: &mut Report) {
    match connector.probe().await {
        Ok(o) => {
            // A webhook connection holds no login to test: its probe only checks the setup.
            r.authenticated = crate::vendors::built_in(connector.name()).is_none_or(|v| v.login);
            r.identity = o.object_id;
            r.detail = o.detail;
        }
        Err(e) => {
            r.fix = Some(fix_for(&e));
            r.detail = e.to_string();
            return;
        }
    }
    match connector.grants(actions).await {
        Ok(g) => {
            r.granted = g.granted;
            r.missing = g.missing;
            if !r.missing.is_empty() {
                r.fix = Some(format!(
                    "grant {} to the integration's account or app",
                    r.missing.join(", ")
                ));
            }
            r.ready = r.missing.is_empty();
        }
        Err(e) => {
            r.fix = Some(fix_for(&e));
            r.detail = format!("{}; permissions could not be read: {e}", r.detail);
        }
    }
}

/// A fixed-width table for people.
pub fn render(reports: &[Report]) -> String {
    let mut o = format!(
        "{:<11} {:<26} {:<14} {:<26} {}\n",
        "connection", "credential", "authenticated", "identity", "ready / detail"
    );
    let note = |o: &mut String, text: String| o.push_str(&format!("{:<11}  {text}\n", ""));
    for r in reports {
        o.push_str(&format!(
            "{:<11} {:<26} {:<14} {:<26} {}{}\n",
            r.connection,
            r.credential.as_deref().unwrap_or("MISSING"),
            match (r.authenticated, r.ready) {
                (true, _) => "yes",
                (false, true) => "n/a",
                (false, false) => "NO",
            },
            r.identity.as_deref().unwrap_or("-"),
            if r.ready { "ready: " } else { "NOT READY: " },
            r.detail
        ));
        if !r.granted.is_empty() {
            note(&mut o, format!("granted: {}", r.granted.join(", ")));
        }
        if !r.missing.is_empty() {
            note(&mut o, format!("MISSING: {}", r.missing.join(", ")));
        }
        if let Some(h) = &r.headroom {
            note(&mut o, format!("headroom: {h}"));
        }
        if let Some(t) = &r.token_expires_at {
            note(&mut o, format!("token expires {t}"));
        }
        for w in &r.warnings {
            note(&mut o, format!("warning: {w}"));
        }
        if let Some(fix) = &r.fix {
            note(&mut o, format!("fix: {fix}"));
        }
    }
    o
}
