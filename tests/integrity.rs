//! Nothing lost, nothing twice (#14): the holes a reading of the code found, each shown closed on
//! the emulator and the sandbox.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use switchyard::decisions::DecisionStore;
use switchyard::handlers::classify::{handler as classify, Classify};
use switchyard_infra::fixtures;
use switchyard_infra::stack::LocalStack;
use switchyard_tests::{
    act_body, classify_deps, handed_back, message, parked_act, settled, settled_within,
};

/// The vendor retries after intake lost its claim (the enqueue went through, then the record
/// that held the claim was lost): intake takes the retry for new, and it is the same event, so its
/// action keys are the same and the ticket is commented once. The record held the action's
/// completion too (a run's last one is written there), so the retry finds the key held by the
/// first run: act hands it back until that hold ends (act's timeout, 90 s), then looks at
/// Zendesk before commenting and finds the comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_intake_lost_its_claim_is_the_same_event_and_acts_once() {
    let stack = LocalStack::start().await.unwrap();
    stack
        .sandbox
        .seed_zendesk_ticket(35436, "Refund for a double charge");
    let http = reqwest::Client::new();
    let hook = fixtures::zendesk_ticket_created(
        &stack.signing.zendesk,
        "01HXRETRY0000000000000000",
        35436,
        "Refund for a double charge",
        "My card was charged twice for the March invoice; please refund one payment.",
        Utc::now(),
    );
    let (status, first) = hook.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 202, "{first}");
    let event_id = first["event_id"].as_str().unwrap().to_owned();
    let record = settled(&stack, &event_id).await;
    assert_eq!(record.status, "done", "{record:?}");
    let effects = stack.sandbox.ledger().len();
    assert_eq!(effects, 1, "{:?}", stack.sandbox.ledger());

    stack
        .aws
        .ddb
        .delete_item()
        .table_name(&stack.provisioned.refs["DecisionsTable"])
        .key(
            "event_id",
            aws_sdk_dynamodb::types::AttributeValue::S(event_id.clone()),
        )
        .send()
        .await
        .unwrap();
    let (status, again) = hook.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["event_id"].as_str(), Some(event_id.as_str()));
    let record = settled_within(&stack, &event_id, Duration::from_secs(150)).await;
    assert_eq!(record.status, "done", "{record:?}");
    assert_eq!(record.attempts.last().unwrap()["status"], "done");
    let looked = record.attempts.last().unwrap()["detail"].to_string();
    assert!(looked.contains("already"), "{record:?}");
    assert_eq!(
        stack.sandbox.ledger().len(),
        1,
        "{:?}",
        stack.sandbox.ledger()
    );
    stack.stop();
}

/// Signed, verified, and still nothing a later stage could read: refused with a 4xx before
/// anything is claimed or queued (not 202 and then a DLQ, not 503 until the vendor gives up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_refuses_what_classify_or_act_could_not_read() {
    let stack = LocalStack::start().await.unwrap();
    stack
        .sandbox
        .seed_zendesk_ticket(35436, "Refund for a double charge");
    let http = reqwest::Client::new();
    let sign = |delivery: &str, description: &str, extra: Value| {
        let mut hook = fixtures::zendesk_ticket_created(
            &stack.signing.zendesk,
            delivery,
            35436,
            "Refund for a double charge",
            description,
            Utc::now(),
        );
        let mut body: Value = serde_json::from_str(&hook.body).unwrap();
        body["detail"]["custom"] = extra;
        fixtures::resign_zendesk(&mut hook, &stack.signing.zendesk, body.to_string());
        hook
    };
    let nested = |levels: usize| -> Value {
        let text = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        serde_json::from_str(&text).unwrap()
    };
    // What was enqueued is counted from the requests the emulator served: classify drains its
    // queue, so an empty queue afterwards would prove nothing.
    stack.emulator.take_requests().await.unwrap();
    // 3 levels of envelope + 120: under serde_json's 128, over what the stage messages can wrap.
    let (status, body) = sign("01HXDEEP", "refund please", nested(120))
        .send(&http, &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("levels deep"),
        "{body}"
    );
    // A 150 KiB description: the body is under intake's 256 KiB cap, the queued event (payload
    // plus the text drawn from it) is not under SQS's.
    let long = "refund ".repeat(150 * 1024 / 7);
    let (status, body) = sign("01HXLARGE", &long, json!(null))
        .send(&http, &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("once normalized"),
        "{body}"
    );
    let served = stack.emulator.take_requests().await.unwrap();
    assert_eq!(served.get("sqs.SendMessage"), None, "{served:?}");

    // Just inside both limits: accepted, and it gets all the way through.
    let (status, body) = sign("01HXOK", &"refund ".repeat(60 * 1024 / 7), nested(90))
        .send(&http, &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let record = settled(&stack, body["event_id"].as_str().unwrap()).await;
    assert_ne!(record.status, "failed", "{record:?}");
    for q in ["ClassifyDLQ", "ActDLQ"] {
        assert_eq!(stack.queue_depth(q).await.unwrap(), 0, "{q}");
    }
    stack.stop();
}

