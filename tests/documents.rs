//! Documents that arrive with events, end to end: each vendor's file is fetched through its
//! download flow in the sandbox (Zendesk's signed-URL redirect, Slack's bot token, Jira's media
//! redirect) under the connection, inspected, read into the classification, and every bad case
//! reaches a person with its reason.

use chrono::Utc;
use serde_json::Value;
use std::time::Duration;
use switchyard::decisions::DecisionRecord;
use switchyard::documents::samples;
use switchyard::event::Attachment;
use switchyard_infra::fixtures::{self, SignedWebhook};
use switchyard_infra::stack::LocalStack;

use switchyard_tests::{settled, wait_for};

/// A Zendesk ticket whose only words are "please see the attached document", with `file`
/// attached: its settled decision record.
async fn zendesk_with(stack: &LocalStack, ticket: u64, file: Attachment) -> DecisionRecord {
    stack.sandbox.seed_zendesk_ticket(ticket, "Documents");
    let hook = fixtures::zendesk_attachment_linked(
        &stack.signing.zendesk,
        &format!("doc-{ticket}"),
        ticket,
        "Documents",
        "please see the attached document",
        &file,
        Utc::now(),
    );
    send(stack, hook).await
}

async fn send(stack: &LocalStack, hook: SignedWebhook) -> DecisionRecord {
    let (status, body) = hook
        .send(&reqwest::Client::new(), &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let id = body["event_id"].as_str().unwrap().to_owned();
    settled(stack, &id).await;
    // The evidence (documents included) is written just after the decision.
    let decisions = stack.decisions().unwrap();
    wait_for("the decision's evidence", Duration::from_secs(10), || {
        let (decisions, id) = (decisions.clone(), id.clone());
        async move { decisions.get(&id).await.ok()?.filter(|r| r.input.is_some()) }
    })
    .await
}

/// The comments switchyard wrote on a Zendesk ticket (body, public).
fn replies(stack: &LocalStack, ticket: u64) -> Vec<(String, bool)> {
    stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.vendor == "zendesk" && e.operation == "update_ticket")
        .filter(|e| e.object_id == ticket.to_string())
        .flat_map(|e| e.detail["events"].as_array().cloned().unwrap_or_default())
        .filter(|ev| ev["type"] == "Comment")
        .map(|ev| {
            (
                ev["body"].as_str().unwrap_or_default().to_owned(),
                ev["public"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Once act has sent everything the event's review message carried (the review notice is the
/// first action, a reply to the requester the next): the replies on `ticket`.
async fn replies_once_sent(
    stack: &LocalStack,
    event_id: &str,
    ticket: u64,
    expected: usize,
) -> Vec<(String, bool)> {
    wait_for("the review notice", Duration::from_secs(30), || async {
        stack
            .sandbox
            .ledger()
            .iter()
            .any(|e| e.operation == "chat.postMessage" && e.detail.to_string().contains(event_id))
            .then_some(())
    })
    .await;
    wait_for("the replies", Duration::from_secs(30), || async {
        let r = replies(stack, ticket);
        (r.len() >= expected).then_some(r)
    })
    .await
}

fn pdf(stack: &LocalStack, vendor: &'static str, name: &str, bytes: Vec<u8>) -> Attachment {
    stack.sandbox.attach(vendor, name, "application/pdf", bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subpoena_in_a_pdf_routes_as_legal_and_each_bad_document_reaches_a_person() {
    // Counts metrics (the OCR test): one stack at a time in this binary.
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    let stack = LocalStack::start().await.unwrap();
    let subpoena = pdf(
        &stack,
        "zendesk",
        "subpoena.pdf",
        samples::text_pdf(samples::SUBPOENA),
    );
    let record = zendesk_with(&stack, 35501, subpoena).await;
    // Classified on the document: the ticket's own words say nothing of the law.
    assert_eq!(record.category, "legal", "{record:?}");
    assert_eq!(record.documents.len(), 1, "{record:?}");
    let read = &record.documents[0];
    assert_eq!((read.kind.as_str(), read.pages), ("text", Some(1)));
    assert_eq!(read.mime.as_deref(), Some("application/pdf"));
    assert!(read.text_chars > 300, "{read:?}");
    assert_eq!(read.name, "\"subpoena.pdf\"");
    assert_eq!(read.kept, None, "documents are not kept unless asked");
    // `explain` says what was read, and nothing of what it said.
    let story = switchyard_infra::ops::render_story(&record);
    assert!(
        story.contains("document    \"subpoena.pdf\": text, application/pdf, 1 page(s), "),
        "{story}"
    );
    assert!(!story.contains("SUBPOENA"), "{story}");

    let spanish = pdf(
        &stack,
        "zendesk",
        "extracto.pdf",
        samples::text_pdf(samples::SPANISH),
    );
    let record = zendesk_with(&stack, 35502, spanish).await;
    assert_eq!(record.language.as_deref(), Some("spa"), "{record:?}");
    assert_eq!(record.documents[0].language.as_deref(), Some("spa"));

    let mut asked = Vec::new();
    for (ticket, name, bytes, reason, replies) in [
        (
            35503,
            "locked.pdf",
            samples::password_pdf(samples::SUBPOENA, "s3cret"),
            "password-protected document: \"locked.pdf\"",
            1,
        ),
        (
            35504,
            "cut.pdf",
            samples::truncated_pdf(samples::SUBPOENA),
            "document could not be read (truncated: no end-of-file marker): \"cut.pdf\"",
            1,
        ),
        (
            35505,
            "scan.pdf",
            samples::scanned_pdf(),
            "scanned document, no text layer: \"scan.pdf\"",
            0,
        ),
    ] {
        let record = zendesk_with(&stack, ticket, pdf(&stack, "zendesk", name, bytes)).await;
        assert_eq!(record.status, "in_review", "{name}: {record:?}");
        assert_eq!(record.reason.as_deref(), Some(reason), "{name}");
        asked.push((record.event_id, ticket, replies));
    }
    // The requester is asked, publicly on the ticket, once per document: an unprotected copy,
    // or the upload again. A scan asks nothing of them (a person reads it).
    let mut said = Vec::new();
    for (event_id, ticket, expected) in &asked {
        let r = replies_once_sent(&stack, event_id, *ticket, *expected).await;
        assert_eq!(r.len(), *expected, "ticket {ticket}: {r:?}");
        assert!(r.iter().all(|(_, public)| *public), "{r:?}");
        said.extend(r.into_iter().map(|(body, _)| body));
    }
    assert!(
        said[0].contains("\"locked.pdf\". It is protected by a password"),
        "{said:?}"
    );
    assert!(
        said[1].contains("\"cut.pdf\". The upload could not be read"),
        "{said:?}"
    );

    // An attachment the vendor no longer has: review, naming it.
    let mut gone = pdf(
        &stack,
        "zendesk",
        "gone.pdf",
        samples::text_pdf(samples::SUBPOENA),
    );
    gone.url = gone
        .url
        .map(|u| u.replace("/token/zendesk", "/token/missing"));
    let record = zendesk_with(&stack, 35506, gone).await;
    assert_eq!(record.status, "in_review");
    let reason = record.reason.unwrap();
    assert!(
        reason.starts_with("document \"gone.pdf\" could not be fetched: permanent failure"),
        "{reason}"
    );

    // Every signed URL was fetched, none with the Zendesk credential.
    let fetches = stack.sandbox.signed_fetches();
    assert_eq!(fetches.len(), 5, "{fetches:?}");
    assert!(fetches.iter().all(|(_, auth)| !auth), "{fetches:?}");
}

/// OCR on (`DocumentOcr=textract`): a scanned subpoena, pages of images with no text layer, is
/// read by Textract in the emulator, under classify's own IAM grants (the template's
/// `ClassifyOcrPolicy`), one page per call (the emulator refuses a longer PDF, as Textract
/// does), and routes as legal; a scan OCR finds no text on still reaches a person, saying so.
/// Documents kept (`DocumentRetentionDays`): each file is in the bucket as it was fetched, under
/// the event's id, and explain says where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ocr_on_a_scanned_subpoena_is_read_page_by_page_and_routes_as_legal() {
    // Counts metrics (the OCR test): one stack at a time in this binary.
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    use switchyard::documents::{inspect, ocr_pages, Limits};
    let stack = LocalStack::start_with(&[
        ("DocumentOcr".into(), "textract".into()),
        ("DocumentRetentionDays".into(), "7".into()),
    ])
    .await
    .unwrap();
    let scan = samples::scanned_pages_pdf(5);
    let limits = Limits::default();
    let pages = ocr_pages(&scan, &inspect(&scan, &limits), &limits, 3).unwrap();
    stack
        .emulator
        .ocr_reads(&pages[0], samples::SUBPOENA)
        .await
        .unwrap();
    stack.emulator.take_usage().await.unwrap();

    let record = zendesk_with(
        &stack,
        35601,
        pdf(&stack, "zendesk", "scan_0412.pdf", scan.clone()),
    )
    .await;
    assert_eq!(record.category, "legal", "{record:?}");
    let read = &record.documents[0];
    assert_eq!(
        (read.kind.as_str(), read.pages),
        ("text", Some(5)),
        "{read:?}"
    );
    assert_eq!(
        read.reason.as_deref(),
        Some("read by OCR: the first 3 of 5 pages")
    );
    assert!(read.text_chars > 300, "{read:?}");
    let usage = stack.emulator.take_usage().await.unwrap();
    assert_eq!(
        usage.requests.get("textract.DetectDocumentText"),
        Some(&3),
        "{usage:?}"
    );
    assert!(usage.denied.is_empty(), "{:?}", usage.denied);
    // The pages Textract bills, counted for the people who pay for them (written once the
    // invocation has ended, a moment after its record).
    wait_for("the OcrPages metric", Duration::from_secs(10), || async {
        let docs = switchyard_tests::emf(&stack, "OcrPages");
        (switchyard_tests::total(&docs, "OcrPages", None) == 3.0).then_some(())
    })
    .await;
    let story = switchyard_infra::ops::render_story(&record);
    assert!(
        story.contains("(read by OCR: the first 3 of 5 pages)"),
        "{story}"
    );
    assert!(!story.contains("SUBPOENA"), "{story}");

    let bucket = stack.local_env("classify").unwrap()["DOCUMENT_BUCKET"].clone();
    let key = format!("documents/{}/1", record.event_id);
    assert_eq!(
        read.kept.as_deref(),
        Some(format!("s3://{bucket}/{key}").as_str())
    );
    assert!(
        story.contains(&format!(", kept at s3://{bucket}/{key}")),
        "{story}"
    );
    let kept = stack
        .aws
        .s3()
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(kept.body.collect().await.unwrap().into_bytes(), scan);

    let record = zendesk_with(
        &stack,
        35602,
        pdf(&stack, "zendesk", "blank.pdf", samples::scanned_pdf()),
    )
    .await;
    assert_eq!(record.status, "in_review", "{record:?}");
    assert_eq!(
        record.reason.as_deref(),
        Some("scanned document, no text layer (OCR found no text on 1 page(s)): \"blank.pdf\"")
    );
    // Once both events are counted, exactly: a document counted twice would show here.
    let counted = wait_for(
        "DocumentsRead for both events",
        Duration::from_secs(10),
        || async {
            let read = switchyard_tests::emf(&stack, "DocumentsRead");
            let kind = |k| switchyard_tests::total(&read, "DocumentsRead", Some(("kind", k)));
            (kind("scanned") >= 1.0 && kind("text") >= 1.0).then(|| (kind("text"), kind("scanned")))
        },
    )
    .await;
    assert_eq!(counted, (1.0, 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_files_need_the_bot_token_refreshed_when_expired_and_jira_limits_the_count() {
    // Counts metrics (the OCR test): one stack at a time in this binary.
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    let stack = LocalStack::start().await.unwrap();
    // The Slack token has expired: the download is refused, the token refreshed, the file read.
    let notice = stack.sandbox.attach(
        "slack",
        "notice.pdf",
        "application/pdf",
        samples::text_pdf(samples::SUBPOENA),
    );
    stack.sandbox.inject(
        "slack",
        switchyard_infra::sandbox::faults::Fault::ExpiredToken,
        1,
    );
    let rotations = stack.sandbox.slack_rotations();
    let hook = fixtures::slack_message(
        &stack.signing.slack,
        "Ev0DOC1",
        "C0SUPPORT",
        "see attached",
        Utc::now(),
    );
    let mut body: Value = serde_json::from_str(&hook.body).unwrap();
    body["event"]["files"] = serde_json::json!([{
        "id": notice.id, "name": notice.name, "mimetype": notice.declared_type,
        "size": notice.size, "url_private_download": notice.url
    }]);
    let record = send(
        &stack,
        fixtures::slack_signed(&stack.signing.slack, body.to_string(), Utc::now()),
    )
    .await;
    assert_eq!(record.documents.len(), 1, "{record:?}");
    assert_eq!(record.documents[0].kind, "text", "{record:?}");
    assert_eq!(stack.sandbox.slack_rotations(), rotations + 1);

    // Six files on one Jira issue: the first five are read, and a person is told why.
    let hook = fixtures::jira_issue_created(
        &stack.signing.jira,
        "doc-jira-1",
        "OPS-77",
        "Exports",
        "attached",
        Utc::now(),
    );
    let mut body: Value = serde_json::from_str(&hook.body).unwrap();
    let files: Vec<Value> = (0..6)
        .map(|i| {
            let a = stack.sandbox.attach(
                "jira",
                &format!("part{i}.txt"),
                "text/plain",
                format!("Export part {i} of the monthly ledger for the finance team").into_bytes(),
            );
            serde_json::json!({"id": a.id, "filename": a.name, "mimeType": a.declared_type,
                               "size": a.size, "content": a.url})
        })
        .collect();
    body["issue"]["fields"]["attachment"] = Value::Array(files);
    let body = body.to_string();
    let sig = switchyard::webhook::signature::hmac_sha256(
        stack.signing.jira.as_bytes(),
        &[body.as_bytes()],
    );
    let mut hook = hook;
    hook.body = body;
    for (k, v) in hook.headers.iter_mut() {
        if k == "x-hub-signature" {
            *v = format!("sha256={}", hex::encode(sig));
        }
    }
    let record = send(&stack, hook).await;
    assert_eq!(record.status, "in_review");
    assert_eq!(
        record.reason.as_deref(),
        Some("6 attachments, over the limit of 5: only the first 5 were read")
    );
    let kinds: Vec<&str> = record.documents.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["text", "text", "text", "text", "text", "skipped"]);
    // Jira's media redirect is followed without the credential too.
    let fetches = stack.sandbox.signed_fetches();
    assert_eq!(fetches.len(), 5, "{fetches:?}");
    assert!(fetches.iter().all(|(_, auth)| !auth), "{fetches:?}");
}

/// classify's document reader as the template configures it, with `overrides`.
fn reader(
    stack: &LocalStack,
    overrides: &[(&str, &str)],
) -> switchyard::handlers::classify::documents::Reader {
    let mut env = stack.local_env("classify").unwrap();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = switchyard::settings::Settings::from_map(env);
    switchyard::handlers::classify::Classify::from_settings(&stack.aws, &settings)
        .unwrap()
        .documents
        .expect("classify reads documents where PACING_TABLE is set")
}

fn far() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(600)
}

fn zendesk_event(files: Vec<Attachment>) -> switchyard::event::Event {
    let mut event: switchyard::event::Event = serde_json::from_value(serde_json::json!({
        "id": "ev-docs", "source": "zendesk", "event_type": "zen:event-type:ticket.attachment_linked_to_comment",
        "delivery_id": "d-docs", "object_id": "35600", "subject": "Documents", "text": null,
        "requester": null, "occurred_at": null, "received_at": "2026-12-06T10:31:00Z", "raw": {}
    }))
    .unwrap();
    event.attachments = files;
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_draw_on_the_connections_shared_budget_and_stay_within_the_size_cap() {
    // Counts metrics (the OCR test): one stack at a time in this binary.
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    let stack = LocalStack::start().await.unwrap();
    // A file declared over the cap is not fetched; one whose body runs past it is cut off.
    let small = reader(&stack, &[("DOCUMENT_MAX_BYTES", "500")]);
    let big = pdf(
        &stack,
        "zendesk",
        "big.pdf",
        samples::text_pdf(samples::SUBPOENA),
    );
    let fetches = stack.sandbox.signed_fetches().len();
    let read = small
        .read(&zendesk_event(vec![big.clone()]), far())
        .await
        .unwrap();
    assert_eq!(read.read[0].kind, "not_fetched");
    let declared = big.size.unwrap();
    assert_eq!(
        read.problem.as_deref(),
        Some(
            format!("document \"big.pdf\" not read: {declared} bytes, over the 500-byte limit")
                .as_str()
        )
    );
    assert_eq!(
        stack.sandbox.signed_fetches().len(),
        fetches,
        "fetched anyway"
    );
    let undeclared = Attachment { size: None, ..big };
    let read = small
        .read(&zendesk_event(vec![undeclared]), far())
        .await
        .unwrap();
    assert_eq!(read.read[0].kind, "not_fetched");
    assert!(
        read.problem
            .as_deref()
            .unwrap()
            .ends_with("larger than the 500-byte limit"),
        "{:?}",
        read.problem
    );

    // One Zendesk call a minute for the credential: the first file takes it, the second must
    // wait, so classify tries the event again later rather than overspend the budget.
    let tight = reader(&stack, &[("RATE_LIMITS", "zendesk=1/minute")]);
    let one = pdf(
        &stack,
        "zendesk",
        "a.pdf",
        samples::text_pdf(samples::SUBPOENA),
    );
    let read = tight
        .read(&zendesk_event(vec![one.clone()]), far())
        .await
        .unwrap();
    assert_eq!(read.read[0].kind, "text");
    let later = tight
        .read(&zendesk_event(vec![one.clone()]), far())
        .await
        .unwrap_err();
    assert!(later.0.contains("no zendesk budget left now"), "{later:?}");

    // Too little of the invocation left to fetch within its timeout: tried again later, not
    // cut off half-way.
    let soon = std::time::Instant::now() + Duration::from_secs(5);
    let later = small
        .read(&zendesk_event(vec![one]), soon)
        .await
        .unwrap_err();
    assert!(
        later.0.contains("too little of this invocation left"),
        "{later:?}"
    );
}
