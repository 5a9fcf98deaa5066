//! The waits act asks SQS for, at their real lengths, on the emulator's SQS clock (moved forward
//! by the test, `Emulator::advance_sqs_clock`) instead of settings set to zero: an unknown outcome
//! is looked at again 30 s later, its third one goes to a human, and parked work comes back every
//! 15 minutes.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use switchyard::handlers::act::{handler as act, Act, UNKNOWN_OUTCOMES_ATTR};
use switchyard_infra::sandbox::faults::Fault;
use switchyard_infra::stack::LocalStack;
use switchyard_tests::{act_body, message, parked_act};

async fn run(deps: &Act, m: SqsMessage) {
    let mut batch = SqsEvent::default();
    batch.records = vec![m];
    let resp = act(deps, LambdaEvent::new(batch, Context::default()))
        .await
        .unwrap();
    assert!(
        resp.batch_item_failures.is_empty(),
        "handed back, not failed"
    );
}

/// What the parking queue holds for a receive now: the bodies of the messages due.
async fn due(stack: &LocalStack, parking: &str) -> Vec<aws_sdk_sqs::types::Message> {
    stack
        .aws
        .sqs
        .receive_message()
        .queue_url(parking)
        .message_attribute_names("All")
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

fn create_ticket(event: &str) -> String {
    act_body(
        event,
        "zendesk",
        "create_ticket",
        json!({"subject": "Checkout is down", "comment": "Reported in Slack"}),
    )
}

fn with_unknowns(m: &mut SqsMessage, seen: i64) {
    let mut a = SqsMessageAttribute::default();
    a.string_value = Some(seen.to_string());
    a.data_type = Some("Number".into());
    m.message_attributes.insert(UNKNOWN_OUTCOMES_ATTR.into(), a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_outcome_is_looked_at_again_30_seconds_later() {
    let stack = LocalStack::start().await.unwrap();
    let (deps, parking) = parked_act(&stack);
    assert_eq!(deps.outcome_check_delay, Duration::from_secs(30));
    stack.sandbox.inject("zendesk", Fault::LostAnswer, 1);
    run(&deps, message("m-1", &create_ticket("ev-delay"), 1)).await;

    assert!(due(&stack, &parking).await.is_empty(), "not at once");
    stack
        .emulator
        .advance_sqs_clock(Duration::from_secs(28))
        .await
        .unwrap();
    assert!(due(&stack, &parking).await.is_empty(), "not after 28 s");
    stack
        .emulator
        .advance_sqs_clock(Duration::from_secs(3))
        .await
        .unwrap();
    let back = due(&stack, &parking).await;
    assert_eq!(back.len(), 1, "due after 31 s");
    let seen = &back[0].message_attributes.as_ref().unwrap()[UNKNOWN_OUTCOMES_ATTR];
    assert_eq!(seen.string_value.as_deref(), Some("1"));
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_unknown_outcome_goes_to_a_human_not_round_again() {
    let stack = LocalStack::start().await.unwrap();
    let (deps, parking) = parked_act(&stack);
    // Two actions whose answers were lost before: once, and twice.
    stack.sandbox.inject("zendesk", Fault::LostAnswer, 2);
    let mut second = message("m-2nd", &create_ticket("ev-second"), 1);
    with_unknowns(&mut second, 1);
    run(&deps, second).await;
    let mut third = message("m-3rd", &create_ticket("ev-third"), 1);
    with_unknowns(&mut third, 2);
    run(&deps, third).await;

    let record = |id: &'static str| {
        let decisions = deps.decisions.clone();
        async move { decisions.get(id).await.unwrap().unwrap() }
    };
    let waiting = record("ev-second").await;
    assert_eq!(waiting.status, "waiting", "{waiting:?}");
    let human = record("ev-third").await;
    assert_eq!(human.status, "in_review", "{human:?}");
    let reason = human.reason.unwrap();
    assert!(reason.contains("no answer 3 times"), "{reason}");
    // Only the second comes round again, 30 s later, counting its second unknown outcome.
    stack
        .emulator
        .advance_sqs_clock(Duration::from_secs(31))
        .await
        .unwrap();
    let back = due(&stack, &parking).await;
    assert_eq!(back.len(), 1);
    assert!(back[0].body.as_deref().unwrap().contains("ev-second"));
    let seen = &back[0].message_attributes.as_ref().unwrap()[UNKNOWN_OUTCOMES_ATTR];
    assert_eq!(seen.string_value.as_deref(), Some("2"));
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_work_comes_back_every_15_minutes() {
    let stack = LocalStack::start().await.unwrap();
    switchyard_tests::revoke_slack(&stack).await;
    let (deps, parking) = parked_act(&stack);
    let body = act_body(
        "ev-parked",
        "slack",
        "post_message",
        json!({"channel": "#incidents", "text": "Possible outage"}),
    );
    run(&deps, message("m-park", &body, 1)).await;
    let record = deps.decisions.get("ev-parked").await.unwrap().unwrap();
    assert_eq!(record.status, "parked", "{record:?}");

    // SQS's longest delay is 15 minutes (900 s): due then, not before.
    stack
        .emulator
        .advance_sqs_clock(Duration::from_secs(895))
        .await
        .unwrap();
    assert!(due(&stack, &parking).await.is_empty(), "not after 895 s");
    stack
        .emulator
        .advance_sqs_clock(Duration::from_secs(6))
        .await
        .unwrap();
    let back = due(&stack, &parking).await;
    assert_eq!(back.len(), 1, "due after 901 s");
    assert!(back[0].body.as_deref().unwrap().contains("ev-parked"));
    stack.stop();
}
