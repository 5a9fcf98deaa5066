//! A burst of work against a budget it overruns: each action that must wait reserves its slot
//! when it is handed back, comes back once at that slot and calls without competing again.

use chrono::Utc;
use switchyard_infra::fixtures;
use switchyard_infra::stack::LocalStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_handed_back_about_once_per_action_and_makes_each_effect_once() {
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    // A slot every half second; 30 tickets at once are 15 s of budget, most beyond an in-function
    // wait.
    let limits = [("RateLimits".to_owned(), "zendesk=120/minute".to_owned())];
    let stack = LocalStack::start_with(&limits).await.unwrap();
    // The sandbox enforces the same limit: a call ahead of its slot would be a 429.
    stack.sandbox.set_zendesk_rate_limit(Some(120));
    let http = reqwest::Client::new();
    let before = stack.stats.metrics.lock().unwrap().len();
    stack.emulator.take_usage().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..30u64 {
        stack
            .sandbox
            .seed_zendesk_ticket(90_000 + i, "Refund for a double charge");
        let hook = fixtures::zendesk_ticket_created(
            &stack.signing.zendesk,
            &format!("burst-{i}"),
            90_000 + i,
            "Refund for a double charge",
            "My card was charged twice for the March invoice; please refund one payment.",
            Utc::now(),
        );
        let (status, body) = hook.send(&http, &stack.webhook_base).await.unwrap();
        assert_eq!(status, 202, "{body}");
        ids.push(body["event_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let r =
            switchyard_tests::settled_within(&stack, id, std::time::Duration::from_secs(90)).await;
        assert_eq!(r.status, "done", "{id}: {:?}", r.reason);
    }
    let handbacks =
        switchyard_infra::cost::budget_waits(&stack.stats.metrics.lock().unwrap()[before..]);
    let effects = stack.sandbox.ledger().len();
    assert_eq!(effects, 30, "one Zendesk update per ticket");
    assert_eq!(
        stack.sandbox.zendesk_requests().1,
        0,
        "no call went ahead of its slot (no 429)"
    );
    // A wait is the record's note, not an appended attempt: the record stays under 1 KB, one
    // write unit a write, through the wait and after (an attempt appended took it to 1.15 KB).
    let usage = stack.emulator.take_usage().await.unwrap();
    let largest = usage.largest_item["DecisionsTable UpdateItem"];
    assert!(largest < 1024, "{largest} bytes: {:?}", usage.largest_item);
    let waited = switchyard_tests::settled(&stack, &ids[29]).await;
    assert_eq!(waited.held.get("waiting zendesk"), Some(&1), "{waited:?}");
    assert_eq!(waited.note, None, "done: the note is gone");
    // Without reservations a waiting action came back to compete again: 38 for 30 here.
    assert!(
        handbacks as f64 / effects as f64 <= 1.1,
        "{handbacks} hand-backs for {effects} effects"
    );
    stack.stop();
}

/// A reserved slot is used once, by the copy that carries it on its first receive: the same copy
/// received again (after a failure or a crash, when the slot may already be spent) asks the
/// budget like any other work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_slot_is_used_by_its_first_receive_only() {
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
    use lambda_runtime::{Context, LambdaEvent};
    use switchyard::handlers::act::{handler as act, RESERVED_AT_ATTR, RESERVED_FOR_ATTR};

    // The slot this copy reserved when it was handed back: the hour's only one.
    let (stack, deps, now, body) = an_hour_spent(7, "ev-slot-1").await;
    let receive = |count: &str| {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m-{count}"));
        m.body = Some(body.clone());
        m.attributes
            .insert("ApproximateReceiveCount".into(), count.into());
        for (name, value) in [(RESERVED_AT_ATTR, now), (RESERVED_FOR_ATTR, 1)] {
            let mut a = SqsMessageAttribute::default();
            a.data_type = Some("Number".into());
            a.string_value = Some(value.to_string());
            m.message_attributes.insert(name.into(), a);
        }
        let mut batch = SqsEvent::default();
        batch.records = vec![m];
        LambdaEvent::new(batch, Context::default())
    };
    let effects = || stack.sandbox.ledger().len();

    // Received a second time: it asks the budget, which has nothing within the hour — no call.
    let answer = act(&deps, receive("2")).await.unwrap();
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(
        effects(),
        0,
        "a redelivered copy must not spend its slot again"
    );
    let state = || async {
        let decisions = stack.decisions().unwrap();
        decisions.get("ev-slot-1").await.unwrap().unwrap().status
    };
    assert_eq!(state().await, "waiting");

    // Its first receive: the slot is its own, paid for already — it calls at once.
    act(&deps, receive("1")).await.unwrap();
    assert_eq!(effects(), 1);
    assert_eq!(state().await, "done");
    stack.stop();
}

/// Work classify sent asks the budget before it claims its action's key: when it must wait, it is
/// handed back with no claim and no release (the burst's main cost beyond steady traffic). A copy
/// sent round again claims first: its earlier actions are done, and asking for them would waste
/// slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_action_is_handed_back_before_its_key_is_claimed() {
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use lambda_runtime::{Context, LambdaEvent};
    use switchyard::handlers::act::{handler as act, NOT_BEFORE_ATTR};

    let (stack, deps, _, body) = an_hour_spent(8, "ev-wait-1").await;
    let run = |m: SqsMessage| {
        let deps = &deps;
        async move {
            let mut batch = SqsEvent::default();
            batch.records = vec![m];
            let answer = act(deps, LambdaEvent::new(batch, Context::default()))
                .await
                .unwrap();
            assert!(answer.batch_item_failures.is_empty());
        }
    };
    let key_writes = |u: &switchyard_infra::emulator::Usage| -> f64 {
        u.write_units
            .iter()
            .filter(|(k, _)| k.starts_with("IdempotencyTable"))
            .map(|(_, v)| v)
            .sum()
    };

    stack.emulator.take_usage().await.unwrap();
    run(switchyard_tests::message("m-fresh", &body, 1)).await;
    let fresh = stack.emulator.take_usage().await.unwrap();
    assert_eq!(key_writes(&fresh), 0.0, "{:?}", fresh.write_units);
    assert_eq!(stack.sandbox.ledger().len(), 0);

    // A copy sent round again (it carries `not_before`; the one above is delayed past the test):
    // claimed first, then given back, as it still has to wait.
    let mut copy = switchyard_tests::message("m-copy", &body, 1);
    let mut due = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
    due.data_type = Some("Number".into());
    due.string_value = Some((Utc::now().timestamp_millis() - 1_000).to_string());
    copy.message_attributes.insert(NOT_BEFORE_ATTR.into(), due);
    stack.emulator.take_usage().await.unwrap();
    run(copy).await;
    let again = stack.emulator.take_usage().await.unwrap();
    assert!(key_writes(&again) >= 2.0, "{:?}", again.write_units);
    assert_eq!(stack.sandbox.ledger().len(), 0);
    stack.stop();
}

