//! A connector described in a file (`shared/connectors/casebook.toml`) against the sandbox's
//! Casebook, which behaves like the seed article's proprietary systems: every behaviour through
//! the real act handler (or `doctor`), with exactly-once counted from the sandbox's ledger.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use switchyard::drift::{FindingKind, Severity};
use switchyard_infra::sandbox::faults::Fault;
use switchyard_infra::stack::LocalStack;
use switchyard_tests::{act_body, handed_back, message, parked_act, settled, settled_within};

fn open_case(event_id: &str) -> String {
    act_body(
        event_id,
        "casebook",
        "open_case",
        json!({"matter": "M-100", "title": "Subpoena for account records", "description": "Served on 3 Dec"}),
    )
}

/// Send one act message to the stack's act queue (the running act consumes it).
async fn send(stack: &LocalStack, body: &str) {
    stack
        .aws
        .sqs
        .send_message()
        .queue_url(stack.provisioned.queue_url("ActQueue").unwrap())
        .message_body(body)
        .send()
        .await
        .unwrap();
}

fn cases_made(stack: &LocalStack) -> Vec<serde_json::Value> {
    stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.vendor == "casebook" && e.operation == "create_case")
        .map(|e| e.detail)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_described_action_runs_once_even_when_delivered_twice() {
    let stack = LocalStack::start().await.unwrap();
    let body = open_case("ev-cb-once");
    send(&stack, &body).await;
    let r = settled(&stack, "ev-cb-once").await;
    assert_eq!(r.status, "done", "{r:?}");
    // SQS delivers at least once: the same message again makes nothing new.
    send(&stack, &body).await;
    // Handled once act's queue holds nothing (waiting, in flight or delayed).
    switchyard_tests::wait_for("act to drain", Duration::from_secs(30), || async {
        (stack.queue_depth("ActQueue").await.ok()? == 0).then_some(())
    })
    .await;
    let made = cases_made(&stack);
    assert_eq!(made.len(), 1, "{made:?}");
    // The key travelled in the case (what a lookup finds it by); the outcome names the case
    // and reads its date whatever backend stored it.
    let key = made[0]["external_ref"].as_str().unwrap().to_owned();
    assert!(!key.is_empty());
    let results = r.results.unwrap_or_default();
    assert!(results.contains("casebook.open_case CB-"), "{results}");
    assert!(results.contains("status=open"), "{results}");
    assert!(
        regex_like_rfc3339(&results),
        "opened_at normalised: {results}"
    );
    stack.stop();
}