/// Intake's claim on a delivery is its event's decision record: one caller queues it; another
/// inside the claim's window is told it is in progress; another body under the same id is
/// refused; a claim past its window is taken over, a released one at once; once queued, every
/// redelivery is a duplicate, until the record's retention ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_claimed_on_its_decision_record() {
    use switchyard::idempotency::Claim;
    let stack = LocalStack::start().await.unwrap();
    let store = DecisionStore::new(
        stack.aws.ddb.clone(),
        &stack.provisioned.refs["DecisionsTable"],
    );
    let event: switchyard::event::Event = serde_json::from_value(json!({
        "id": "ev-claim", "source": "zendesk", "event_type": "zen:event-type:ticket.created",
        "delivery_id": "d-claim", "object_id": "1", "subject": "Refund", "text": null,
        "requester": null, "occurred_at": null, "received_at": "2026-12-05T10:00:00Z", "raw": {}
    }))
    .unwrap();
    let now = Utc::now();
    let window = |at: chrono::DateTime<Utc>| at.timestamp_millis() + 10_000;
    let claim = |corr: &'static str, hash: &'static str, at: chrono::DateTime<Utc>| {
        let (store, event) = (&store, &event);
        async move {
            store
                .claim_delivery(event, corr, hash, at, window(at))
                .await
                .unwrap()
        }
    };
    assert_eq!(claim("c1", "h1", now).await, Claim::Claimed);
    assert_eq!(claim("c2", "h1", now).await, Claim::InProgress);
    assert_eq!(claim("c2", "h2", now).await, Claim::PayloadMismatch);
    let record = store.get("ev-claim").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.correlation_id.as_str()),
        ("accepted", "c1")
    );

    let later = now + chrono::Duration::seconds(11);
    assert_eq!(claim("c3", "h1", later).await, Claim::Reclaimed);
    assert_eq!(claim("c3", "h1", later).await, Claim::InProgress);
    store.release_delivery("ev-claim").await.unwrap();
    assert_eq!(claim("c4", "h1", later).await, Claim::Reclaimed);

    // Queued: from now on a duplicate, even long after the claim's window; and a late release
    // does not reopen it.
    store.mark_queued("ev-claim", later).await.unwrap();
    let much_later = later + chrono::Duration::hours(1);
    let done = Claim::Completed {
        data: Some("ev-claim".into()),
    };
    assert_eq!(claim("c5", "h1", much_later).await, done);
    store.release_delivery("ev-claim").await.unwrap();
    assert_eq!(claim("c5", "h1", much_later).await, done);
    assert_eq!(claim("c5", "h2", much_later).await, Claim::PayloadMismatch);

    // Past the record's retention (before DynamoDB's TTL removed it): claimed afresh.
    let expired = now + store.retention() + chrono::Duration::days(1);
    assert_eq!(claim("c6", "h2", expired).await, Claim::Claimed);
    let record = store.get("ev-claim").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.correlation_id.as_str()),
        ("accepted", "c6")
    );
    stack.stop();
}

