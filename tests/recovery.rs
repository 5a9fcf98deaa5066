//! Recovery tools on the emulator: `switchyard redrive` moves dead-lettered work back, filtered,
//! with a dry run, and can be rerun without repeating anything.

use std::time::Duration;

use serde_json::json;
use switchyard_infra::redrive::{Filter, Redrive};
use switchyard_infra::stack::LocalStack;
use switchyard_tests::{act_body, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_moves_only_what_the_filter_names_and_a_rerun_repeats_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let sqs = stack.aws.sqs.clone();
    let dlq = stack.provisioned.queue_url("ActDLQ").unwrap().to_owned();
    let act_queue = stack.provisioned.queue_url("ActQueue").unwrap().to_owned();
    // Two dead-lettered act messages, as the queue leaves them after maxReceiveCount.
    let slack = act_body(
        "ev-redrive-slack",
        "slack",
        "post_message",
        json!({"channel": "#incidents", "text": "Possible outage"}),
    );
    let jira = act_body(
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

async fn in_review(stack: &LocalStack, event_id: &str) {
    let decisions = stack.decisions().unwrap();
    wait_for("the event to reach review", Duration::from_secs(30), || {
        let decisions = decisions.clone();
        async move {
            let r = decisions.get(event_id).await.ok()??;
            (r.status == "in_review").then_some(())
        }
    })
    .await;
}

/// The review inbox: reading it receives nothing (so it cannot dead-letter an item), resolving
/// as a category acts once through the route, dismissing closes the item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_works_the_review_inbox_without_dead_lettering_by_looking() {
    use switchyard_infra::review::{waiting, Resolution, Review};
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for (delivery, text) in [
        ("EvRev1", "the page looks odd to me"),
        ("EvRev2", "hello there"),
    ] {
        let hook = switchyard_infra::fixtures::slack_message(
            &stack.signing.slack,
            delivery,
            "C0SUPPORT",
            text,
            chrono::Utc::now(),
        );
        let (status, body) = hook.send(&http, &stack.webhook_base).await.unwrap();
        assert_eq!(status, 202, "{body}");
        ids.push(body["event_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        in_review(&stack, id).await;
    }
    let decisions = stack.decisions().unwrap();
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    for _ in 0..8 {
        let items = waiting(&decisions, since).await.unwrap();
        let listed: Vec<&str> = items.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(ids.iter().all(|id| listed.contains(&id.as_str())));
    }
    // Eight looks later, no message has been received once.
    let attrs = stack
        .aws
        .sqs
        .get_queue_attributes()
        .queue_url(stack.provisioned.queue_url("ReviewQueue").unwrap())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(
        attrs[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages],
        "2"
    );

    // The review route told a human about each, once.
    wait_for("both review notices", Duration::from_secs(20), || async {
        (stack.sandbox.ledger().len() == 2).then_some(())
    })
    .await;
    let review = Review {
        sqs: stack.aws.sqs.clone(),
        decisions: decisions.clone(),
        review_queue_url: stack.provisioned.queue_url("ReviewQueue").unwrap().into(),
        act_queue_url: stack.provisioned.queue_url("ActQueue").unwrap().into(),
        routing: switchyard::routing::RoutingConfig::load(switchyard::routing::DEFAULT_CONFIG)
            .unwrap(),
        operator: "ops-amy".into(),
    };
    let unknown = review
        .resolve(
            &ids[0],
            &Resolution::Act {
                category: "weather".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown category"),
        "{unknown}"
    );
    let done = review
        .resolve(
            &ids[0],
            &Resolution::Act {
                category: "outage".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (done.removed, done.actions.as_slice()),
        (1, ["slack.post_message".to_owned()].as_slice())
    );
    let post = wait_for(
        "the resolved event's action",
        Duration::from_secs(20),
        || async {
            let l = stack.sandbox.ledger();
            l.into_iter().find(|e| e.object_id != "C0REVIEW")
        },
    )
    .await;
    assert_eq!(
        (post.operation.as_str(), post.object_id.as_str()),
        ("chat.postMessage", "C0INCIDENTS")
    );
    wait_for(
        "the resolved event to be done",
        Duration::from_secs(20),
        || {
            let decisions = decisions.clone();
            let id = ids[0].clone();
            async move { (decisions.get(&id).await.ok()??.status == "done").then_some(()) }
        },
    )
    .await;

    let dismissed = review
        .resolve(
            &ids[1],
            &Resolution::Dismiss {
                note: "spam".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(dismissed.removed, 1);
    let r = decisions.get(&ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.reason.as_deref()),
        ("resolved", Some("dismissed by ops-amy: spam"))
    );
    assert!(waiting(&decisions, since).await.unwrap().is_empty());
    assert_eq!(stack.queue_depth("ReviewQueue").await.unwrap(), 0);
    let again = review
        .resolve(
            &ids[1],
            &Resolution::Dismiss {
                note: "twice".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        again
            .to_string()
            .contains("already decided: dismissed by ops-amy via cli"),
        "{again}"
    );
    stack.stop();
}

/// Replay after the cause is fixed: the action failed (the ticket did not exist) and the event
/// went to review; once the ticket exists, a replay under the same keys does the work once, a
/// second replay repeats nothing, and `--as-new` says what it will repeat and then does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_finishes_work_under_the_same_keys_and_as_new_repeats_it() {
    use switchyard_infra::replay::{Replay, Stage};
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let hook = switchyard_infra::fixtures::zendesk_ticket_created(
        &stack.signing.zendesk,
        "01HXREPLAY000000000000000",
        35499,
        "Refund for a double charge",
        "My card was charged twice for the March invoice; please refund one payment.",
        chrono::Utc::now(),
    );
    let (status, body) = hook.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let id = body["event_id"].as_str().unwrap().to_owned();
    in_review(&stack, &id).await;
    let updates = || {
        stack
            .sandbox
            .ledger()
            .into_iter()
            .filter(|e| e.operation == "update_ticket" && e.object_id == "35499")
            .count()
    };
    assert_eq!(updates(), 0);

    stack
        .sandbox
        .seed_zendesk_ticket(35499, "Refund for a double charge");
    let p = &stack.provisioned;
    let replay = Replay {
        sqs: stack.aws.sqs.clone(),
        decisions: stack.decisions().unwrap(),
        classify_queue_url: p.queue_url("ClassifyQueue").unwrap().into(),
        act_queue_url: p.queue_url("ActQueue").unwrap().into(),
        review_queue_url: p.queue_url("ReviewQueue").unwrap().into(),
        routing: switchyard::routing::RoutingConfig::load(switchyard::routing::DEFAULT_CONFIG)
            .unwrap(),
    };
    let decisions = stack.decisions().unwrap();
    let done =
        |id: String| {
            let decisions = decisions.clone();
            async move {
                wait_for("the replayed event to be done", Duration::from_secs(20), || {
                let (decisions, id) = (decisions.clone(), id.clone());
                async move { (decisions.get(&id).await.ok()??.status == "done").then_some(()) }
            })
            .await
            }
        };
    let plan = replay.plan(&id, Stage::Act, false).await.unwrap();
    assert_eq!(
        (plan.found_in.as_str(), plan.runs_as.as_str()),
        ("ReviewQueue", id.as_str())
    );
    assert!(
        plan.to_string()
            .contains("actions already done are skipped"),
        "{plan}"
    );
    replay.run(&plan).await.unwrap();
    done(id.clone()).await;
    assert_eq!(updates(), 1);

    // Again, same keys: nothing repeats.
    let again = replay.plan(&id, Stage::Act, false).await.unwrap();
    replay.run(&again).await.unwrap();
    wait_for(
        "the act queue to drain",
        Duration::from_secs(20),
        || async { (stack.queue_depth("ActQueue").await.ok()? == 0).then_some(()) },
    )
    .await;
    assert_eq!(updates(), 1);

    let fresh = replay.plan(&id, Stage::Act, true).await.unwrap();
    assert_ne!(fresh.runs_as, id);
    assert_eq!(fresh.repeats, ["zendesk.update_ticket"]);
    assert!(
        fresh
            .to_string()
            .contains("run again even if done before: zendesk.update_ticket"),
        "{fresh}"
    );
    replay.run(&fresh).await.unwrap();
    done(fresh.runs_as.clone()).await;
    assert_eq!(updates(), 2);
    stack.stop();
}
