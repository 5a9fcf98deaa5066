//! A burst of work against a budget it overruns: each action that must wait reserves its slot
//! when it is handed back, comes back once at that slot and calls without competing again.

use chrono::Utc;
use switchyard_infra::fixtures;
use switchyard_infra::stack::LocalStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_handed_back_about_once_per_action_and_makes_each_effect_once() {
    // A slot every half second; 30 tickets at once are 15 s of budget, most beyond an in-function
    // wait.
    let limits = [("RateLimits".to_owned(), "zendesk=120/minute".to_owned())];
    let stack = LocalStack::start_with(&limits).await.unwrap();
    // The sandbox enforces the same limit: a call ahead of its slot would be a 429.
    stack.sandbox.set_zendesk_rate_limit(Some(120));
    let http = reqwest::Client::new();
    let before = stack.stats.metrics.lock().unwrap().len();
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
    // Without reservations a waiting action came back to compete again: 38 for 30 here.
    assert!(
        handbacks as f64 / effects as f64 <= 1.1,
        "{handbacks} hand-backs for {effects} effects"
    );
    stack.stop();
}
