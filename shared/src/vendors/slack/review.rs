//! The review message as Block Kit, and the clicks on it.
//!
//! The card says what arrived (redacted, escaped), the best guess and why a person is asked,
//! what **Approve** would do, and carries the four choices. Every block switchyard reads back
//! is named `switchyard.…`: the actions block's id carries the event id, so a click names its
//! event without trusting anything else in the payload. After a decision the card is replaced
//! by one without buttons that says who decided what and when.

use serde_json::{json, Value};

use crate::event::Event;
pub use crate::routing::Choice;
use crate::routing::{Classification, Markup, PlannedAction};

/// The actions block's id is this prefix followed by the event id.
pub(crate) const BLOCK_PREFIX: &str = "switchyard.decide.";
/// Action id of the Approve button: do what the card says Approve would do.
pub const APPROVE: &str = "switchyard.approve";
/// Action id of the "Route as…" menu: act as the category picked.
pub const ROUTE: &str = "switchyard.route";
/// Action id of the Dismiss button: switchyard does nothing more with the event.
pub const DISMISS: &str = "switchyard.dismiss";
/// Action id of the Take over button: a person handles the event in the vendor.
pub const TAKE_OVER: &str = "switchyard.take_over";
/// The reason field's block id is this prefix followed by the event id (a message's block ids
/// must differ, so it cannot share the actions block's).
pub(crate) const REASON_PREFIX: &str = "switchyard.reason.";
/// Dismiss with a reason: typed into the card and sent with Enter. A field in the message, not a
/// modal: a modal needs `views.open` with the bot token inside Slack's 3 s, which intake does
/// not hold.
pub const DISMISS_REASON: &str = "switchyard.dismiss_reason";
/// The longest reason kept (Slack's own limit for the field is 3,000).
pub(crate) const REASON_MAX: usize = 500;

/// What the card shows about an event waiting for a person.
pub struct Card<'a> {
    /// The event waiting for a person.
    pub event: &'a Event,
    /// The best guess, shown with its confidence and the backend that made it.
    pub classification: &'a Classification,
    /// Why a person is asked, shown beside the guess.
    pub reason: &'a str,
    /// What Approve would do; `None`: no route fits the guess (no Approve button).
    pub proposal: Option<&'a [PlannedAction]>,
    /// Categories offered in the "Route as…" menu (the first 100; empty: no menu).
    pub categories: &'a [&'a str],
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": cut(text, 2900)})
}

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": cut(text, 75), "emoji": false})
}

/// `text` cut to `max` characters (Slack refuses a block over its limits).
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

/// Event text for a card: PII-redacted, then escaped, so it can neither mention nor link.
fn words(text: &str) -> String {
    Markup::SlackMrkdwn.escape(&crate::redact::redact(text))
}

/// The blocks both cards start with: what arrived.
fn arrived(event: &Event) -> Vec<Value> {
    let object = event.object_id.as_deref().unwrap_or("(no object id)");
    let summary = event.summary().map(|s| words(&s)).unwrap_or_default();
    let link = event
        .links
        .first()
        .map(|l| format!("\n{}", Markup::SlackMrkdwn.escape(l)))
        .unwrap_or_default();
    vec![
        json!({"type": "header", "text": plain(&format!("{} {} needs a person", event.source, object))}),
        json!({"type": "section", "text": mrkdwn(&format!("*{}*{link}", if summary.is_empty() { "(no subject or text)".into() } else { summary }))}),
    ]
}

/// One planned action in words a person reads: connector, action and its identifying values
/// (never the texts it would write, which carry the customer's words).
pub(crate) fn describe_action(a: &PlannedAction) -> String {
    let shown: Vec<String> = a
        .params
        .iter()
        .filter(|(k, v)| {
            (k.ends_with("_id")
                || [
                    "channel", "matter", "project", "priority", "status", "public",
                ]
                .contains(&k.as_str()))
                && v.chars().count() <= 60
        })
        .map(|(k, v)| format!("{k} {}", Markup::SlackMrkdwn.escape(v)))
        .collect();
    let writes: Vec<&str> = a
        .params
        .keys()
        .filter(|k| {
            !(k.ends_with("_id")
                || [
                    "channel", "matter", "project", "priority", "status", "public",
                ]
                .contains(&k.as_str()))
        })
        .map(String::as_str)
        .collect();
    let mut line = format!("{} {}", a.connector, a.action);
    if !shown.is_empty() {
        line += &format!(" ({})", shown.join(", "));
    }
    if !writes.is_empty() {
        line += &format!(", writing {}", writes.join(", "));
    }
    line
}

