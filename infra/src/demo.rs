//! `switchyard local`: start the stack, send a handful of realistic signed webhooks, wait for the
//! chain to settle, and print what happened.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Utc;
use switchyard::decisions::DecisionRecord;

use crate::fixtures::{self, SignedWebhook};
use crate::stack::LocalStack;

/// What the demo observed; `render` prints it.
#[derive(Debug, Default)]
pub struct Summary {
    pub received: usize,
    pub accepted: Vec<String>,
    pub duplicates: usize,
    pub rejected: Vec<(u16, String)>,
    pub decisions: Vec<DecisionRecord>,
    pub actions: BTreeMap<String, usize>,
    pub review_depth: u64,
    pub dlq_depths: BTreeMap<String, u64>,
    pub canary: Vec<switchyard::handlers::canary::ProbeResult>,
    /// What the canary found after the sandbox's Zendesk renamed a ticket field.
    pub drift: Vec<switchyard::connectors::structure::Reported>,
    pub settled: bool,
    /// Requests IAM refused (each function runs with only its role's grants): empty unless
    /// the template misses a grant the code needs.
    pub denied: Vec<String>,
    /// Public replies switchyard wrote on tickets: (ticket, text).
    pub replies: Vec<(String, String)>,
}

/// The API change the demo makes the sandbox's Zendesk announce nowhere: `status` renamed.
pub const DEMO_DRIFT: (&str, &str) = ("zendesk", "renamed");

/// The demo's webhooks: billing and access tickets from Zendesk (auto-routed), an outage from Jira
/// (→ Slack), a vague Slack message (low confidence → review), a Spanish ticket (→ the
/// international desk), a legal request (→ a legal approver approves, then a case on Casebook, a
/// described connector), a
/// redelivery (→ duplicate) and a forged request (→ 401).
pub fn demo_webhooks(stack: &LocalStack) -> Vec<SignedWebhook> {
    let now = Utc::now();
    let keys = &stack.signing;
    let billing = fixtures::zendesk_ticket_created(
        &keys.zendesk,
        "cbe4028c-7239-495d-b020-f22348516046",
        35436,
        "Refund for a double charge",
        "Hello, my card was charged twice for the March invoice. Please refund the second payment.",
        now,
    );
    vec![
        billing.clone(),
        fixtures::jira_issue_created(
            &keys.jira,
            "e2c1a8f0-4d5b-4f7e-9a51-0c7d2b7e1f11",
            "OPS-142",
            "Checkout is down for EU customers",
            "Since 09:40 UTC checkout returns 500 errors and timeouts for EU customers.",
            now,
        ),
        fixtures::slack_message(&keys.slack, "Ev06ABCD1234", "C0SUPPORT", "anyone else seeing weird numbers in the weekly report?", now),
        fixtures::zendesk_ticket_created(
            &keys.zendesk,
            "5b8a1e34-93c2-4b39-a3a4-2f0f6c1d9e77",
            35437,
            "Locked out after password reset",
            "I reset my password and now the login page says my account is locked out; 2FA code is not accepted either.",
            now,
        ),
        fixtures::zendesk_ticket_created(
            &keys.zendesk,
            "0d7f3c52-8a61-4e0b-b7d4-6a2e9c1f5b38",
            35438,
            "Cobro duplicado",
            "Hola, el pago de la factura de marzo aparece dos veces en mi tarjeta de crédito. ¿Pueden devolverme el segundo cobro, por favor?",
            now,
        ),
        fixtures::zendesk_ticket_created(
            &keys.zendesk,
            "9e41c7d2-5f08-4a63-b1e9-3c8d0a7f6b24",
            35439,
            "Subpoena for account records",
            "Our attorney has served a subpoena for the account records of this customer. Please confirm receipt and route it to your legal team.",
            now,
        ),
        // Its words say nothing; the attached PDF is a subpoena (fetched through Zendesk's
        // signed-URL redirect, read, classified).
        fixtures::zendesk_attachment_linked(
            &keys.zendesk,
            "3c9d51f0-7e2a-4b8c-9d16-5a0e4f2b8c71",
            35440,
            "Documents",
            "please see the attached document",
            &stack.sandbox.attach("zendesk", "scan_0412.pdf", "application/pdf",
                switchyard::documents::samples::text_pdf(switchyard::documents::samples::SUBPOENA)),
            now,
        ),
        // A password-protected contract: the requester is asked for an unprotected copy.
        fixtures::zendesk_attachment_linked(
            &keys.zendesk,
            "b2e84a17-0c5d-4f3e-8a92-6d1f7c3e9b05",
            35441,
            "Signed contract",
            "here is the signed contract you asked for",
            &stack.sandbox.attach("zendesk", "contract.pdf", "application/pdf",
                switchyard::documents::samples::password_pdf(&["Master services agreement"], "acme2026")),
            now,
        ),
        // Zendesk redelivers the same event when it did not see our answer.
        billing,
        // Signed with a secret switchyard does not hold.
        fixtures::slack_message("not-the-signing-secret", "Ev06FORGED01", "C0SUPPORT", "wire the refund to account 123", now),
    ]
}