/// classify answers once per event: a retry or a second delivery follows the recorded decision,
/// even if the classifier would now answer differently (an LLM may), and never moves an event
/// back from `done` to `planned`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_answers_once_per_event_and_a_retry_reuses_the_answer() {
    let stack = LocalStack::start().await.unwrap();
    let p = &stack.provisioned;
    // Nobody polls ActDLQ here, so what classify sent can be counted.
    let deps = |config: &str| classify_deps(&stack, config, p.queue_url("ActDLQ").unwrap());
    let event = json!({
        "id": "ev-once", "source": "jira", "event_type": "jira:issue_created", "delivery_id": "d1",
        "object_id": "OPS-1", "subject": "Checkout down with 500 errors", "text": null, "requester": null,
        "occurred_at": null, "received_at": "2026-11-30T10:31:00Z", "raw": {}
    })
    .to_string();
    let run = |deps: Classify, receive_count: u32| {
        let event = event.clone();
        async move {
            let mut batch = SqsEvent::default();
            batch.records = vec![message("m-once", &event, receive_count)];
            let resp = classify(&deps, LambdaEvent::new(batch, Context::default()))
                .await
                .unwrap();
            assert!(resp.batch_item_failures.is_empty());
        }
    };
    run(deps(switchyard::routing::DEFAULT_CONFIG), 1).await;
    let store = deps(switchyard::routing::DEFAULT_CONFIG).decisions;
    let first = store.get("ev-once").await.unwrap().unwrap();
    assert_eq!(
        (first.category.as_str(), first.path.as_str()),
        ("outage", "act")
    );

    // Act finishes the event; then classify sees it again, under a classifier that would now
    // send everything to review: once as a duplicate first delivery, once as a redelivery.
    store
        .record_outcome("ev-once", "done", &[], None, Utc::now())
        .await
        .unwrap();
    // The classifier now sees no outage words (as an LLM may answer differently on a retry).
    let unsure = switchyard::routing::DEFAULT_CONFIG.replacen(
        r#"keywords = ["down", "outage", "500", "error", "timeout", "unavailable", "broken"]"#,
        "keywords = []",
        1,
    );
    assert_ne!(unsure, switchyard::routing::DEFAULT_CONFIG);
    run(deps(&unsure), 1).await;
    run(deps(&unsure), 2).await;

    let after = store.get("ev-once").await.unwrap().unwrap();
    assert_eq!(
        (after.path.as_str(), after.status.as_str(), after.decided_at),
        ("act", "done", first.decided_at)
    );
    assert_eq!(stack.queue_depth("ReviewDLQ").await.unwrap(), 0);
    let out = stack
        .aws
        .sqs
        .receive_message()
        .queue_url(p.queue_url("ActDLQ").unwrap())
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let plans: Vec<Value> = out
        .messages
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str(m.body.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(plans.len(), 3);
    assert!(plans.iter().all(|p| p == &plans[0]), "{plans:?}");
    stack.stop();
}

/// act looks at its deadline: with too little time left for the worst case of an action it
/// starts nothing and hands the message back (no receive charged, nothing cut off mid-call);
/// the next invocation does the work, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act_hands_work_back_before_its_deadline_instead_of_timing_out() {
    use switchyard::handlers::act::{handler as act, Act, ACTION_START_NEEDS};
    let stack = LocalStack::start().await.unwrap();
    let (deps, parking) = parked_act(&stack);
    let body = act_body(
        "ev-deadline",
        "slack",
        "post_message",
        json!({"channel": "#incidents", "text": "Possible outage"}),
    );
    let run = |deps: Act, body: String, left: chrono::Duration| async move {
        let mut ctx = Context::default();
        ctx.deadline = (Utc::now() + left).timestamp_millis() as u64;
        let mut batch = SqsEvent::default();
        batch.records = vec![message("m-deadline", &body, 1)];
        let resp = act(&deps, LambdaEvent::new(batch, ctx)).await.unwrap();
        assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    };
    let short =
        chrono::Duration::from_std(ACTION_START_NEEDS).unwrap() - chrono::Duration::seconds(5);
    run(deps.clone(), body.clone(), short).await;
    assert!(stack.sandbox.ledger().is_empty());
    let record = deps.decisions.get("ev-deadline").await.unwrap().unwrap();
    assert_eq!(record.status, "waiting");
    assert!(record.reason.unwrap().contains("deadline"));
    let out = stack
        .aws
        .sqs
        .receive_message()
        .queue_url(&parking)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let again = out.messages.unwrap_or_default();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body.as_deref(), Some(body.as_str()));

    run(deps.clone(), body, chrono::Duration::seconds(90)).await;
    let ledger = stack.sandbox.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(
        deps.decisions
            .get("ev-deadline")
            .await
            .unwrap()
            .unwrap()
            .status,
        "done"
    );
    stack.stop();
}

