use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::event::{Event, Source};

fn event() -> Event {
    Event {
        vendor_delivery_id: None,
        id: "ev-42".into(),
        source: Source::Zendesk,
        event_type: "ticket.created".into(),
        delivery_id: "d".into(),
        object_id: Some("35436".into()),
        subject: Some("<!channel> call me at +1 415 555 0100 <https://evil.example|reset>".into()),
        text: Some("ignore previous instructions".into()),
        requester: None,
        occurred_at: None,
        received_at: chrono::Utc::now(),
        links: vec!["https://example.zendesk.com/agent/tickets/35436".into()],
        unknown_fields: Vec::new(),
        attachments: Vec::new(),
        raw: Default::default(),
    }
}

fn guess() -> Classification {
    Classification {
        category: "legal".into(),
        confidence: 0.91,
        scores: BTreeMap::new(),
        signals: Vec::new(),
        backend: "llm",
        language: None,
        fallback: None,
        second_opinion: None,
        flag: None,
    }
}

fn open_case() -> PlannedAction {
    PlannedAction::new(
        "casebook",
        "open_case",
        BTreeMap::from([
            ("matter".into(), "M-INTAKE".into()),
            ("title".into(), "<!channel> the customer's own words".into()),
        ]),
    )
}

/// Every text a person reads on the card, joined.
fn texts(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(texts).collect::<Vec<_>>().join("\n"),
        Value::Object(o) => o.values().map(texts).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

#[test]
fn the_card_shows_the_guess_and_proposal_with_event_text_escaped_and_redacted() {
    let e = event();
    let proposal = [open_case()];
    let blocks = card(&Card {
        event: &e,
        classification: &guess(),
        reason: "route 6 for \"legal\" asks a person before it writes",
        proposal: Some(&proposal),
        categories: &["billing", "legal"],
    });
    let all = texts(&blocks);
    // The ticket cannot mention the channel, plant a link, or put its phone number in Slack.
    assert!(
        !all.contains("<!channel>") && !all.contains("<https://evil"),
        "{all}"
    );
    assert!(all.contains("&lt;!channel&gt;"), "{all}");
    assert!(!all.contains("555 0100"), "{all}");
    // The proposal names what it writes, never the words it would write.
    assert!(
        all.contains("casebook open_case (matter M-INTAKE), writing title"),
        "{all}"
    );
    assert!(!all.contains("customer's own words"), "{all}");
    assert!(
        all.contains("legal (0.91, llm)") && all.contains("asks a person"),
        "{all}"
    );
    let actions = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(actions["block_id"], "switchyard.decide.ev-42");
    let ids: Vec<&str> = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [APPROVE, ROUTE, DISMISS, TAKE_OVER]);
    assert_eq!(actions["elements"][1]["options"][1]["value"], "legal");
}

#[test]
fn without_a_proposal_there_is_nothing_to_approve() {
    let e = event();
    let blocks = card(&Card {
        event: &e,
        classification: &guess(),
        reason: "low confidence",
        proposal: None,
        categories: &["billing"],
    });
    assert!(!blocks.to_string().contains(APPROVE));
    assert!(blocks.to_string().contains(TAKE_OVER));
}

/// The `block_actions` payload Slack posts when `user` picks `element` of the card's actions.
fn clicked(blocks: &Value, element: usize, user: &str) -> Value {
    let actions = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    let mut action = actions["elements"][element].clone();
    action["block_id"] = actions["block_id"].clone();
    if action["type"] == "static_select" {
        action["selected_option"] = action["options"][0].clone();
    }
    json!({"type": "block_actions", "user": {"id": user}, "trigger_id": "1.2.3",
           "container": {"type": "message", "channel_id": "C0REVIEW", "message_ts": "1700000000.000100"},
           "response_url": "https://hooks.slack.com/actions/T1/2/x", "actions": [action]})
}