/// `opened_at=YYYY-MM-DDTHH:MM:SS.sssZ` somewhere in `text`.
fn regex_like_rfc3339(text: &str) -> bool {
    text.split("opened_at=").nth(1).is_some_and(|rest| {
        let d = &rest[..rest.len().min(24)];
        d.len() == 24 && d.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(d).is_ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dates_from_three_backends_come_out_as_one_format() {
    let stack = LocalStack::start().await.unwrap();
    let mut dates = Vec::new();
    for i in 0..3 {
        let id = format!("ev-cb-date-{i}");
        send(&stack, &open_case(&id)).await;
        let r = settled(&stack, &id).await;
        assert_eq!(r.status, "done", "{r:?}");
        let results = r.results.unwrap_or_default();
        assert!(regex_like_rfc3339(&results), "{results}");
        dates.push(results);
    }
    let origins: std::collections::BTreeSet<String> = cases_made(&stack)
        .iter()
        .map(|c| c["origin"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(origins.len(), 3, "one case from each backend: {origins:?}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_are_renewed_before_the_vendor_ends_them() {
    let stack = LocalStack::start().await.unwrap();
    // Compressed time: sessions last 4 s, and this tenant logs a session out after 5 calls in
    // an hour; its secret says so (tighter than the description's 1,000).
    stack
        .sandbox
        .set_casebook_sessions(Duration::from_secs(4), 5);
    let secret_id = format!(
        "{}/{}casebook",
        stack.provisioned.prefix, stack.template.parameters["ConnectionSecretPrefix"]
    );
    let c = &stack.sandbox.credentials;
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&secret_id)
        .secret_string(
            json!({"type": "session_login", "connector": "casebook",
                   "base_url": stack.sandbox.base_url("casebook"),
                   "username": c.casebook_username, "password": c.casebook_password,
                   "session": {"max_calls": 5}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let (logins_before, _) = stack.sandbox.casebook_sessions();
    // Twelve cases over two stretches with a session's life between them.
    for round in 0..2 {
        let ids: Vec<String> = (0..6).map(|i| format!("ev-cb-s{round}-{i}")).collect();
        for id in &ids {
            send(&stack, &open_case(id)).await;
        }
        for id in &ids {
            let r = settled_within(&stack, id, Duration::from_secs(60)).await;
            assert_eq!(r.status, "done", "{r:?}");
        }
        tokio::time::sleep(Duration::from_millis(4_500)).await;
    }
    assert_eq!(cases_made(&stack).len(), 12, "each case once");
    let (logins, refused) = stack.sandbox.casebook_sessions();
    assert_eq!(refused, 0, "no call reached an ended session");
    // 12 calls at 5 a session need at least 3 sessions; the pause needed another.
    assert!(logins - logins_before >= 3, "{logins_before} → {logins}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_required_field_the_docs_never_mentioned_goes_to_review_naming_it() {
    let stack = LocalStack::start().await.unwrap();
    stack.sandbox.casebook_require("matter_type");
    send(&stack, &open_case("ev-cb-required")).await;
    let r = settled(&stack, "ev-cb-required").await;
    assert_eq!(r.status, "in_review", "{r:?}");
    let reason = r.reason.unwrap_or_default();
    assert!(reason.contains("matter_type"), "{reason}");
    assert!(cases_made(&stack).is_empty());
    assert_eq!(stack.queue_depth("ActDLQ").await.unwrap(), 0);
    let stored = stack.drift_store().unwrap().list("casebook").await.unwrap();
    let refused = stored
        .iter()
        .find(|s| s.finding.kind == FindingKind::WriteRefused)
        .unwrap_or_else(|| panic!("{stored:?}"));
    assert_eq!(
        (refused.finding.path.as_str(), refused.finding.severity),
        ("matter_type", Severity::Breaking)
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_in_undocumented_words_is_waited_out_and_the_case_made_once() {
    let stack = LocalStack::start().await.unwrap();
    // Documented as a 429; the gateway says "Too many requests" in a 400 with `retry_in`.
    stack.sandbox.casebook_throttle(1);
    send(&stack, &open_case("ev-cb-throttled")).await;
    let r = settled_within(&stack, "ev-cb-throttled", Duration::from_secs(60)).await;
    assert_eq!(r.status, "done", "{r:?}");
    assert_eq!(cases_made(&stack).len(), 1);
    let waited = r
        .attempts
        .iter()
        .any(|a| a.to_string().contains("rate limited by the vendor"));
    assert!(
        waited,
        "read as a rate limit, not a failure: {:?}",
        r.attempts
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proxy_error_page_is_retried_and_the_case_made_once() {
    let stack = LocalStack::start().await.unwrap();
    // A session first, so the page answers the action (a login that meets one cools down 30 s).
    send(&stack, &open_case("ev-cb-warm")).await;
    assert_eq!(settled(&stack, "ev-cb-warm").await.status, "done");
    stack.sandbox.inject("casebook", Fault::ServerError(502), 1);
    send(&stack, &open_case("ev-cb-proxy")).await;
    let r = settled(&stack, "ev-cb-proxy").await;
    assert_eq!(r.status, "done", "{r:?}");
    assert_eq!(cases_made(&stack).len(), 2);
    assert_eq!(
        stack.sandbox.pending_faults("casebook"),
        0,
        "the page was served"
    );
    stack.stop();
}

/// The connection breaks after Casebook made the case: act looks it up by its key (the
/// description's lookup) instead of making a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_whose_answer_was_lost_is_found_by_its_key_not_made_twice() {
    use switchyard::handlers::act::handler as act;
    let stack = LocalStack::start().await.unwrap();
    let (mut deps, parking) = parked_act(&stack);
    deps.outcome_check_delay = Duration::ZERO;
    let run = |id: &str, body: String| {
        let mut batch = SqsEvent::default();
        batch.records = vec![message(id, &body, 1)];
        act(&deps, LambdaEvent::new(batch, Context::default()))
    };
    // A session first, so the lost answer is the case's (the login is a POST too).
    run("m-cb-warm", open_case("ev-cb-warm")).await.unwrap();
    assert_eq!(cases_made(&stack).len(), 1);
    stack.sandbox.inject("casebook", Fault::LostAnswer, 1);
    run("m-cb-lost", open_case("ev-cb-lost")).await.unwrap();
    assert_eq!(cases_made(&stack).len(), 2, "Casebook made the case");
    let mut batch = SqsEvent::default();
    batch.records = vec![handed_back(&stack, &parking, "m-cb-lost-2", 2).await];
    act(&deps, LambdaEvent::new(batch, Context::default()))
        .await
        .unwrap();
    assert_eq!(cases_made(&stack).len(), 2, "found, not made again");
    let record = deps.decisions.get("ev-cb-lost").await.unwrap().unwrap();
    assert_eq!(record.status, "done", "{record:?}");
    assert!(record.results.unwrap().contains("found by its key"));
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doctor_names_an_ip_allow_list_refusal_as_such() {
    let stack = LocalStack::start().await.unwrap();
    let ready = stack.doctor().await.unwrap();
    let casebook = ready.iter().find(|r| r.connection == "casebook").unwrap();
    assert!(casebook.ready, "{casebook:?}");
    assert_eq!(casebook.identity.as_deref(), Some("switchyard integration"));
    stack.sandbox.block_ip("casebook");
    let blocked = stack.doctor().await.unwrap();
    let casebook = blocked.iter().find(|r| r.connection == "casebook").unwrap();
    assert!(!casebook.ready);
    assert!(
        casebook
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains("IP allowlist"),
        "{casebook:?}"
    );
    assert!(casebook.detail.contains("allow list"), "{casebook:?}");
    stack.stop();
}
