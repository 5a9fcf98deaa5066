//! `switchyard connector check FILE --event SAMPLE.json`: the requests a description would send
//! for a sample event, rendered without sending anything. The routing config decides which
//! actions the event plans (each route that names the connector, as if classified into it);
//! every secret — the credential, a session token, a login's fields — shows as `[redacted]`,
//! because none is ever loaded.

use std::fmt::Write as _;

use secrecy::SecretString;

use super::describe::Auth;
use super::{Declared, Described};
use crate::connectors::{ConnectorError, ResolveError};
use crate::event::Event;
use crate::routing::{Classification, Decision, PlannedAction, RoutingConfig};
use crate::secrets::Credential;

/// Why a preview could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// What `--event` gave is neither a decision record, an act message nor an event.
    #[error("not an event: {0}")]
    NotAnEvent(serde_json::Error),
    /// A decision record whose `planned_actions` do not read as actions.
    #[error("planned_actions unreadable: {0}")]
    PlannedActions(serde_json::Error),
    /// The connector cannot be built over a placeholder credential (no base URL).
    #[error(transparent)]
    Connector(#[from] ResolveError),
    /// An action or request the description cannot make (an unknown action, a missing
    /// parameter).
    #[error(transparent)]
    Request(#[from] ConnectorError),
}

pub(crate) const REDACTED: &str = "[redacted]";
/// What a preview shows where act would put the action's idempotency key.
pub const KEY: &str = "[idempotency key]";

/// A credential of the description's kind whose every secret is [`REDACTED`].
fn placeholder(d: &Described, base_url: &str) -> Credential {
    let secret = || SecretString::from(REDACTED.to_owned());
    let base_url = base_url.to_owned();
    match d.description.auth.get_ref() {
        Auth::ApiKey { .. } => Credential::ApiKey {
            base_url,
            key: secret(),
        },
        Auth::Basic => Credential::Basic {
            base_url,
            username: REDACTED.into(),
            password: secret(),
        },
        Auth::Bearer => Credential::BearerToken {
            base_url,
            token: secret(),
        },
        Auth::Oauth2Refresh => Credential::Oauth2Refresh {
            base_url,
            access_token: secret(),
            refresh_token: secret(),
            client_id: REDACTED.into(),
            client_secret: secret(),
            expires_at: None,
        },
        Auth::Oauth2ClientCredentials => Credential::Oauth2ClientCredentials {
            base_url,
            token_url: String::new(),
            client_id: REDACTED.into(),
            client_secret: secret(),
            scope: None,
            access_token: Some(secret()),
            expires_at: None,
            session: Default::default(),
        },
        Auth::SessionLogin { .. } => Credential::SessionLogin {
            connector: d.name.to_owned(),
            base_url,
            access_token: Some(secret()),
            issued_at: None,
            expires_at: None,
            session: Default::default(),
        },
    }
}

fn render(out: &mut String, req: reqwest::RequestBuilder) {
    let Ok(req) = req.build() else {
        out.push_str("  (the request cannot be built)\n");
        return;
    };
    let url = req.url().as_str().replace("%5Bredacted%5D", REDACTED);
    let _ = writeln!(out, "  {} {url}", req.method());
    for (name, value) in req.headers() {
        let shown = if value.is_sensitive() {
            REDACTED
        } else {
            value.to_str().unwrap_or("(not text)")
        };
        let _ = writeln!(out, "  {name}: {shown}");
    }
    if let Some(body) = req.body().and_then(|b| b.as_bytes()) {
        let _ = writeln!(out, "  {}", String::from_utf8_lossy(body));
    }
}

/// The requests `described` would send for what `connector check --event` was given: the story
/// `switchyard explain --json` prints (its recorded `planned_actions`), an act message (the event
/// under `event`), or an event.
pub fn preview_input(
    described: &'static Described,
    routing: &RoutingConfig,
    input: serde_json::Value,
    base_url: &str,
) -> Result<String, PreviewError> {
    if input.get("event_id").is_some() && input.get("planned_actions").is_some() {
        // A record not yet classified has none (`null`).
        let actions: Option<Vec<PlannedAction>> =
            serde_json::from_value(input["planned_actions"].clone())
                .map_err(PreviewError::PlannedActions)?;
        return preview_planned(described, &actions.unwrap_or_default(), base_url);
    }
    let event = match input.get("event") {
        Some(event) => event.clone(),
        None => input,
    };
    let event: Event = serde_json::from_value(event).map_err(PreviewError::NotAnEvent)?;
    preview(described, routing, &event, base_url)
}

/// The requests `described` would send for `event` under `routing`, as text.
pub fn preview(
    described: &'static Described,
    routing: &RoutingConfig,
    event: &Event,
    base_url: &str,
) -> Result<String, PreviewError> {
    let (connector, mut out) = start(described, base_url)?;
    let name = described.name;
    let mut planned = 0;
    for route in routing.routes.iter().map(|r| r.get_ref()) {
        if !route.actions.iter().any(|a| a.connector == name) {
            continue;
        }
        let mut c = Classification::unknown("preview", format!("route {:?}", route.category));
        c.category = if route.category == "*" {
            "other".into()
        } else {
            route.category.clone()
        };
        c.confidence = 1.0;
        if route.approval.is_some() {
            // What it does once a person approves: a person's choice is never asked again.
            let _ = writeln!(
                out,
                "route {:?} asks a person before it writes; once approved:",
                route.category
            );
            c.backend = crate::routing::HUMAN;
        }
        let actions = match routing.decide(event, &c) {
            Decision::Act(actions) => actions,
            Decision::Review { reason, .. } => {
                let _ = writeln!(
                    out,
                    "route {:?}: this event would go to review: {reason}",
                    route.category
                );
                continue;
            }
        };
        for action in actions.iter().filter(|a| a.connector == name) {
            planned += 1;
            let heading = format!("route {:?} → {name}.{}:", route.category, action.action);
            render_action(&mut out, &connector, &heading, action)?;
        }
    }
    if planned == 0 {
        let _ = writeln!(
            out,
            "no route in the routing config plans a {name} action for this event"
        );
    }
    Ok(out)
}

/// The actions a decision record planned for `described` (what `switchyard explain --json` prints
/// as `planned_actions`), rendered as the requests they make. The record keeps its parameters
/// redacted, so the values show as the record has them.
pub(crate) fn preview_planned(
    described: &'static Described,
    actions: &[PlannedAction],
    base_url: &str,
) -> Result<String, PreviewError> {
    let (connector, mut out) = start(described, base_url)?;
    let name = described.name;
    let mine: Vec<&PlannedAction> = actions.iter().filter(|a| a.connector == name).collect();
    for action in &mine {
        let heading = format!("planned {name}.{}:", action.action);
        render_action(&mut out, &connector, &heading, action)?;
    }
    if mine.is_empty() {
        let _ = writeln!(out, "the decision record plans no {name} action");
    }
    Ok(out)
}

/// The connector over a placeholder credential, and the preview so far: its session login,
/// when the description has one.
fn start(
    described: &'static Described,
    base_url: &str,
) -> Result<(Declared, String), PreviewError> {
    let connector = Declared::new(
        described,
        crate::connectors::http_client(),
        placeholder(described, base_url),
    )?;
    let mut out = String::new();
    render_login(&mut out, described, base_url)?;
    Ok((connector, out))
}

/// The session login, when the description has one.
fn render_login(
    out: &mut String,
    described: &'static Described,
    base_url: &str,
) -> Result<(), PreviewError> {
    let http = crate::connectors::http_client();
    if let Auth::SessionLogin { login, .. } = described.description.auth.get_ref() {
        let unsigned = Declared {
            sign: super::Sign::None,
            ..Declared::new(described, http, placeholder(described, base_url))?
        };
        let _ = writeln!(out, "login (once per session, under the refresh lease):");
        let secret = |n: &str| n.starts_with("secret.").then(|| REDACTED.to_owned());
        render(out, unsigned.request(login, &secret, None)?);
    }
    Ok(())
}

/// One action's requests: the look-up an unknown outcome makes first, then the action itself.
fn render_action(
    out: &mut String,
    connector: &Declared,
    heading: &str,
    action: &PlannedAction,
) -> Result<(), PreviewError> {
    let _ = writeln!(out, "{heading}");
    let a = connector.action(&action.action)?;
    let value = |n: &str| match n {
        "key" => Some(KEY.to_owned()),
        _ => action.params.get(n.strip_prefix("param.")?).cloned(),
    };
    if let Some(lookup) = a.idempotency.as_ref().and_then(|i| i.lookup.as_ref()) {
        let _ = writeln!(
            out,
            " when an earlier try's outcome is unknown, it looks first:"
        );
        render(out, connector.request(&lookup.request(), &value, None)?);
    }
    let _ = writeln!(out, " the action:");
    let header = a
        .idempotency
        .as_ref()
        .and_then(|i| i.header.as_deref())
        .map(|h| (h, KEY));
    render(out, connector.request(&a.request(), &value, header)?);
    Ok(())
}