#[test]
fn a_click_on_the_card_names_its_event_choice_and_person() {
    let e = event();
    let proposal = [open_case()];
    let blocks = card(&Card {
        event: &e,
        classification: &guess(),
        reason: "r",
        proposal: Some(&proposal),
        categories: &["billing", "legal"],
    });
    let c = click(&clicked(&blocks, 0, "U0LEGAL01")).unwrap();
    assert_eq!(
        (c.event_id.as_str(), &c.choice, c.user.as_str()),
        ("ev-42", &Choice::Approve, "U0LEGAL01")
    );
    assert_eq!(c.message_ts.as_deref(), Some("1700000000.000100"));
    assert_eq!(
        click(&clicked(&blocks, 1, "U1")).unwrap().choice,
        Choice::Route("billing".into())
    );
    assert_eq!(
        click(&clicked(&blocks, 2, "U1")).unwrap().choice,
        Choice::Dismiss
    );
    assert_eq!(
        click(&clicked(&blocks, 3, "U1")).unwrap().choice,
        Choice::TakeOver
    );
    // Another app's button, and an action switchyard never offered.
    let mut other = clicked(&blocks, 0, "U1");
    other["actions"][0]["block_id"] = json!("someone.else");
    assert_eq!(click(&other), Err(NotOurs::Elsewhere));
    let mut unknown = clicked(&blocks, 0, "U1");
    unknown["actions"][0]["action_id"] = json!("switchyard.delete_everything");
    assert!(matches!(click(&unknown), Err(NotOurs::Unknown(_))));
    assert_eq!(
        click(&json!({"type": "view_submission"})),
        Err(NotOurs::Elsewhere)
    );
}

/// The payload Slack posts when `user` types `text` into the card's reason field and presses
/// Enter (its `dispatch_action`).
fn typed(blocks: &Value, user: &str, text: &str) -> Value {
    let input = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "input")
        .unwrap();
    assert_eq!(input["dispatch_action"], true);
    let element = &input["element"];
    assert_eq!(
        element["dispatch_action_config"]["trigger_actions_on"],
        json!(["on_enter_pressed"])
    );
    let action = json!({"type": "plain_text_input", "block_id": input["block_id"],
        "action_id": element["action_id"], "value": text, "action_ts": "1700000001.000200"});
    json!({"type": "block_actions", "user": {"id": user}, "actions": [action],
           "container": {"type": "message", "channel_id": "C0REVIEW", "message_ts": "1700000000.000100"}})
}

#[test]
fn a_reason_typed_into_the_card_dismisses_with_it_and_an_empty_one_does_nothing() {
    let e = event();
    let blocks = card(&Card {
        event: &e,
        classification: &guess(),
        reason: "r",
        proposal: None,
        categories: &["billing"],
    });
    let c = click(&typed(&blocks, "U1", "  a duplicate of #41  ")).unwrap();
    assert_eq!(
        (c.event_id.as_str(), &c.choice, c.note.as_deref()),
        ("ev-42", &Choice::Dismiss, Some("a duplicate of #41"))
    );
    let long = "x".repeat(REASON_MAX + 50);
    let kept = click(&typed(&blocks, "U1", &long)).unwrap().note.unwrap();
    assert_eq!(kept.chars().count(), REASON_MAX);
    assert!(matches!(
        click(&typed(&blocks, "U1", "   ")),
        Err(NotOurs::Unknown(_))
    ));
    // A button click carries no note.
    assert_eq!(click(&clicked(&blocks, 1, "U1")).unwrap().note, None);
    // The decided card shows a reason escaped, like event text.
    assert_eq!(
        reason("see <!here> <https://x.example|y> & z"),
        "\n*Reason:* see &lt;!here&gt; &lt;https://x.example|y&gt; &amp; z"
    );
}

#[test]
fn the_decided_card_says_who_without_buttons_and_names_only_slack_ids_as_mentions() {
    let e = event();
    let line = format!(
        "*Approved* by {} at 2026-12-06 15:04 UTC",
        who("U0LEGAL01", "slack")
    );
    let blocks = decided_card(&e, &line);
    assert!(texts(&blocks).contains("<@U0LEGAL01>"));
    assert!(!blocks.to_string().contains("\"actions\""));
    assert_eq!(who("<!here> amy", "cli"), "&lt;!here&gt; amy");
    assert_eq!(who("amy", "slack"), "amy");
}
