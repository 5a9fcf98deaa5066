//! People in the loop, end to end: the review card's buttons, clicked in the sandbox's Slack
//! (signed `block_actions` to intake), decide once; act carries the decision out under the
//! event's keys and replaces the card; the CLI is the same decision through another door.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use switchyard::decisions::DecisionRecord;
use switchyard::vendors::slack::review::{APPROVE, DISMISS, DISMISS_REASON, ROUTE, TAKE_OVER};
use switchyard_infra::fixtures;
use switchyard_infra::sandbox::slack_person::Click;
use switchyard_infra::stack::LocalStack;
use switchyard_tests::{settled, wait_for};

const REVIEW_CHANNEL: &str = "C0REVIEW";

/// The review card posted for `event_id`: its `ts`.
async fn card_of(stack: &LocalStack, event_id: &str) -> String {
    let needle = format!("switchyard.decide.{event_id}");
    wait_for("the review card", Duration::from_secs(30), || async {
        stack
            .sandbox
            .slack_messages_with(REVIEW_CHANNEL, &needle)
            .pop()
    })
    .await
}

async fn click(
    stack: &LocalStack,
    ts: &str,
    action_id: &str,
    user: &str,
    option: Option<&str>,
) -> (u16, String) {
    let click = Click {
        user,
        channel: REVIEW_CHANNEL,
        ts,
        action_id,
        option,
    };
    stack
        .sandbox
        .slack_click(&stack.webhook_url("slack"), &stack.signing.slack, click)
        .await
        .unwrap()
}