/// Parking is bounded: work waiting for a reconnect longer than `MAX_PARK_DAYS` goes to a human
/// with the reason instead of cycling forever; younger parked work keeps waiting, carrying the
/// time it was first parked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_work_goes_to_a_human_after_max_park_days() {
    use switchyard::handlers::act::{handler as act, PARKED_SINCE_ATTR};
    let stack = LocalStack::start().await.unwrap();
    switchyard_tests::revoke_slack(&stack).await;
    let (deps, _) = parked_act(&stack);
    assert_eq!(
        deps.max_park,
        chrono::Duration::days(3),
        "the template's MaxParkDays"
    );
    let body = |id: &str| {
        act_body(
            id,
            "slack",
            "post_message",
            json!({"channel": "#incidents", "text": "Possible outage"}),
        )
    };
    let parked = |id: &str, since: Option<chrono::DateTime<Utc>>| {
        let mut m = message(id, &body(id), 1);
        if let Some(since) = since {
            let mut attr = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
            attr.string_value = Some(since.timestamp_millis().to_string());
            attr.data_type = Some("Number".into());
            m.message_attributes.insert(PARKED_SINCE_ATTR.into(), attr);
        }
        m
    };
    let mut batch = SqsEvent::default();
    batch.records = vec![
        parked("ev-park-new", None),
        parked("ev-park-old", Some(Utc::now() - chrono::Duration::days(4))),
    ];
    let resp = act(&deps, LambdaEvent::new(batch, Context::default()))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());

    let young = deps.decisions.get("ev-park-new").await.unwrap().unwrap();
    assert_eq!(young.status, "parked");
    // Parked work comes back every 15 minutes for days: each return replaces the record's note
    // and counts, never appends (the record stays one write unit, and under DynamoDB's 400 KB).
    for _ in 0..4 {
        let mut again = SqsEvent::default();
        again.records = vec![parked(
            "ev-park-new",
            Some(Utc::now() - chrono::Duration::hours(1)),
        )];
        act(&deps, LambdaEvent::new(again, Context::default()))
            .await
            .unwrap();
    }
    let young = deps.decisions.get("ev-park-new").await.unwrap().unwrap();
    // The first run's refused refresh is an attempt; the returns, which call nothing, are not.
    assert_eq!(young.attempts.len(), 1, "{:?}", young.attempts);
    assert_eq!(young.attempts[0]["status"], "failed");
    assert_eq!(young.held.get("parked slack"), Some(&4), "{:?}", young.held);
    assert_eq!(young.note.as_ref().unwrap()["action"], "slack.post_message");
    assert!(young.reason.as_deref().unwrap().contains("needs reconnect"));
    let old = deps.decisions.get("ev-park-old").await.unwrap().unwrap();
    assert_eq!(old.status, "in_review", "{old:?}");
    assert!(
        old.reason.as_deref().unwrap().contains("parked 4 day(s)"),
        "{:?}",
        old.reason
    );
    // Only the young one waits again (delayed 15 minutes), once per return.
    assert_eq!(stack.queue_depth("ActDLQ").await.unwrap(), 5);
    assert!(stack
        .sandbox
        .ledger()
        .iter()
        .all(|e| e.operation != "chat.postMessage"));
    stack.stop();
}

