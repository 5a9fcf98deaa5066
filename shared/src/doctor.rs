//! `switchyard doctor`: is every configured connection ready? For each one: the secret is there
//! and well-formed (errors name the secret and the field, never a value), the credential
//! authenticates and as whom, when an OAuth token expires, and anything a human must fix.

use serde::Serialize;

use crate::connectors::{Connectors, ResolveError};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub connection: String,
    pub secret_id: String,
    /// `type` of the stored credential, when it parses.
    pub credential: Option<String>,
    pub authenticated: bool,
    /// Who the credential is (an account, a portal, a team), or what was checked.
    pub identity: Option<String>,
    pub detail: String,
    /// An OAuth access token's expiry (RFC 3339).
    pub token_expires_at: Option<String>,
    pub ready: bool,
    /// What a human should do, when not ready.
    pub fix: Option<String>,
}

/// Check every connection the settings name (`<CONNECTOR>_SECRET_ID`).
pub async fn check(connectors: &Connectors) -> Vec<Report> {
    let mut out = Vec::new();
    for name in connectors.settings.configured_connectors() {
        let secret_id = connectors
            .settings
            .connection_secret_id(name)
            .unwrap_or_default()
            .to_owned();
        let mut r = Report {
            connection: name.to_owned(),
            secret_id: secret_id.clone(),
            credential: None,
            authenticated: false,
            identity: None,
            detail: String::new(),
            token_expires_at: None,
            ready: false,
            fix: None,
        };
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
                    "put a valid credential in {secret_id} (see README, Deploying)"
                ));
                out.push(r);
                continue;
            }
        }
        let connector = match connectors.get(name).await {
            Ok(c) => c,
            Err(e) => {
                r.fix = Some(match &e {
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
        match connector.probe().await {
            Ok(o) => {
                // Webhook connections hold no login to test; their probe only checks the setup.
                r.authenticated = !o.detail.contains("not called");
                r.identity = o.object_id;
                r.detail = o.detail;
                r.ready = true;
            }
            Err(e) => {
                use crate::connectors::ConnectorError as E;
                r.fix = Some(match &e {
                    E::Auth(_) | E::ReauthRequired(_) => "the credential was refused: reconnect or replace it".into(),
                    E::Permanent(m) if m.contains("403") => {
                        "authenticated but not allowed: grant the missing permission or allow this IP".into()
                    }
                    E::RateLimited { .. } => "the credential's API budget is spent: wait or raise the limit".into(),
                    _ => "the vendor did not answer properly: try again, check its status page".into(),
                });
                r.detail = e.to_string();
            }
        }
        out.push(r);
    }
    out
}

/// A fixed-width table for people.
pub fn render(reports: &[Report]) -> String {
    let mut o = format!(
        "{:<11} {:<15} {:<14} {:<26} {}\n",
        "connection", "credential", "authenticated", "identity", "ready / detail"
    );
    for r in reports {
        let expires = r
            .token_expires_at
            .as_ref()
            .map(|t| format!(" (token expires {t})"))
            .unwrap_or_default();
        o.push_str(&format!(
            "{:<11} {:<15} {:<14} {:<26} {}{}\n",
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
        if !expires.is_empty() {
            o.push_str(&format!("{:<11} {expires}\n", ""));
        }
        if let Some(fix) = &r.fix {
            o.push_str(&format!("{:<11}  fix: {fix}\n", ""));
        }
    }
    o
}