/// What intake answered people through `response_url`, oldest first.
fn ephemeral(stack: &LocalStack) -> Vec<String> {
    stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.operation == "response_url")
        .inspect(|e| assert_eq!(e.detail["response_type"], "ephemeral", "{:?}", e.detail))
        .map(|e| e.detail["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn wait_status(stack: &LocalStack, event_id: &str, status: &str) -> DecisionRecord {
    let decisions = stack.decisions().unwrap();
    wait_for(status, Duration::from_secs(30), || {
        let decisions = decisions.clone();
        async move {
            decisions
                .get(event_id)
                .await
                .ok()?
                .filter(|r| r.status == status)
        }
    })
    .await
}

/// The card as it stands, once replaced after a decision.
async fn decided_card(stack: &LocalStack, ts: &str) -> String {
    wait_for("the card's update", Duration::from_secs(30), || async {
        let m = stack.sandbox.slack_message(REVIEW_CHANNEL, ts)?;
        (!m["blocks"].to_string().contains("\"actions\"")).then(|| m["blocks"].to_string())
    })
    .await
}

/// A subpoena from Zendesk (ticket 35439, seeded): the legal route's event. Its event id.
async fn legal_request(stack: &LocalStack) -> String {
    stack
        .sandbox
        .seed_zendesk_ticket(35439, "Subpoena for account records");
    let hook = fixtures::zendesk_ticket_created(
        &stack.signing.zendesk,
        "9e41c7d2-5f08-4a63-b1e9-3c8d0a7f6b24",
        35439,
        "Subpoena for account records",
        "Our attorney has served a subpoena for the account records of this customer. Please confirm receipt and route it to your legal team.",
        Utc::now(),
    );
    let (status, body) = hook
        .send(&reqwest::Client::new(), &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    body["event_id"].as_str().unwrap().to_owned()
}

/// A Slack message the built-in model is unsure of (about 0.5, below the 0.6 threshold), sent
/// as delivery `delivery`: its event id, once it waits for a person.
async fn unsure_slack_message(stack: &LocalStack, delivery: &str, text: &str) -> String {
    let hook = fixtures::slack_message(
        &stack.signing.slack,
        delivery,
        "C0SUPPORT",
        text,
        Utc::now(),
    );
    let (_, body) = hook
        .send(&reqwest::Client::new(), &stack.webhook_base)
        .await
        .unwrap();
    let id = body["event_id"].as_str().unwrap().to_owned();
    assert_eq!(settled(stack, &id).await.status, "in_review");
    id
}

/// The CLI's door (`switchyard review resolve`) on this stack, as operator `ops-amy`.
fn cli_door(stack: &LocalStack, routing: &str) -> switchyard_infra::review::Review {
    switchyard_infra::review::Review {
        sqs: stack.aws.sqs.clone(),
        decisions: stack.decisions().unwrap(),
        review_queue_url: stack.provisioned.queue_url("ReviewQueue").unwrap().into(),
        act_queue_url: stack.provisioned.queue_url("ActQueue").unwrap().into(),
        routing: switchyard::routing::RoutingConfig::load(routing).unwrap(),
        operator: "ops-amy".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_legal_request_opens_one_case_however_many_click_and_outsiders_are_refused() {
    let stack = LocalStack::start().await.unwrap();
    let id = legal_request(&stack).await;
    let record = settled(&stack, &id).await;
    assert_eq!(
        (record.category.as_str(), record.status.as_str()),
        ("legal", "in_review")
    );
    let ts = card_of(&stack, &id).await;
    let event_status = || async {
        reqwest::Client::new()
            .get(format!("{}/events/{id}", stack.webhook_base))
            .bearer_auth(&stack.signing.status_token)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let waiting = event_status().await;
    assert_eq!(
        (waiting["awaiting_approval"].as_bool(), &waiting["decision"]),
        (Some(true), &json!(null)),
        "{waiting}"
    );
    let cases = || {
        stack
            .sandbox
            .ledger()
            .into_iter()
            .filter(|e| e.vendor == "casebook" && e.operation.contains("case"))
            .count()
    };

    // Someone not on the legal route's approver list: refused, recorded, nothing done.
    let (status, answer) = click(&stack, &ts, APPROVE, "U0OUTSIDER", None).await;
    assert_eq!(
        (status, answer.as_str()),
        (200, ""),
        "a click is acknowledged, never accepted as an event"
    );
    let refused = wait_for("the refusal", Duration::from_secs(10), || async {
        ephemeral(&stack).pop()
    })
    .await;
    assert!(
        refused.contains("not an approver") && refused.contains("U0LEGAL01"),
        "{refused}"
    );
    let r = stack.decisions().unwrap().get(&id).await.unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.human.is_none(), r.refusals.len()),
        ("in_review", true, 1)
    );
    assert_eq!(r.refusals[0]["by"], "U0OUTSIDER");

    // A click from a client still showing the buttons, sent after everything is done.
    let late = stack
        .sandbox
        .interaction(Click {
            user: "U0LEGAL02",
            channel: REVIEW_CHANNEL,
            ts: &ts,
            action_id: APPROVE,
            option: None,
        })
        .unwrap();
    // Both approvers click at once, and one twice: one decision, one case.
    let (a, b, c) = tokio::join!(
        click(&stack, &ts, APPROVE, "U0LEGAL01", None),
        click(&stack, &ts, APPROVE, "U0LEGAL02", None),
        click(&stack, &ts, APPROVE, "U0LEGAL01", None),
    );
    assert_eq!([a.0, b.0, c.0], [200, 200, 200]);
    let done = wait_status(&stack, &id, "done").await;
    let human = done.human.clone().unwrap();
    assert!(
        ["U0LEGAL01", "U0LEGAL02"].contains(&human.by.as_str()),
        "{human:?}"
    );
    assert_eq!(
        (human.choice.as_str(), human.via.as_str()),
        ("approved", "slack")
    );
    let card = decided_card(&stack, &ts).await;
    assert!(
        card.contains("*Approved* by <@U0") && card.contains("casebook open_case"),
        "{card}"
    );
    let answers = wait_for(
        "two 'already decided' answers",
        Duration::from_secs(10),
        || async {
            let a = ephemeral(&stack);
            (a.len() == 3).then_some(a)
        },
    )
    .await;
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.contains("already decided: approved by"))
            .count(),
        2,
        "{answers:?}"
    );
    // The late click, after act is done: answered, and still one case.
    let now = Utc::now().timestamp();
    let (status, _) = stack
        .sandbox
        .slack_send_signed(&stack.webhook_url("slack"), &stack.signing.slack, late, now)
        .await
        .unwrap();
    assert_eq!(status, 200);
    wait_for(
        "the late click's answer",
        Duration::from_secs(10),
        || async { (ephemeral(&stack).len() == 4).then_some(()) },
    )
    .await;
    assert_eq!(cases(), 1, "{:?}", stack.sandbox.ledger());
    let decided = event_status().await;
    assert_eq!(
        (
            decided["awaiting_approval"].as_bool(),
            decided["decision"].as_str()
        ),
        (Some(false), Some("approved")),
        "{decided}"
    );
    assert_eq!(
        stack.queue_depth("ReviewQueue").await.unwrap(),
        0,
        "the decided copy is gone"
    );
    let updates = stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.operation == "chat.update")
        .count();
    assert_eq!(updates, 1);
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reroute_races_the_cli_and_one_decision_makes_the_chosen_categorys_effect_once() {
    use switchyard_infra::review::Resolution;
    let stack = LocalStack::start().await.unwrap();
    let id = unsure_slack_message(&stack, "Ev9", "The app is slow").await;
    let ts = card_of(&stack, &id).await;
    let review = cli_door(&stack, switchyard::routing::DEFAULT_CONFIG);
    let outage = Resolution::Act {
        category: "outage".into(),
    };
    let (button, cli) = tokio::join!(
        click(&stack, &ts, ROUTE, "U0SUPPORT1", Some("outage")),
        review.resolve(&id, &outage),
    );
    assert_eq!(button.0, 200);
    let done = wait_status(&stack, &id, "done").await;
    let human = done.human.unwrap();
    match cli {
        // The CLI decided first: the button's person is told so.
        Ok(_) => {
            assert_eq!((human.by.as_str(), human.via.as_str()), ("ops-amy", "cli"));
            let told = wait_for("the answer", Duration::from_secs(10), || async {
                ephemeral(&stack).pop()
            })
            .await;
            assert!(
                told.contains("already decided: re-routed as outage by ops-amy via cli"),
                "{told}"
            );
        }
        Err(e) => {
            assert_eq!(
                (human.by.as_str(), human.via.as_str()),
                ("U0SUPPORT1", "slack")
            );
            assert!(
                e.to_string()
                    .contains("already decided: re-routed as outage by U0SUPPORT1"),
                "{e}"
            );
        }
    }
    assert_eq!(
        (human.choice.as_str(), human.category.as_deref()),
        ("rerouted", Some("outage"))
    );
    // The outage route's one effect, once; and the card says who chose what.
    let card = decided_card(&stack, &ts).await;
    assert!(card.contains("*Re-routed as outage* by"), "{card}");
    let posts: Vec<_> = stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.operation == "chat.postMessage" && e.object_id == "C0INCIDENTS")
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_are_verified_answered_and_never_classified_and_dismiss_and_take_over_do_nothing_more(
) {
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let ids = [
        unsure_slack_message(&stack, "EvP1", "The app is slow").await,
        unsure_slack_message(
            &stack,
            "EvP2",
            "anyone else seeing weird numbers in the weekly report?",
        )
        .await,
    ];
    let (slow, odd) = (
        card_of(&stack, &ids[0]).await,
        card_of(&stack, &ids[1]).await,
    );
    let url = stack.webhook_url("slack");
    let secret = stack.signing.slack.clone();
    let body = stack
        .sandbox
        .interaction(Click {
            user: "U0SUPPORT1",
            channel: REVIEW_CHANNEL,
            ts: &slow,
            action_id: DISMISS,
            option: None,
        })
        .unwrap();
    stack.emulator.take_requests().await.unwrap();

    // Forged, and replayed ten minutes late: refused before anything is read or written.
    let now = Utc::now().timestamp();
    let forged = stack
        .sandbox
        .slack_send_signed(&url, "not-the-secret", body.clone(), now)
        .await
        .unwrap();
    let stale = stack
        .sandbox
        .slack_send_signed(&url, &secret, body.clone(), now - 600)
        .await
        .unwrap();
    assert_eq!((forged.0, stale.0), (401, 401), "{forged:?} {stale:?}");
    // Clicks switchyard never asked for: an unknown event, another app's button, an action it
    // does not offer. Each answered for that person alone; none becomes an event.
    let unasked = |block: &str, action: &str| {
        let payload = json!({"type": "block_actions", "user": {"id": "U0SUPPORT1"}, "trigger_id": "9.9.9",
            "container": {"type": "message", "channel_id": REVIEW_CHANNEL, "message_ts": slow},
            "response_url": format!("http://{}/slack-hooks/actions/T0EXAMPLE/9/x", stack.sandbox.addr),
            "actions": [{"type": "button", "block_id": block, "action_id": action, "value": "x", "action_ts": "1.2"}]});
        switchyard_infra::sandbox::slack_person::form(&payload)
    };
    for (block, action) in [
        ("switchyard.decide.no-such-event", APPROVE),
        ("another.app", "another.app.click"),
        (
            &format!("switchyard.decide.{}", ids[0]) as &str,
            "switchyard.delete",
        ),
    ] {
        let (status, answer) = stack
            .sandbox
            .slack_send_signed(&url, &secret, unasked(block, action), now)
            .await
            .unwrap();
        assert_eq!((status, answer.as_str()), (200, ""));
    }
    let answers = wait_for("three answers", Duration::from_secs(10), || async {
        let a = ephemeral(&stack);
        (a.len() == 3).then_some(a)
    })
    .await;
    assert!(
        answers[0].contains("has no event switchyard.")
            || answers[0].contains("no event no-such-event"),
        "{answers:?}"
    );
    assert!(
        answers[1].contains("did not ask for this (not a switchyard review message)"),
        "{answers:?}"
    );
    assert!(answers[2].contains("an unknown action"), "{answers:?}");
    let served = stack.emulator.take_requests().await.unwrap();
    assert_eq!(
        served.get("sqs.SendMessage"),
        None,
        "nothing was enqueued: {served:?}"
    );

    // A re-route must not get round an approval: someone allowed on a vague Zendesk ticket
    // cannot route it as legal (the legal route names its approvers).
    stack.sandbox.seed_zendesk_ticket(35440, "Question");
    let vague = fixtures::zendesk_ticket_created(
        &stack.signing.zendesk,
        "7a7a7a7a-0000-4000-8000-000000000003",
        35440,
        "Question",
        "hello, can you help me with something",
        Utc::now(),
    );
    let (_, body) = vague.send(&http, &stack.webhook_base).await.unwrap();
    let zid = body["event_id"].as_str().unwrap().to_owned();
    assert_eq!(settled(&stack, &zid).await.status, "in_review");
    let zts = card_of(&stack, &zid).await;
    assert_eq!(
        click(&stack, &zts, ROUTE, "U0SUPPORT1", Some("legal"))
            .await
            .0,
        200
    );
    let told = wait_for("the refusal", Duration::from_secs(10), || async {
        ephemeral(&stack)
            .into_iter()
            .find(|a| a.contains("not an approver"))
    })
    .await;
    assert!(told.contains("U0LEGAL01"), "{told}");
    let z = stack.decisions().unwrap().get(&zid).await.unwrap().unwrap();
    assert_eq!(
        (z.status.as_str(), z.human.is_none(), z.refusals.len()),
        ("in_review", true, 1)
    );

    // Dismiss one with a reason typed into the card, take the other over: nothing happens but
    // the cards saying so. The reason is a person's words: kept redacted, shown escaped.
    let ledger_before = stack.sandbox.ledger().len();
    let typed = "dup of <!channel> <https://evil.example|#123>, ask jane.doe@example.com";
    assert_eq!(
        click(&stack, &slow, DISMISS_REASON, "U0SUPPORT1", Some(typed))
            .await
            .0,
        200
    );
    assert_eq!(
        click(&stack, &odd, TAKE_OVER, "U0SUPPORT2", None).await.0,
        200
    );
    let dismissed = wait_status(&stack, &ids[0], "resolved").await;
    let taken = wait_status(&stack, &ids[1], "taken_over").await;
    let note = dismissed.human.as_ref().and_then(|h| h.note.clone());
    assert_eq!(
        note.as_deref(),
        Some("dup of <!channel> <https://evil.example|#123>, ask [email]")
    );
    assert_eq!(
        dismissed.reason.as_deref(),
        Some("dismissed by U0SUPPORT1: dup of <!channel> <https://evil.example|#123>, ask [email]")
    );
    assert_eq!(taken.human.unwrap().by, "U0SUPPORT2");
    let card = decided_card(&stack, &slow).await;
    assert!(card.contains("*Dismissed* by <@U0SUPPORT1>"), "{card}");
    assert!(
        card.contains(
            "*Reason:* dup of &lt;!channel&gt; &lt;https://evil.example|#123&gt;, ask [email]"
        ),
        "{card}"
    );

    assert!(decided_card(&stack, &odd)
        .await
        .contains("a person handles it in slack"));
    // Their review copies go; the undecided Zendesk ticket's stays.
    wait_for(
        "the review copies to go",
        Duration::from_secs(20),
        || async { (stack.queue_depth("ReviewQueue").await.ok()? == 1).then_some(()) },
    )
    .await;
    let effects: Vec<String> = stack.sandbox.ledger()[ledger_before..]
        .iter()
        .map(|e| e.operation.clone())
        .collect();
    assert_eq!(
        effects,
        ["chat.update", "chat.update"],
        "only the cards changed"
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_approval_is_reminded_once_then_expires_and_a_late_click_is_refused() {
    use switchyard_infra::review::Resolution;
    let routing = switchyard::routing::DEFAULT_CONFIG.replace(
        r#"approval = { approvers = ["U0LEGAL01", "U0LEGAL02"] }"#,
        r#"approval = { approvers = ["U0LEGAL01", "U0LEGAL02"], remind_after = "2s", expires = "5s", on_expiry = "review" }"#,
    );
    let stack = LocalStack::start_routed(&routing).await.unwrap();
    let id = legal_request(&stack).await;
    assert_eq!(settled(&stack, &id).await.status, "in_review");
    let ts = card_of(&stack, &id).await;
    // A click prepared now, sent after the expiry (a client still showing the buttons).
    let late = stack
        .sandbox
        .interaction(Click {
            user: "U0LEGAL01",
            channel: REVIEW_CHANNEL,
            ts: &ts,
            action_id: APPROVE,
            option: None,
        })
        .unwrap();

    // One reminder, in the card's thread, naming the approvers.
    let reminder = wait_for("the reminder", Duration::from_secs(30), || async {
        stack.sandbox.ledger().into_iter().find(|e| {
            e.operation == "chat.postMessage" && e.detail["thread_ts"].as_str() == Some(ts.as_str())
        })
    })
    .await;
    let text = reminder.detail["text"].as_str().unwrap();
    assert!(
        text.contains("<@U0LEGAL01> <@U0LEGAL02>") && text.contains(&id),
        "{text}"
    );
    // Then the expiry: the buttons go, the event still waits, for an operator.
    let card = decided_card(&stack, &ts).await;
    assert!(card.contains("*Expired*: no decision within 5s"), "{card}");
    let r = stack.decisions().unwrap().get(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            r.status.as_str(),
            r.human.is_none(),
            r.approval_expired.is_some()
        ),
        ("in_review", true, true)
    );
    let people = switchyard_infra::people::stats(std::slice::from_ref(&r));
    assert_eq!(
        (&people["expired"], &people["awaiting"]),
        (&json!(1), &json!(1))
    );
    let now = Utc::now().timestamp();
    let (status, _) = stack
        .sandbox
        .slack_send_signed(&stack.webhook_url("slack"), &stack.signing.slack, late, now)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let told = wait_for(
        "the late click's answer",
        Duration::from_secs(10),
        || async { ephemeral(&stack).pop() },
    )
    .await;
    assert!(
        told.contains("expired at") && told.contains("nothing changed"),
        "{told}"
    );
    let reminders = stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.detail["thread_ts"].as_str() == Some(ts.as_str()))
        .count();
    assert_eq!(reminders, 1);
    // The operator's door is still open: one case, once.
    let review = cli_door(&stack, &routing);
    review
        .resolve(
            &id,
            &Resolution::Act {
                category: "legal".into(),
            },
        )
        .await
        .unwrap();
    wait_status(&stack, &id, "done").await;
    let cases = stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.vendor == "casebook" && e.operation.contains("case"))
        .count();
    assert_eq!(cases, 1);
    stack.stop();
}

