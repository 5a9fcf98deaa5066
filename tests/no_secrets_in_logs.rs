//! Every log line the pipeline writes — happy paths and failures: forged webhooks, rejected
//! credentials, a refused LLM key, a rate-limited vendor — is captured at DEBUG and searched for
//! every secret value the run holds. One hit fails the test.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_infra::stack::LocalStack;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_appears_in_any_log_line() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(capture.clone())
        .init();

    let stack = LocalStack::start_with(&[("LlmModel".into(), "sandbox".into())])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    // The demo's webhooks (incl. a forged one), then failures on purpose.
    let webhooks = switchyard_infra::demo::demo_webhooks(&stack);
    let summary = switchyard_infra::demo::run(&stack, &http, &webhooks)
        .await
        .unwrap();
    assert!(summary.settled, "{}", summary.render());
    // A rate-limited vendor and an expired credential, through the whole chain.
    stack.sandbox.seed_zendesk_ticket(36100, "Refund");
    stack.sandbox.zendesk_storm(Duration::from_secs(1));
    stack.sandbox.inject(
        "slack",
        switchyard_infra::sandbox::faults::Fault::ExpiredToken,
        1,
    );
    let hook = switchyard_infra::fixtures::zendesk_ticket_created(
        &stack.signing.zendesk,
        "storm-36100",
        36100,
        "Refund for a double charge",
        "My card was charged twice for the March invoice; please refund one payment.",
        chrono::Utc::now(),
    );
    let (code, body) = hook.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(code, 202);
    let id = body["event_id"].as_str().unwrap().to_owned();
    let decisions = stack.decisions().unwrap();
    switchyard_tests::wait_for("the stormy event", Duration::from_secs(30), || {
        let decisions = decisions.clone();
        let id = id.clone();
        async move {
            decisions
                .get(&id)
                .await
                .unwrap()
                .filter(|r| r.status == "done")
        }
    })
    .await;
    let status = http
        .get(format!("{}/events/nope", stack.webhook_base))
        .bearer_auth("not-the-status-token")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status().as_u16(), 401);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.lines().count() > 20,
        "too few log lines to mean anything"
    );
    let c = &stack.sandbox.credentials;
    let k = &stack.signing;
    let secrets = [
        c.zendesk_token.as_str(),
        &c.slack_client_secret,
        &c.slack_access_token,
        &c.slack_refresh_token,
        &c.llm_api_key,
        &c.jira_token,
        &c.salesforce_token,
        &c.hubspot_token,
        &c.teams_webhook_token,
        &c.webhook_secret,
        &k.zendesk,
        &k.slack,
        &k.jira,
        &k.github,
        &k.hubspot,
        &k.teams,
        &k.stripe,
        &k.standard,
        &k.twilio,
        &k.status_token,
    ];
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret),
            "a secret value appears in the logs: {}",
            logs.lines()
                .find(|l| l.contains(secret))
                .unwrap_or_default()
                .replace(secret, "[THE SECRET]")
        );
    }
    stack.stop();
}
