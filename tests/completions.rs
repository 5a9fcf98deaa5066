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

/// A key taken over from a worker that died after Slack posted, then given back before anyone
/// could look (the lookup itself failed), keeps its doubt: the next copy of the work, one that
/// knows nothing of the takeover (the original redelivered after a crash, a second plan), looks
/// first and finds the post. Deleted, the key let such a copy post blind: the soak's duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_given_back_in_doubt_makes_the_next_copy_look_before_it_acts() {
    use switchyard::idempotency::payload_hash;
    use switchyard_infra::sandbox::faults::Fault;
    let stack = LocalStack::start().await.unwrap();
    let (deps, _) = parked_act(&stack);
    let params = json!({"channel": "#incidents", "text": "Possible outage"});
    let body = act_body("ev-doubt", "slack", "post_message", params);
    let planned: switchyard::routing::ActMessage = serde_json::from_str(&body).unwrap();
    let action = &planned.actions[0];
    let key = "act#ev-doubt#0";
    // The dead worker: it claimed the key (its hold has ended since) and Slack made its post.
    let hash = payload_hash(&serde_json::to_vec(action).unwrap());
    let now = chrono::Utc::now();
    deps.idempotency
        .claim(key, &hash, now, now.timestamp_millis() - 1)
        .await
        .unwrap();
    let slack = deps.connectors.get("slack").await.unwrap();
    slack.perform(action, key).await.unwrap();
    assert_eq!(posts(&stack), 1);

    // Its redelivery takes the key over and cannot look: Slack answers 502 until it gives up.
    stack.sandbox.inject("slack", Fault::ServerError(502), 3);
    let resp = act(&deps, batch("m-redelivered", &body, 2)).await.unwrap();
    assert_eq!(resp.batch_item_failures.len(), 1, "SQS retries it");
    stack.sandbox.clear_faults("slack");
    assert_eq!(posts(&stack), 1);

    // A copy on its first receive, with no attribute saying the effect may exist.
    let resp = act(&deps, batch("m-second-plan", &body, 1)).await.unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(
        posts(&stack),
        1,
        "found in the channel's history, not posted again"
    );
    let record = deps.decisions.get("ev-doubt").await.unwrap().unwrap();
    assert_eq!(record.status, "done", "{record:?}");
    assert!(
        record
            .results
            .as_deref()
            .unwrap()
            .contains("already posted"),
        "{record:?}"
    );
    stack.stop();
}
