//! API drift, as the on-call person meets it: the sandbox's vendor changes its API the way real
//! ones do (a field renamed, removed, retyped, nulled, a nested change, a new enum value, a new
//! date format, a new field, a newly required field) and one canary run reports it, with the
//! right severity and path; a clean sandbox gives no finding; the change undone resolves it.

use switchyard::drift::{FindingKind, Severity};
use switchyard::handlers::canary::ProbeResult;
use switchyard_infra::stack::LocalStack;

/// The canary's first run (at start) takes the baseline snapshot.
async fn first_run(stack: &LocalStack) -> Vec<ProbeResult> {
    switchyard_tests::wait_for(
        "the canary's first run",
        std::time::Duration::from_secs(60),
        || async {
            let r = stack.canary_results.lock().unwrap().clone();
            (!r.is_empty()).then_some(r)
        },
    )
    .await
}

/// Routes that create Zendesk tickets (the default config only updates them).
fn creating_routes() -> switchyard::routing::RoutingConfig {
    switchyard::routing::RoutingConfig::load(
        r#"
review_threshold = 0.6
[[categories]]
name = "bug"
keywords = ["crash"]
[[routes]]
category = "bug"
[[routes.actions]]
connector = "zendesk"
action = "create_ticket"
params = { subject = "{event.summary}", comment = "{event.text}" }
"#,
    )
    .unwrap()
}

fn findings_of(results: &[ProbeResult], connector: &str) -> Vec<(FindingKind, Severity, String)> {
    let r = results
        .iter()
        .find(|r| r.connector == connector)
        .unwrap_or_else(|| panic!("no canary result for {connector}: {results:?}"));
    let check = r
        .structure
        .as_ref()
        .unwrap_or_else(|| panic!("{connector}: no structure check ran: {r:?}"));
    assert_eq!(check.error, None, "{connector}: {check:?}");
    check
        .findings
        .iter()
        .map(|f| (f.finding.kind, f.finding.severity, f.finding.path.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_zendesk_drift_mode_is_found_in_one_run_and_a_clean_api_has_no_finding() {
    use FindingKind::*;
    use Severity::*;
    let stack = LocalStack::start().await.unwrap();
    let first = first_run(&stack).await;
    let zendesk = first.iter().find(|r| r.connector == "zendesk").unwrap();
    let check = zendesk
        .structure
        .as_ref()
        .expect("the first run checks structure");
    assert_eq!(check.records.get("ticket"), Some(&3), "{check:?}");
    assert_eq!(findings_of(&first, "zendesk"), vec![], "a clean sandbox");
    for r in &first {
        if let Some(c) = &r.structure {
            assert!(c.findings.is_empty(), "{}: {c:?}", r.connector);
        }
    }

    let routing = creating_routes();
    let cases: &[(&str, (FindingKind, Severity, &str))] = &[
        ("renamed", (Renamed, Warning, "status")),
        ("removed", (FieldMissing, Breaking, "updated_at")),
        ("retyped", (TypeChanged, Warning, "tags")),
        ("nulled", (BecameNull, Warning, "subject")),
        ("nested", (TypeChanged, Warning, "via/channel")),
        ("enum_value", (NewEnumValue, Warning, "status")),
        ("date_format", (DateFormatChanged, Warning, "updated_at")),
        ("required_field", (RequiredField, Warning, "360012345678")),
        // Last: a new field joins the snapshot (information, shown once).
        ("added", (FieldAdded, Info, "x_sentiment")),
    ];
    let store = stack.drift_store().unwrap();
    for (mode, (kind, severity, path)) in cases {
        stack.sandbox.drift("zendesk", mode).unwrap();
        let run = stack.canary_now(Some(routing.clone())).await.unwrap();
        assert_eq!(
            findings_of(&run, "zendesk"),
            vec![(*kind, *severity, (*path).to_owned())],
            "drift mode {mode}"
        );
        let reported = &run[0].structure.as_ref().unwrap().findings[0];
        assert!(reported.new, "{mode}: the first sighting is news");
        // Stored once, with its state, and told once: the same change again is not news.
        let again = stack.canary_now(Some(routing.clone())).await.unwrap();
        let check = again
            .iter()
            .find(|r| r.connector == "zendesk")
            .and_then(|r| r.structure.clone())
            .unwrap();
        if *kind != FieldAdded {
            assert_eq!(check.findings.len(), 1, "{mode}: {check:?}");
            assert!(!check.findings[0].new, "{mode}: seen before");
        }
        let stored = store.list("zendesk").await.unwrap();
        let s = stored.iter().find(|s| s.id == reported.id).unwrap();
        assert_eq!(s.finding.path, *path);
        if *kind == RequiredField {
            assert_eq!(
                s.finding.routes,
                vec!["route \"bug\" (zendesk.create_ticket)"]
            );
            assert!(
                s.finding.detail.contains("custom_field.360012345678"),
                "{s:?}"
            );
        }

        stack.sandbox.clear_drift();
        if *kind == FieldAdded {
            break;
        }
        let clean = stack.canary_now(Some(routing.clone())).await.unwrap();
        assert_eq!(
            findings_of(&clean, "zendesk"),
            vec![],
            "after undoing {mode}"
        );
        let check = clean
            .iter()
            .find(|r| r.connector == "zendesk")
            .and_then(|r| r.structure.clone())
            .unwrap();
        assert!(check.resolved.contains(&reported.id), "{mode}: {check:?}");
        let stored = store.list("zendesk").await.unwrap();
        let s = stored.iter().find(|s| s.id == reported.id).unwrap();
        assert_eq!(s.state, "resolved");
    }
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finding_acknowledged_stays_acknowledged_and_a_resolved_one_reopens_as_news() {
    let stack = LocalStack::start().await.unwrap();
    first_run(&stack).await;
    let store = stack.drift_store().unwrap();
    stack.sandbox.drift("zendesk", "removed").unwrap();
    let run = stack.canary_now(None).await.unwrap();
    let id = run
        .iter()
        .find_map(|r| r.structure.as_ref()?.findings.first().cloned())
        .unwrap()
        .id;
    assert!(store
        .set_state("zendesk", &id, "acknowledged", chrono::Utc::now())
        .await
        .unwrap());
    let again = stack.canary_now(None).await.unwrap();
    let f = again
        .iter()
        .find_map(|r| r.structure.as_ref()?.findings.first().cloned())
        .unwrap();
    assert!(!f.new);
    let s = store.list("zendesk").await.unwrap();
    assert_eq!(s.iter().find(|s| s.id == id).unwrap().state, "acknowledged");
    assert_eq!(s.iter().find(|s| s.id == id).unwrap().times_seen, 2);

    stack.sandbox.clear_drift();
    stack.canary_now(None).await.unwrap();
    stack.sandbox.drift("zendesk", "removed").unwrap();
    let back = stack.canary_now(None).await.unwrap();
    let f = back
        .iter()
        .find_map(|r| r.structure.as_ref()?.findings.first().cloned())
        .unwrap();
    assert_eq!(f.id, id);
    assert!(f.new, "back after being resolved: news again");
    assert!(!store
        .set_state("zendesk", "00000000", "acknowledged", chrono::Utc::now())
        .await
        .unwrap());
    stack.stop();
}