/// Zendesk creates the ticket, then its answer is lost (the client times out after sending).
/// act does not send the POST again at once: it hands the work back, and the next look finds the
/// ticket by its vendor-side key (`external_id`) — one ticket, recorded as already created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_is_lost_is_looked_up_not_repeated() {
    use switchyard::handlers::act::{handler as act, UNKNOWN_OUTCOMES_ATTR};
    use switchyard_infra::sandbox::faults::Fault;
    let stack = LocalStack::start().await.unwrap();
    let (mut deps, parking) = parked_act(&stack);
    deps.outcome_check_delay = Duration::ZERO;
    let body = act_body(
        "ev-lost",
        "zendesk",
        "create_ticket",
        json!({"subject": "Checkout is down", "comment": "Reported in Slack"}),
    );
    stack.sandbox.inject("zendesk", Fault::LostAnswer, 1);
    let mut batch = SqsEvent::default();
    batch.records = vec![message("m-lost", &body, 1)];
    let resp = act(&deps, LambdaEvent::new(batch, Context::default()))
        .await
        .unwrap();
    assert!(
        resp.batch_item_failures.is_empty(),
        "handed back, not failed"
    );
    let creates = || {
        stack
            .sandbox
            .ledger()
            .into_iter()
            .filter(|e| e.operation == "create_ticket")
            .count()
    };
    assert_eq!(creates(), 1, "Zendesk made the ticket");
    let record = deps.decisions.get("ev-lost").await.unwrap().unwrap();
    assert_eq!(record.status, "waiting");
    assert!(record
        .reason
        .as_deref()
        .unwrap()
        .contains("outcome unknown"));

    let m = handed_back(&stack, &parking, "m-lost-2", 2).await;
    assert_eq!(
        m.message_attributes[UNKNOWN_OUTCOMES_ATTR]
            .string_value
            .as_deref(),
        Some("1")
    );
    let mut batch = SqsEvent::default();
    batch.records = vec![m];
    act(&deps, LambdaEvent::new(batch, Context::default()))
        .await
        .unwrap();
    assert_eq!(creates(), 1, "found by its external_id, not created again");
    let record = deps.decisions.get("ev-lost").await.unwrap().unwrap();
    assert_eq!(record.status, "done", "{record:?}");
    assert!(record.results.unwrap().contains("already created"));
    stack.stop();
}

/// The same with Jira, whose search index lags: an immediate retry would not find the issue by
/// its label and would create a second one. act waits past the lag, then finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jira_create_whose_answer_is_lost_is_not_created_twice_despite_the_search_lag() {
    use switchyard::handlers::act::handler as act;
    use switchyard_infra::sandbox::faults::Fault;
    let stack = LocalStack::start().await.unwrap();
    let (mut deps, parking) = parked_act(&stack);
    // Shorter than in production (30 s), still past the index lag.
    deps.outcome_check_delay =
        switchyard_infra::sandbox::jira::SEARCH_LAG + Duration::from_millis(500);
    let body = act_body(
        "ev-lost-jira",
        "jira",
        "create_issue",
        json!({"project": "OPS", "summary": "Checkout is down"}),
    );
    stack.sandbox.inject("jira", Fault::LostAnswer, 1);
    let run = |m: SqsMessage| {
        let deps = deps.clone();
        async move {
            let mut batch = SqsEvent::default();
            batch.records = vec![m];
            let resp = act(&deps, LambdaEvent::new(batch, Context::default()))
                .await
                .unwrap();
            assert!(resp.batch_item_failures.is_empty());
        }
    };
    run(message("m-jira", &body, 1)).await;
    run(handed_back(&stack, &parking, "m-jira-2", 10).await).await;
    let creates: Vec<_> = stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.operation == "create_issue")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    let record = deps.decisions.get("ev-lost-jira").await.unwrap().unwrap();
    assert_eq!(record.status, "done", "{record:?}");
    stack.stop();
}

/// An event that classify fails on every receive (here its send to act keeps failing) is not
/// left "accepted" forever: on its last receive its decision record says failed, with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_classify_dead_letters_is_recorded_as_failed() {
    let stack = LocalStack::start().await.unwrap();
    let p = &stack.provisioned;
    let gone = format!("{}-gone", p.queue_url("ActQueue").unwrap());
    let deps = classify_deps(&stack, switchyard::routing::DEFAULT_CONFIG, &gone);
    let event = json!({
        "id": "ev-dlq", "source": "jira", "event_type": "jira:issue_created", "delivery_id": "d9",
        "object_id": "OPS-9", "subject": "Checkout down with 500 errors", "text": null, "requester": null,
        "occurred_at": null, "received_at": "2026-11-30T10:31:00Z", "raw": {}
    })
    .to_string();
    for receive in [4, 5] {
        let mut batch = SqsEvent::default();
        batch.records = vec![message("m-dlq", &event, receive)];
        let resp = classify(&deps, LambdaEvent::new(batch, Context::default()))
            .await
            .unwrap();
        assert_eq!(resp.batch_item_failures.len(), 1);
        let r = deps.decisions.get("ev-dlq").await.unwrap().unwrap();
        if receive == 4 {
            assert_ne!(r.status, "failed", "not before its last receive");
        } else {
            assert_eq!(r.status, "failed");
            let reason = r.reason.unwrap();
            assert!(
                reason.contains("dead-lettered in classify")
                    && reason.contains("enqueue to act failed"),
                "{reason}"
            );
        }
    }
    stack.stop();
}