/// The URL on the line of `links` that starts with `label`.
fn link_for(links: &str, label: &str) -> String {
    let at = links
        .find(&format!("{label}: "))
        .unwrap_or_else(|| panic!("no {label} in {links}"));
    let rest = &links[at + label.len() + 2..];
    rest[..rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\\')
        .unwrap_or(rest.len())]
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_links_show_on_get_decide_once_on_post_and_refuse_forged_expired_and_used() {
    use switchyard::handlers::decision::links::{sign, Link};
    let routing = switchyard::routing::DEFAULT_CONFIG.replace(
        "# When the canary finds an API change",
        "[[review.actions]]\nconnector = \"teams\"\naction = \"post_message\"\nparams = { text = \"Needs a person: {event.source} event {event.id}. Decide: {decision.links}\" }\n\n# When the canary finds an API change",
    );
    let stack = LocalStack::start_routed(&routing).await.unwrap();
    let http = reqwest::Client::new();
    let id = unsure_slack_message(&stack, "EvL1", "The app is slow").await;
    let notice = wait_for(
        "the Teams notice with links",
        Duration::from_secs(30),
        || async {
            stack
                .sandbox
                .ledger()
                .into_iter()
                .find(|e| e.vendor == "teams" && e.detail.to_string().contains("/decide/"))
                .map(|e| e.detail.to_string())
        },
    )
    .await;
    let outage = link_for(&notice, "Route as outage");
    let dismiss = link_for(&notice, "Dismiss");
    assert!(
        outage.starts_with(&format!("{}/decide/", stack.webhook_base)),
        "{outage}"
    );
    assert!(
        !notice.contains("Route as other"),
        "no route acts on other for Slack: not offered"
    );

    // A GET (a link scanner, an unfurler, a person opening it) shows the page, changes nothing.
    let page = http.get(&outage).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Route as outage") && html.contains("<form method=\"post\">"),
        "{html}"
    );
    let r = stack.decisions().unwrap().get(&id).await.unwrap().unwrap();
    assert_eq!((r.status.as_str(), r.human.is_none()), ("in_review", true));

    // The POST from the page decides, once; every link of the event is used up with it.
    let decided = http.post(&outage).send().await.unwrap();
    assert_eq!(decided.status().as_u16(), 200);
    assert!(decided
        .text()
        .await
        .unwrap()
        .contains("re-routed as outage by a decision link via link"));
    let done = wait_status(&stack, &id, "done").await;
    assert_eq!(done.human.unwrap().via, "link");
    for used in [&outage, &dismiss] {
        let again = http.post(used).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 409);
        assert!(again
            .text()
            .await
            .unwrap()
            .contains("already decided: re-routed as outage"));
    }
    let posts = stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.object_id == "C0INCIDENTS")
        .count();
    assert_eq!(posts, 1);

    // Forged (one hex digit changed) and expired (signed with the real key, a minute ago).
    let mut forged = outage.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        http.get(&forged).send().await.unwrap().status().as_u16(),
        403
    );
    assert_eq!(
        http.post(&forged).send().await.unwrap().status().as_u16(),
        403
    );
    let key = stack
        .aws
        .secrets
        .get_secret_value()
        .secret_id(&stack.provisioned.refs["DecisionLinkSecret"])
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap();
    let stale = sign(
        &key.into(),
        &Link {
            event_id: id.clone(),
            choice: switchyard::routing::Choice::Dismiss,
            expires: Utc::now().timestamp() - 60,
        },
    );
    let expired = http
        .post(format!("{}/decide/{stale}", stack.webhook_base))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status().as_u16(), 410);
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_that_expires_with_on_expiry_dismiss_is_dismissed_even_where_approvers_are_named(
) {
    let routing = switchyard::routing::DEFAULT_CONFIG.replace(
        r#"approval = { approvers = ["U0LEGAL01", "U0LEGAL02"] }"#,
        r#"approval = { approvers = ["U0LEGAL01", "U0LEGAL02"], expires = "3s", on_expiry = "dismiss" }"#,
    );
    let stack = LocalStack::start_routed(&routing).await.unwrap();
    let id = legal_request(&stack).await;
    let ts = card_of(&stack, &id).await;
    let r = wait_status(&stack, &id, "resolved").await;
    // Counted as expired, not as a person's dismissal.
    let people = switchyard_infra::people::stats(std::slice::from_ref(&r));
    assert_eq!(
        (&people["expired"], &people["by_choice"]),
        (&json!(1), &json!({})),
        "{people}"
    );
    let h = r.human.unwrap();
    assert_eq!(
        (h.by.as_str(), h.via.as_str(), h.choice.as_str()),
        ("switchyard", "expiry", "dismissed")
    );
    assert!(r.refusals.is_empty(), "{:?}", r.refusals);
    let card = decided_card(&stack, &ts).await;
    assert!(
        card.contains("*Dismissed* by switchyard") && card.contains("via expiry"),
        "{card}"
    );
    assert!(!stack
        .sandbox
        .ledger()
        .iter()
        .any(|e| e.vendor == "casebook" && e.operation.contains("case")));
    stack.stop();
}

