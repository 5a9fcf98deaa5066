//! The scheduled bulk sync function, invoked as its schedule would invoke it, reading its export
//! from S3 on the emulator and writing to the SaaS sandbox.

use serde_json::json;
use switchyard_infra::stack::LocalStack;

const DOMAINS: [&str; 5] = [
    "acme.com",
    "globex.com",
    "initech.com",
    "umbrella.com",
    "hooli.com",
];

fn export(rows: usize) -> String {
    let mut csv = String::from("email,firstname,lastname,company_domain\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "customer{i}@example.com,C{i},Example,{}\n",
            DOMAINS[i % DOMAINS.len()]
        ));
    }
    csv
}

fn created_contacts(stack: &LocalStack, vendor: &str) -> usize {
    stack
        .sandbox
        .ledger()
        .iter()
        .filter(|e| e.vendor == vendor && e.operation == "create_contact")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_sync_reads_its_export_from_s3_and_upserts_in_bulk_per_connector() {
    // Salesforce's default budget (4,000 an hour) would need an 8 s window for 8 calls.
    let stack = LocalStack::start_with(&[("RateLimits".into(), "salesforce=20/1s".into())])
        .await
        .unwrap();
    let csv = export(450);

    // The schedule's default: HubSpot, customers.csv; 5 company reads + 5 batches of 100.
    let s = stack
        .sync(csv.as_bytes(), json!({"window_seconds": 2}))
        .await
        .unwrap();
    assert_eq!(
        (
            s.connector.as_str(),
            s.key.as_str(),
            s.rows,
            s.synced,
            s.refused,
            s.calls,
            s.rate_limited
        ),
        ("hubspot", "customers.csv", 450, 450, 0, 10, 0)
    );
    assert_eq!(created_contacts(&stack, "hubspot"), 450);

    // The Input may name another connector and export: Salesforce collections of 200.
    let s = stack
        .sync(
            csv.as_bytes(),
            json!({"connector": "salesforce", "key": "exports/sf.csv", "window_seconds": 2}),
        )
        .await
        .unwrap();
    assert_eq!((s.synced, s.calls, s.rate_limited), (450, 8, 0));
    assert_eq!(created_contacts(&stack, "salesforce"), 450);
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_cannot_run_says_why_before_any_vendor_call() {
    let stack = LocalStack::start().await.unwrap();
    let calls_before = stack.sandbox.ledger().len();

    // A window past the function's deadline (900 s timeout) is refused.
    let e = stack
        .sync(export(3).as_bytes(), json!({"window_seconds": 3600}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("deadline"), "{e}");

    // A bad row names its line, never its value (the e-mail is PII).
    let bad =
        "email,firstname,lastname,company_domain\na@x.io,A,B,x.io\njane.doe-at-example,J,D,\n";
    let e = stack
        .sync(bad.as_bytes(), json!({"window_seconds": 1}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("customers.csv line 3"), "{e}");
    assert!(!e.contains("jane.doe"), "{e}");

    // A connector without a bulk endpoint is named as such.
    let e = stack
        .sync(
            export(3).as_bytes(),
            json!({"connector": "jira", "window_seconds": 1}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("jira"), "{e}");

    assert_eq!(stack.sandbox.ledger().len(), calls_before);
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_without_an_export_is_a_quiet_no_op() {
    // A fresh deploy has no customers.csv: the scheduled run must not fail (two alarms would
    // page every night), and it calls no vendor.
    let stack = LocalStack::start().await.unwrap();
    let calls_before = stack.sandbox.ledger().len();
    let env = stack
        .provisioned
        .function_env(&stack.template, stack.template.function("sync").unwrap())
        .unwrap();
    let settings = switchyard::settings::Settings::from_map(env);
    let deps = switchyard::handlers::sync::SyncDeps::from_settings(&stack.aws, &settings).unwrap();
    let s = switchyard::handlers::sync::handler(
        &deps,
        lambda_runtime::LambdaEvent::new(
            json!({}),
            switchyard_infra::runner::context("sync", std::time::Duration::from_secs(900)),
        ),
    )
    .await
    .unwrap();
    assert_eq!((s.key.as_str(), s.rows, s.calls), ("customers.csv", 0, 0));
    assert_eq!(stack.sandbox.ledger().len(), calls_before);
    stack.stop();
}