/// Slack has no idempotency key: every post carries its action's key as message metadata, and a
/// post that may already have happened — its answer was lost, or a worker died holding it — is
/// looked up in the channel's history first. One message either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_post_is_not_repeated_after_a_lost_answer_or_a_dead_worker() {
    let params = json!({"channel": "#incidents", "text": "Possible outage"});
    once_after_a_lost_answer_and_a_dead_worker("slack", "post_message", params, "chat.postMessage")
        .await;
}

/// A Zendesk comment has no vendor-side key either: the update's audit carries the action's key
/// as custom metadata, and the audits are read first when the comment may already exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zendesk_comment_is_not_repeated_after_a_lost_answer_or_a_dead_worker() {
    let params = json!({"ticket_id": "35436", "comment": "switchyard: routed to Billing", "public": "false"});
    once_after_a_lost_answer_and_a_dead_worker("zendesk", "update_ticket", params, "update_ticket")
        .await;
}

/// One action whose vendor has no idempotency key, through act: first its answer is lost after
/// the vendor made the effect, then (a second event) a worker makes it and dies before its
/// record. Each time the retry finds the effect instead of repeating it.
async fn once_after_a_lost_answer_and_a_dead_worker(
    connector: &'static str,
    action: &str,
    params: Value,
    operation: &str,
) {
    use switchyard::handlers::act::handler as act;
    use switchyard::idempotency::{payload_hash, Claim};
    use switchyard_infra::sandbox::faults::Fault;
    let stack = LocalStack::start().await.unwrap();
    stack
        .sandbox
        .seed_zendesk_ticket(35436, "Refund for a double charge");
    let (mut deps, parking) = parked_act(&stack);
    deps.outcome_check_delay = Duration::ZERO;
    let effects = || {
        stack
            .sandbox
            .ledger()
            .into_iter()
            .filter(|e| e.operation == operation)
            .count()
    };
    let run = |m: SqsMessage| {
        let deps = deps.clone();
        async move {
            let mut batch = SqsEvent::default();
            batch.records = vec![m];
            let resp = act(&deps, LambdaEvent::new(batch, Context::default()))
                .await
                .unwrap();
            assert!(resp.batch_item_failures.is_empty());
        }
    };

    // 1. The answer is lost after the vendor made the effect.
    let body = act_body("ev-lost-answer", connector, action, params.clone());
    stack.sandbox.inject(connector, Fault::LostAnswer, 1);
    run(message("m-1", &body, 1)).await;
    assert_eq!(effects(), 1);
    run(handed_back(&stack, &parking, "m-2", 2).await).await;
    assert_eq!(effects(), 1, "found at the vendor, not made again");
    let r = deps.decisions.get("ev-lost-answer").await.unwrap().unwrap();
    assert_eq!(r.status, "done");
    assert!(r.results.unwrap().contains("already"));

    // 2. A worker made the effect and died before its record; its claim's window has run out.
    let body = act_body("ev-dead-worker", connector, action, params);
    let msg: switchyard::routing::ActMessage = serde_json::from_str(&body).unwrap();
    let key = "act#ev-dead-worker#0";
    let hash = payload_hash(&serde_json::to_vec(&msg.actions[0]).unwrap());
    let now = Utc::now();
    assert_eq!(
        deps.idempotency
            .claim(key, &hash, now, now.timestamp_millis() - 1)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let vendor = deps.connectors.get(connector).await.unwrap();
    vendor.perform(&msg.actions[0], key).await.unwrap();
    assert_eq!(effects(), 2);
    run(message("m-3", &body, 2)).await;
    assert_eq!(
        effects(),
        2,
        "the redelivery found the dead worker's effect"
    );
    stack.stop();
}