/// The review card, with its buttons.
pub fn card(c: &Card) -> Value {
    let mut blocks = arrived(c.event);
    let guess = format!(
        "*Best guess*\n{} ({:.2}, {})",
        Markup::SlackMrkdwn.escape(&c.classification.category),
        c.classification.confidence,
        c.classification.backend
    );
    let why = format!("*Why a person*\n{}", Markup::SlackMrkdwn.escape(c.reason));
    blocks.push(json!({"type": "section", "fields": [mrkdwn(&guess), mrkdwn(&why)]}));
    let mut elements = Vec::new();
    if let Some(actions) = c.proposal {
        let lines: Vec<String> = actions
            .iter()
            .map(|a| format!("• {}", describe_action(a)))
            .collect();
        let text = match lines.is_empty() {
            true => "*Approve would do*\nnothing (the route has no actions)".to_owned(),
            false => format!("*Approve would do*\n{}", lines.join("\n")),
        };
        blocks.push(json!({"type": "section", "text": mrkdwn(&text)}));
        elements.push(
            json!({"type": "button", "action_id": APPROVE, "style": "primary",
            "text": plain("Approve"), "value": c.event.id}),
        );
    }
    let options: Vec<Value> = c
        .categories
        .iter()
        .take(100)
        .map(|name| json!({"text": plain(name), "value": cut(name, 150)}))
        .collect();
    if !options.is_empty() {
        elements.push(json!({"type": "static_select", "action_id": ROUTE,
            "placeholder": plain("Route as…"), "options": options}));
    }
    elements.push(json!({"type": "button", "action_id": DISMISS, "text": plain("Dismiss"), "value": c.event.id,
        "confirm": {"title": plain("Dismiss this event?"), "text": plain("switchyard will do nothing more with it."),
                    "confirm": plain("Dismiss"), "deny": plain("Cancel")}}));
    elements.push(json!({"type": "button", "action_id": TAKE_OVER, "text": plain("Take over"), "value": c.event.id}));
    blocks.push(json!({"type": "actions", "block_id": format!("{BLOCK_PREFIX}{}", c.event.id), "elements": elements}));
    blocks.push(json!({"type": "input", "block_id": format!("{REASON_PREFIX}{}", c.event.id),
        "dispatch_action": true, "optional": true, "label": plain("Or dismiss with a reason"),
        "element": {"type": "plain_text_input", "action_id": DISMISS_REASON, "max_length": REASON_MAX,
            "placeholder": plain("why switchyard should do nothing (Enter dismisses)"),
            "dispatch_action_config": {"trigger_actions_on": ["on_enter_pressed"]}}}));
    blocks.push(json!({"type": "context", "elements": [mrkdwn(&format!(
        "event `{}` · or `switchyard review resolve {}`", c.event.id, c.event.id))]}));
    Value::Array(blocks)
}

/// Who decided, for the card: a Slack user as a mention (an id Slack signed), anyone else by
/// name, escaped.
pub fn who(by: &str, via: &str) -> String {
    let slack_id = by.len() >= 3
        && by
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    match (via, slack_id) {
        ("slack", true) => format!("<@{by}>"),
        _ => Markup::SlackMrkdwn.escape(by),
    }
}

/// A person's reason, for the decided card: on its own line, escaped as event text is. The
/// record keeps it PII-redacted already (`HumanDecision::with_note`).
pub fn reason(note: &str) -> String {
    format!("\n*Reason:* {}", Markup::SlackMrkdwn.escape(note))
}

/// The card after a decision: what arrived, and who decided what and when; no buttons.
pub fn decided_card(event: &Event, line: &str) -> Value {
    let mut blocks = arrived(event);
    blocks.push(json!({"type": "section", "text": mrkdwn(line)}));
    blocks.push(json!({"type": "context", "elements": [mrkdwn(&format!("event `{}`", event.id))]}));
    Value::Array(blocks)
}

/// A click on a review card, as Slack's signed `block_actions` payload carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct Click {
    /// The event the card is about, read from the clicked block's id.
    pub event_id: String,
    /// What the person chose (a reason typed into the card is a dismissal).
    pub choice: Choice,
    /// The Slack user id of the person who clicked.
    pub user: String,
    /// The channel the card is in, when the payload says.
    pub channel: Option<String>,
    /// The card message's timestamp, when the payload says (with `channel`, the card to update).
    pub message_ts: Option<String>,
    /// Where Slack takes an answer for the person who clicked, when it sent one.
    pub response_url: Option<String>,
    /// What the person typed with the choice (a dismissal's reason), as typed.
    pub note: Option<String>,
}

/// Why an interaction is not a click switchyard asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum NotOurs {
    /// Not a `block_actions` interaction on a switchyard card (another app's, a shortcut…).
    Elsewhere,
    /// On a switchyard card, but not one of its choices (or missing what a choice needs).
    Unknown(String),
}

/// Read a click from an interaction payload.
pub fn click(payload: &Value) -> Result<Click, NotOurs> {
    if payload["type"] != "block_actions" {
        return Err(NotOurs::Elsewhere);
    }
    let action = &payload["actions"][0];
    let event_id = action["block_id"]
        .as_str()
        .and_then(|b| {
            b.strip_prefix(BLOCK_PREFIX)
                .or(b.strip_prefix(REASON_PREFIX))
        })
        .filter(|id| !id.is_empty())
        .ok_or(NotOurs::Elsewhere)?;
    let mut note = None;
    let choice = match action["action_id"].as_str().unwrap_or_default() {
        APPROVE => Choice::Approve,
        DISMISS => Choice::Dismiss,
        DISMISS_REASON => match action["value"].as_str().map(str::trim) {
            Some(reason) if !reason.is_empty() => {
                note = Some(cut(reason, REASON_MAX));
                Choice::Dismiss
            }
            _ => return Err(NotOurs::Unknown("a dismissal with an empty reason".into())),
        },
        TAKE_OVER => Choice::TakeOver,
        ROUTE => match action["selected_option"]["value"].as_str() {
            Some(c) if !c.is_empty() => Choice::Route(c.to_owned()),
            _ => return Err(NotOurs::Unknown("a re-route without a category".into())),
        },
        other => {
            return Err(NotOurs::Unknown(format!(
                "an unknown action {:?}",
                cut(other, 40)
            )))
        }
    };
    let user = payload["user"]["id"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| NotOurs::Unknown("a click without a user".into()))?;
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(Click {
        event_id: event_id.to_owned(),
        choice,
        user: user.to_owned(),
        channel: text(&payload["container"]["channel_id"])
            .or_else(|| text(&payload["channel"]["id"])),
        message_ts: text(&payload["container"]["message_ts"]),
        response_url: text(&payload["response_url"]),
        note,
    })
}

#[cfg(test)]
mod tests;