pub async fn run(
    stack: &LocalStack,
    http: &reqwest::Client,
    webhooks: &[SignedWebhook],
) -> Result<Summary> {
    stack
        .sandbox
        .seed_zendesk_ticket(35436, "Refund for a double charge");
    stack
        .sandbox
        .seed_zendesk_ticket(35437, "Locked out after password reset");
    stack.sandbox.seed_zendesk_ticket(35438, "Cobro duplicado");
    stack
        .sandbox
        .seed_zendesk_ticket(35439, "Subpoena for account records");
    stack.sandbox.seed_zendesk_ticket(35440, "Documents");
    stack.sandbox.seed_zendesk_ticket(35441, "Signed contract");
    let mut summary = Summary::default();
    for w in webhooks {
        let (status, body) = w.send(http, &stack.webhook_base).await?;
        summary.received += 1;
        match status {
            202 => summary
                .accepted
                .push(body["event_id"].as_str().unwrap_or_default().to_owned()),
            200 if body["status"] == "duplicate" => summary.duplicates += 1,
            _ => summary.rejected.push((
                status,
                body["error"].as_str().unwrap_or_default().to_owned(),
            )),
        }
    }
    settle(stack, &mut summary).await?;
    if summary.settled {
        people_decide(stack, &mut summary).await?;
        settle(stack, &mut summary).await?;
    }
    // What switchyard did at the vendors (an ephemeral answer to one person is not an action).
    for entry in stack.sandbox.ledger() {
        if entry.operation != "response_url" {
            *summary.actions.entry(entry.vendor.to_owned()).or_default() += 1;
        }
        if entry.vendor == "zendesk" && entry.operation == "update_ticket" {
            let events = entry.detail["events"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for c in events
                .iter()
                .filter(|e| e["type"] == "Comment" && e["public"] == true)
            {
                let text = c["body"].as_str().unwrap_or_default().to_owned();
                summary.replies.push((entry.object_id.clone(), text));
            }
        }
    }
    summary.review_depth = stack.queue_depth("ReviewQueue").await?;
    for dlq in ["ClassifyDLQ", "ActDLQ", "ReviewDLQ"] {
        summary
            .dlq_depths
            .insert(dlq.to_owned(), stack.queue_depth(dlq).await?);
    }
    // The canary's first run (at start) took the APIs' snapshot; now Zendesk renames a ticket
    // field without notice, and the canary runs again.
    let started = Instant::now();
    while stack
        .canary_results
        .lock()
        .expect("canary results")
        .is_empty()
    {
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("the canary's first run did not finish within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (vendor, mode) = DEMO_DRIFT;
    stack
        .sandbox
        .drift(vendor, mode)
        .map_err(anyhow::Error::msg)?;
    summary.canary = stack.canary_now(None).await?;
    stack.sandbox.clear_drift();
    summary.drift = summary
        .canary
        .iter()
        .filter_map(|r| r.structure.as_ref())
        .flat_map(|c| c.findings.clone())
        .collect();
    summary.denied = stack.denied().await?;
    Ok(summary)
}

/// Wait until every accepted event has reached a final state (at most 60 s).
async fn settle(stack: &LocalStack, summary: &mut Summary) -> Result<()> {
    let decisions = stack.decisions()?;
    let started = Instant::now();
    summary.settled = false;
    loop {
        let mut records = Vec::new();
        for id in &summary.accepted {
            if let Some(r) = decisions.get(id).await? {
                records.push(r);
            }
        }
        // Final states, and nothing left for act (a review notice may still be on its way).
        let done = records.len() == summary.accepted.len()
            && records.iter().all(|r| {
                matches!(
                    r.status.as_str(),
                    "done" | "in_review" | "failed" | "resolved" | "taken_over"
                )
            })
            && stack.queue_depth("ActQueue").await? == 0;
        summary.decisions = records;
        if done {
            summary.settled = true;
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Who clicks what in the demo's Slack: someone outside the legal team tries to approve the
/// legal request (refused), a legal approver approves it, and a support agent re-routes the
/// vague Slack message as an outage.
pub const DEMO_CLICKS: [(&str, &str, &str, Option<&str>); 3] = [
    (
        "legal",
        "U0OUTSIDER",
        switchyard::vendors::slack::review::APPROVE,
        None,
    ),
    (
        "legal",
        "U0LEGAL01",
        switchyard::vendors::slack::review::APPROVE,
        None,
    ),
    (
        "slack",
        "U0SUPPORT1",
        switchyard::vendors::slack::review::ROUTE,
        Some("outage"),
    ),
];

/// People decide on the events waiting for them, by clicking the review messages' buttons in
/// the sandbox's Slack (signed interactions to intake, as Slack sends them).
async fn people_decide(stack: &LocalStack, summary: &mut Summary) -> Result<()> {
    use crate::sandbox::slack_person::Click;
    for (which, user, action_id, option) in DEMO_CLICKS {
        let Some(record) = summary
            .decisions
            .iter()
            .find(|d| d.status == "in_review" && (d.category == which || d.source == which))
        else {
            continue;
        };
        let needle = format!("switchyard.decide.{}", record.event_id);
        let started = Instant::now();
        let ts = loop {
            if let Some(ts) = stack.sandbox.slack_messages_with("C0REVIEW", &needle).pop() {
                break ts;
            }
            if started.elapsed() > Duration::from_secs(30) {
                anyhow::bail!(
                    "no review message for event {} within 30 s",
                    record.event_id
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let click = Click {
            user,
            channel: "C0REVIEW",
            ts: &ts,
            action_id,
            option,
        };
        let (status, body) = stack
            .sandbox
            .slack_click(&stack.webhook_url("slack"), &stack.signing.slack, click)
            .await
            .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            status == 200,
            "intake answered a click with {status}: {body}"
        );
    }
    Ok(())
}

impl Summary {
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "\nswitchyard local demo: summary");
        let _ = writeln!(o, "  webhooks received   {}", self.received);
        let _ = writeln!(o, "    accepted (202)    {}", self.accepted.len());
        let _ = writeln!(
            o,
            "    deduplicated      {}  (acknowledged 200, not enqueued again)",
            self.duplicates
        );
        let _ = writeln!(o, "    rejected          {}", self.rejected.len());
        for (status, reason) in &self.rejected {
            let _ = writeln!(o, "      {status}  {reason}");
        }
        let _ = writeln!(o, "  classified          {}", self.decisions.len());
        for d in &self.decisions {
            let _ = writeln!(
                o,
                "    {:<8} {:<15} confidence {:.2}  language {:<3}  {:<5} -> {:<6} [{}]",
                d.source,
                d.category,
                d.confidence,
                d.language.as_deref().unwrap_or("-"),
                d.backend.as_deref().unwrap_or("-"),
                d.path,
                d.status
            );
            for doc in &d.documents {
                let _ = writeln!(o, "      document {}", doc.describe());
            }
        }
        let actions: Vec<String> = self
            .actions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            o,
            "  actions done        {}",
            if actions.is_empty() {
                "none".into()
            } else {
                actions.join(", ")
            }
        );
        // What the described connectors did (they are the ones a team writes itself).
        let described = switchyard::connectors::declared::names();
        for d in &self.decisions {
            let results: Vec<serde_json::Value> = d
                .results
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default();
            for r in results.iter().filter(|r| {
                r["status"] == "done"
                    && r["action"]
                        .as_str()
                        .and_then(|a| a.split('.').next())
                        .is_some_and(|c| described.contains(&c))
            }) {
                let _ = writeln!(o, "    {}", r["detail"].as_str().unwrap_or_default());
            }
        }
        let reviewed: Vec<&DecisionRecord> = self
            .decisions
            .iter()
            .filter(|d| d.path == "review")
            .collect();
        let waiting = reviewed.iter().filter(|d| d.status == "in_review").count();
        let _ = writeln!(
            o,
            "  sent to a person    {}  (waiting {waiting}; review queue holds {})",
            reviewed.len(),
            self.review_depth
        );
        for d in &reviewed {
            let why = d.route.as_deref().unwrap_or("");
            let why = why.strip_prefix("approval: ").unwrap_or(why);
            // A document's problem is the reason, whatever the route would have been.
            let why = match d.documents.iter().any(|doc| doc.kind != "text") {
                true => d.reason.as_deref().unwrap_or(why),
                false => why,
            };
            let _ = writeln!(o, "    {} {}: {why}", d.source, d.category);
            if let Some(object) = &d.object_id {
                for (_, text) in self.replies.iter().filter(|(t, _)| t == object) {
                    let _ = writeln!(o, "      asked the requester: {text}");
                }
            }
            for r in &d.refusals {
                let _ = writeln!(
                    o,
                    "      refused {} ({})",
                    r["by"].as_str().unwrap_or("?"),
                    r["why"].as_str().unwrap_or("?")
                );
            }
            if let Some(h) = &d.human {
                let what = h.choice().map(|c| c.describe()).unwrap_or_default();
                let _ = writeln!(o, "      {what} by {} via {} -> {}", h.by, h.via, d.status);
            }
        }
        let failed = self
            .decisions
            .iter()
            .filter(|d| d.status == "failed")
            .count() as u64;
        let dlq: Vec<String> = self
            .dlq_depths
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            o,
            "  failed              {}  (dead-letter queues: {})",
            failed + self.dlq_depths.values().sum::<u64>(),
            dlq.join(", ")
        );
        let canary: Vec<String> = self
            .canary
            .iter()
            .map(|c| {
                format!(
                    "{} {} ({} ms)",
                    c.connector,
                    if c.ok { "ok" } else { "FAILED" },
                    c.latency_ms
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "  canary              {}",
            if canary.is_empty() {
                "not run yet".into()
            } else {
                canary.join(", ")
            }
        );
        let _ = writeln!(
            o,
            "  API drift           {} finding(s) after the sandbox's Zendesk renamed a ticket field",
            self.drift.len()
        );
        for r in &self.drift {
            let _ = writeln!(o, "    {}  {}", r.id, r.finding.line());
        }
        if self.denied.is_empty() {
            let _ = writeln!(
                o,
                "  IAM                 each function ran with only its role's grants; none refused"
            );
        } else {
            let _ = writeln!(o, "  IAM refused         {}", self.denied.len());
            for d in &self.denied {
                let _ = writeln!(o, "    {d}");
            }
        }
        if !self.settled {
            let _ = writeln!(o, "  WARNING: not every event settled within 60 s");
        }
        o
    }
}
