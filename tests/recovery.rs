//! Recovery tools on the emulator: `switchyard redrive` moves dead-lettered work back, filtered,
//! with a dry run, and can be rerun without repeating anything.

use std::time::Duration;

use serde_json::json;
use switchyard_infra::redrive::{Filter, Redrive};
use switchyard_infra::stack::LocalStack;
use switchyard_tests::wait_for;

fn act_message(event_id: &str, connector: &str, action: &str, params: serde_json::Value) -> String {
    json!({
        "event": {"id": event_id, "source": "slack", "event_type": "message", "delivery_id": event_id,
                  "object_id": null, "subject": "Checkout is down", "text": null, "requester": null,
                  "occurred_at": null, "received_at": "2026-11-30T10:31:00Z", "raw": {}},
        "category": "outage", "confidence": 0.9,
        "actions": [{"connector": connector, "action": action, "params": params}]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_moves_only_what_the_filter_names_and_a_rerun_repeats_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let sqs = stack.aws.sqs.clone();
    let dlq = stack.provisioned.queue_url("ActDLQ").unwrap().to_owned();
    let act_queue = stack.provisioned.queue_url("ActQueue").unwrap().to_owned();
    // Two dead-lettered act messages, as the queue leaves them after maxReceiveCount.
    let slack = act_message(
        "ev-redrive-slack",
        "slack",
        "post_message",
        json!({"channel": "#incidents", "text": "Possible outage"}),
    );
    let jira = act_message(
        "ev-redrive-jira",
        "jira",
        "comment",
        json!({"issue": "OPS-1", "body": "seen again"}),
    );
    for body in [&slack, &jira] {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(body.as_str())
            .message_attributes(
                switchyard::CORRELATION_ATTR,
                switchyard_infra::redrive::correlation("corr-redrive"),
            )
            .send()
            .await
            .unwrap();
    }
    let redrive = |dry_run: bool| Redrive {
        sqs: sqs.clone(),
        queue_url: act_queue.clone(),
        filters: vec!["connector=slack".parse::<Filter>().unwrap()],
        dry_run,
        max: None,
        rate: Some(50.0),
    };

    let dry = redrive(true).run(&|_| {}).await.unwrap();
    assert_eq!(
        (dry.examined, dry.matched, dry.moved, dry.left),
        (2, 1, 0, 2)
    );
    assert!(stack.sandbox.ledger().is_empty());
    // A dry run leaves both visible at once, not hidden for the hold time.
    assert_eq!(stack.queue_depth("ActDLQ").await.unwrap(), 2);

    let moved = redrive(false).run(&|_| {}).await.unwrap();
    assert_eq!((moved.matched, moved.moved, moved.left), (1, 1, 1));
    let ledger = wait_for("the redriven post", Duration::from_secs(20), || async {
        let l = stack.sandbox.ledger();
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert_eq!(ledger[0].operation, "chat.postMessage", "{ledger:?}");
    let decisions = stack.decisions().unwrap();
    wait_for(
        "the redriven event to be done",
        Duration::from_secs(20),
        || {
            let decisions = decisions.clone();
            async move {
                let r = decisions.get("ev-redrive-slack").await.ok()??;
                (r.status == "done").then_some(())
            }
        },
    )
    .await;

    // Rerun, and even send the same message round again: nothing repeats.
    let again = redrive(false).run(&|_| {}).await.unwrap();
    assert_eq!((again.matched, again.moved, again.left), (0, 0, 1));
    sqs.send_message()
        .queue_url(&act_queue)
        .message_body(slack.as_str())
        .send()
        .await
        .unwrap();
    wait_for(
        "the act queue to drain",
        Duration::from_secs(20),
        || async { (stack.queue_depth("ActQueue").await.ok()? == 0).then_some(()) },
    )
    .await;
    assert_eq!(stack.sandbox.ledger().len(), 1);
    assert_eq!(stack.queue_depth("ActDLQ").await.unwrap(), 1);
    stack.stop();
}