/// Approvers can be a Slack user group: intake cannot read a group (it holds no bot token), so a
/// click by someone not named goes to act, which asks Slack (`usergroups.users.list`) at that
/// moment and decides as intake would. Without the scope nobody in the group may decide; with it,
/// a member approves once and an outsider is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_groups_member_approves_once_asked_of_slack_at_the_click_and_others_are_refused() {
    let routing = switchyard::routing::DEFAULT_CONFIG.replace(
        r#"approval = { approvers = ["U0LEGAL01", "U0LEGAL02"] }"#,
        r#"approval = { approvers = ["U0LEGAL01", "S0LEGALTEAM"] }"#,
    );
    let stack = LocalStack::start_routed(&routing).await.unwrap();
    stack
        .sandbox
        .set_slack_usergroup("S0LEGALTEAM", &["U0PARALEGAL", "U0COUNSEL"]);
    let id = legal_request(&stack).await;
    let ts = card_of(&stack, &id).await;
    let decisions = stack.decisions().unwrap();
    let answers_now = || ephemeral(&stack).len();

    // An outsider: Slack says they are in no group named; refused and recorded.
    click(&stack, &ts, APPROVE, "U0OUTSIDER", None).await;
    let refused = wait_for("the outsider's answer", Duration::from_secs(20), || async {
        ephemeral(&stack).pop()
    })
    .await;
    assert!(
        refused.contains("not an approver") && refused.contains("S0LEGALTEAM"),
        "{refused}"
    );

    // The app lost `usergroups:read`: a member cannot be told from an outsider, so is refused.
    stack.sandbox.revoke_permission("slack", "usergroups:read");
    let before = answers_now();
    click(&stack, &ts, APPROVE, "U0PARALEGAL", None).await;
    wait_for("the member's refusal", Duration::from_secs(20), || async {
        (answers_now() > before).then_some(())
    })
    .await;
    let r = decisions.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.human.is_none(), r.refusals.len()),
        ("in_review", true, 2)
    );

    // Scope back: the member approves; a second member, whose Slack still showed the buttons,
    // is told it was already decided.
    stack.sandbox.restore_permission("slack", "usergroups:read");
    let late = stack
        .sandbox
        .interaction(Click {
            user: "U0COUNSEL",
            channel: REVIEW_CHANNEL,
            ts: &ts,
            action_id: APPROVE,
            option: None,
        })
        .unwrap();
    click(&stack, &ts, APPROVE, "U0PARALEGAL", None).await;
    let r = wait_status(&stack, &id, "done").await;
    let h = r.human.unwrap();
    assert_eq!(
        (h.by.as_str(), h.via.as_str(), h.choice.as_str()),
        ("U0PARALEGAL", "slack", "approved")
    );
    let card = decided_card(&stack, &ts).await;
    assert!(card.contains("*Approved* by <@U0PARALEGAL>"), "{card}");
    let before = answers_now();
    let (status, _) = stack
        .sandbox
        .slack_send_signed(
            &stack.webhook_url("slack"),
            &stack.signing.slack,
            late,
            Utc::now().timestamp(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let told = wait_for(
        "the second member's answer",
        Duration::from_secs(20),
        || async {
            (answers_now() > before)
                .then(|| ephemeral(&stack).pop())
                .flatten()
        },
    )
    .await;
    assert!(
        told.contains("already decided") && told.contains("U0PARALEGAL"),
        "{told}"
    );
    let cases = stack
        .sandbox
        .ledger()
        .iter()
        .filter(|e| e.vendor == "casebook" && e.operation.contains("case"))
        .count();
    assert_eq!(cases, 1);
    stack.stop();
}
