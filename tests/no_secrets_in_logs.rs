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
    // Minted credentials: a JWT-bearer Salesforce connection minted and stored by a worker, then
    // a client-credentials grant the vendor refuses.
    let c = &stack.sandbox.credentials;
    let sf = stack.provisioned.refs["SalesforceConnectionSecret"].clone();
    let put = |value: serde_json::Value| {
        let sm = stack.aws.secrets.clone();
        let sf = sf.clone();
        async move {
            sm.put_secret_value()
                .secret_id(sf)
                .secret_string(value.to_string())
                .send()
                .await
                .unwrap();
        }
    };
    let token_url = format!(
        "{}/services/oauth2/token",
        stack.sandbox.base_url("salesforce")
    );
    put(serde_json::json!({"type": "oauth2_jwt_bearer", "base_url": stack.sandbox.base_url("salesforce"),
        "token_url": token_url, "client_id": c.salesforce_client_id, "subject": c.salesforce_username,
        "audience": "https://login.salesforce.com", "private_key": c.salesforce_private_key}))
    .await;
    let f = stack.template.function("act").unwrap();
    let act = switchyard::handlers::act::Act::from_settings(
        &stack.aws,
        &switchyard::settings::Settings::from_map(
            stack.provisioned.function_env(&stack.template, f).unwrap(),
        ),
    )
    .unwrap();
    act.connectors
        .get("salesforce")
        .await
        .unwrap()
        .probe()
        .await
        .unwrap();
    let minted = act
        .connectors
        .secrets
        .credential(&sf)
        .await
        .unwrap()
        .access_token()
        .map(|t| secrecy::ExposeSecret::expose_secret(t).to_owned())
        .unwrap();
    put(serde_json::json!({"type": "oauth2_client_credentials", "base_url": stack.sandbox.base_url("salesforce"),
        "token_url": token_url, "client_id": c.salesforce_client_id, "client_secret": "cc-wrong-secret-0f9e8d"}))
    .await;
    act.connectors.secrets.reload(&sf).await.unwrap();
    assert!(act.connectors.get("salesforce").await.is_err());
    // Teams and webhook URLs carry their secret in the path or query: post through both.
    for (connector, action) in [("teams", "post_message"), ("webhook", "post")] {
        let post = switchyard::routing::PlannedAction {
            json: Default::default(),
            connector: connector.into(),
            action: action.into(),
            params: [("text".to_owned(), "Checkout is down".to_owned())].into(),
        };
        let c = act.connectors.get(connector).await.unwrap();
        c.perform(&post, "no-secrets-key").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.lines().count() > 20,
        "too few log lines to mean anything"
    );
    // The external-call records were captured too: every vendor, token endpoint and the LLM.
    let calls: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("\"message\":\"external call\""))
        .collect();
    for connector in ["zendesk", "slack", "llm", "oauth2", "teams", "webhook"] {
        assert!(
            calls
                .iter()
                .any(|l| l.contains(&format!("\"connector\":\"{connector}\""))),
            "no external-call record for {connector}"
        );
    }
    let k = &stack.signing;
    // A line from the middle of the private key's PEM body.
    let key_line = c.salesforce_private_key.lines().nth(5).unwrap().to_owned();
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
        &c.salesforce_client_secret,
        &key_line,
        &minted,
        "cc-wrong-secret-0f9e8d",
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
    // The demo's documents were read (a subpoena, a password-protected contract): nothing of
    // their text, and no signed file URL (its token), is in any line.
    assert!(
        logs.contains("\"message\":\"document inspected\""),
        "no document was read"
    );
    for text in [
        switchyard::documents::samples::SUBPOENA[0],
        switchyard::documents::samples::SUBPOENA[5],
        "Master services agreement",
        "X-Amz-Signature",
        "/attachments/token/",
    ] {
        assert!(
            !logs.contains(text),
            "a document's text or file URL appears in the logs: {}",
            logs.lines().find(|l| l.contains(text)).unwrap_or_default()
        );
    }
    stack.stop();
}