/// A stack whose Zendesk budget is one call an hour, with that hour's slot just taken (at the
/// returned µs): nothing is free within act's horizon. act's deps hand copies back to a queue
/// nobody polls, so they stay put. One act message for `ticket`, event `event_id`.
async fn an_hour_spent(
    ticket: u64,
    event_id: &str,
) -> (LocalStack, switchyard::handlers::act::Act, i64, String) {
    use switchyard::handlers::act::Act;
    use switchyard::pacing::{Admission, IN_FUNCTION_WAIT};
    let limits = [("RateLimits".to_owned(), "zendesk=1/hour".to_owned())];
    let stack = LocalStack::start_hosting(&limits, &["classify", "act"])
        .await
        .unwrap();
    stack.sandbox.seed_zendesk_ticket(ticket, "Refund");
    let f = stack.template.function("act").unwrap();
    let env = stack.provisioned.function_env(&stack.template, f).unwrap();
    let mut deps =
        Act::from_settings(&stack.aws, &switchyard::settings::Settings::from_map(env)).unwrap();
    deps.act_queue_url = stack.provisioned.queue_url("ActDLQ").unwrap().to_owned();
    let secret_id = stack.provisioned.refs["ZendeskConnectionSecret"].clone();
    let now = Utc::now().timestamp_micros();
    let slot = deps
        .pacer
        .reserve("zendesk", &secret_id, None, now, IN_FUNCTION_WAIT)
        .await
        .unwrap();
    assert_eq!(slot, Admission::Go { at_us: now });
    let body = serde_json::json!({
        "event": {"id": event_id, "source": "zendesk", "event_type": "zen:event-type:ticket.created",
                  "delivery_id": format!("d-{event_id}"), "object_id": ticket.to_string(), "subject": "Refund",
                  "text": null, "requester": null, "occurred_at": null, "received_at": "2026-12-04T10:31:00Z", "raw": {}},
        "category": "billing", "confidence": 0.9,
        "actions": [{"connector": "zendesk", "action": "update_ticket", "params": {"ticket_id": ticket.to_string(), "comment": "routed"}}]
    })
    .to_string();
    (stack, deps, now, body)
}
