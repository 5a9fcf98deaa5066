//! A run's last action is completed by the outcome write act makes anyway — the event's record —
//! not on the action's key as well (one write less per event). A key found in progress, or taken
//! over from a holder that ran out of time, is looked up on the record before the vendor is
//! called; a review notice done there is not the act route's action.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use switchyard::handlers::act::handler as act;
use switchyard_infra::stack::LocalStack;
use switchyard_tests::{act_body, message, parked_act};

fn batch(id: &str, body: &str, receive_count: u32) -> LambdaEvent<SqsEvent> {
    let mut b = SqsEvent::default();
    b.records = vec![message(id, body, receive_count)];
    LambdaEvent::new(b, Context::default())
}

fn posts(stack: &LocalStack) -> usize {
    let ledger = stack.sandbox.ledger();
    ledger
        .iter()
        .filter(|e| e.operation == "chat.postMessage")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_completion_is_on_the_record_and_a_redelivery_reads_it_there() {
    let stack = LocalStack::start().await.unwrap();
    let (deps, _) = parked_act(&stack);
    let body = act_body(
        "ev-last",
        "slack",
        "post_message",
        json!({"channel": "#incidents", "text": "Possible outage"}),
    );
    stack.emulator.take_usage().await.unwrap();
    let answer = act(&deps, batch("m-last", &body, 1)).await.unwrap();
    assert!(answer.batch_item_failures.is_empty());
    let usage = stack.emulator.take_usage().await.unwrap();
    assert_eq!(posts(&stack), 1);
    assert_eq!(
        usage.write_units.get("IdempotencyTable PutItem"),
        Some(&1.0),
        "the claim: {:?}",
        usage.write_units
    );
    assert!(
        !usage
            .write_units
            .contains_key("IdempotencyTable UpdateItem"),
        "no completion on the key: {:?}",
        usage.write_units
    );

    // The redelivery finds the key still held (until the first run's deadline), reads the record
    // and does not post again.
    let answer = act(&deps, batch("m-last", &body, 2)).await.unwrap();
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert_eq!(posts(&stack), 1, "posted twice");
    let r = deps.decisions.get("ev-last").await.unwrap().unwrap();
    assert_eq!(r.status, "done");
    let last = r.attempts.last().unwrap();
    assert_eq!(last["status"], "already_done", "{:?}", r.attempts);
    assert!(last["result"]["object_id"].is_string(), "{last:?}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_notice_on_the_record_is_not_the_act_routes_action() {
    let stack = LocalStack::start().await.unwrap();
    let (deps, _) = parked_act(&stack);
    let params = json!({"channel": "#incidents", "text": "Possible outage"});
    // The review route's notice: the same action at the same index, done first.
    let mut notice: serde_json::Value = serde_json::from_str(&act_body(
        "ev-both",
        "slack",
        "post_message",
        params.clone(),
    ))
    .unwrap();
    notice["review_reason"] = json!("confidence below the threshold");
    act(&deps, batch("m-notice", &notice.to_string(), 1))
        .await
        .unwrap();
    assert_eq!(posts(&stack), 1);
    let r = deps.decisions.get("ev-both").await.unwrap().unwrap();
    assert_eq!(r.attempts[0]["stage"], "review", "{:?}", r.attempts);

    // A human sends it to the act route; the worker that claimed its action died before calling.
    let body = act_body("ev-both", "slack", "post_message", params);
    let action: serde_json::Value =
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["actions"][0].clone();
    let hash = switchyard::idempotency::payload_hash(&serde_json::to_vec(&action).unwrap());
    let now = chrono::Utc::now();
    deps.idempotency
        .claim("act#ev-both#0", &hash, now, now.timestamp_millis() - 1)
        .await
        .unwrap();
    let answer = act(&deps, batch("m-act", &body, 2)).await.unwrap();
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert_eq!(posts(&stack), 2, "the act route's post was taken for done");
    stack.stop();
}
