//! `switchyard soak`: many signed webhooks through the local stack while classify and act run as
//! worker processes that are SIGKILLed at random moments and restarted, with vendor faults
//! injected; then the decision records and the sandbox's effect ledger are compared.
//!
//! Time is compressed in one way only, and said so: the classify and act queues' visibility
//! timeouts are set to each function's timeout + 10 s (the template has 6x), so work a killed
//! worker held comes back in about a minute rather than nine. Claims still expire at each
//! function's real deadline.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use serde::Serialize;

use crate::fixtures::{self, SignedWebhook};
use crate::sandbox::faults::Fault;
use crate::stack::LocalStack;
use crate::workers::Worker;

#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub events: usize,
    pub kills: usize,
    /// Inject vendor faults (5xx pages, a 429 storm, slow answers, an expired token, Slack posts
    /// and Zendesk comments whose answer is lost after the vendor made them).
    pub faults: bool,
    /// Give up waiting for the pipeline to drain after this long.
    pub settle: Duration,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SoakReport {
    pub events: usize,
    pub accepted: usize,
    /// Redeliveries sent after acceptance, and deliveries sent twice at once.
    pub redeliveries: usize,
    pub concurrent_duplicates: usize,
    pub kills: usize,
    pub faults: usize,
    /// Events in a terminal state, by state (done, in_review, failed).
    pub terminal: usize,
    pub by_state: BTreeMap<String, usize>,
    /// Events with more than one effect, and done events with none.
    pub duplicated: usize,
    pub lost: usize,
    /// Accepted events not terminal when the soak stopped waiting.
    pub in_flight: usize,
    pub seconds: f64,
    /// Every duplicated or lost event, for the reader.
    pub problems: Vec<String>,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sent {} events ({} redeliveries, {} concurrent duplicates), accepted {}",
            self.events, self.redeliveries, self.concurrent_duplicates, self.accepted
        )?;
        writeln!(
            f,
            "{} worker kills (SIGKILL, restarted), {} vendor faults injected",
            self.kills, self.faults
        )?;
        let states: Vec<String> = self
            .by_state
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "terminal {} ({})", self.terminal, states.join(", "))?;
        writeln!(
            f,
            "effects: duplicated {}, lost {}; in flight {}; {:.0} s",
            self.duplicated, self.lost, self.in_flight, self.seconds
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// One soak event: its webhook and how to find its effect in the ledger.
struct Planned {
    hook: SignedWebhook,
    effect: Effect,
}

enum Effect {
    ZendeskTicket(u64),
    SlackPost(String),
}

pub async fn run(cfg: &SoakConfig, exe: &Path, progress: &dyn Fn(&str)) -> Result<SoakReport> {
    let started = Instant::now();
    let stack = LocalStack::start_hosting(&[], &crate::workers::HOSTABLE).await?;
    compress_visibility(&stack).await?;
    let dir = std::env::temp_dir().join(format!("{}-soak", stack.provisioned.prefix));
    std::fs::create_dir_all(&dir)?;
    let hosting = dir.join("hosting.json");
    stack.hosting()?.write(&hosting)?;
    let mut workers = vec![
        Worker::spawn(exe, &hosting, "classify", false)?,
        Worker::spawn(exe, &hosting, "act", false)?,
    ];

    let planned = plan(&stack, cfg.events);
    let mut report = SoakReport {
        events: planned.len(),
        ..SoakReport::default()
    };
    if cfg.faults {
        report.faults = inject_faults(&stack);
    }
    let http = reqwest::Client::new();
    let mut accepted: Vec<(String, usize)> = Vec::new();
    let mut kills_left = cfg.kills;
    let kill_every = (planned.len() / cfg.kills.max(1)).max(1);
    for (chunk_no, chunk) in planned.chunks(8).enumerate() {
        let sends = chunk.iter().enumerate().map(|(j, p)| {
            let i = chunk_no * 8 + j;
            let http = http.clone();
            let base = stack.webhook_base.clone();
            async move {
                // Every 15th delivery arrives twice at once, as vendors' retries sometimes do.
                let twice = i % 15 == 7;
                let first = p.hook.send(&http, &base);
                let (a, b) = if twice {
                    let (a, b) = tokio::join!(first, p.hook.send(&http, &base));
                    (a, Some(b))
                } else {
                    (first.await, None)
                };
                (i, twice, a, b)
            }
        });
        for (i, twice, a, b) in futures::future::join_all(sends).await {
            if twice {
                report.concurrent_duplicates += 1;
            }
            let ids = [Some(a), b]
                .into_iter()
                .flatten()
                .filter_map(|r| r.ok())
                .filter(|(status, _)| matches!(status, 200 | 202))
                .filter_map(|(_, body)| body["event_id"].as_str().map(str::to_owned))
                .collect::<HashSet<_>>();
            if let Some(id) = ids.into_iter().next() {
                accepted.push((id, i));
            }
        }
        // Every 10th event is redelivered after it was accepted (a vendor retry).
        for p in chunk.iter().step_by(10) {
            let _ = p.hook.send(&http, &stack.webhook_base).await;
            report.redeliveries += 1;
        }
        let sent = (chunk_no + 1) * 8;
        if kills_left > 0 && sent % kill_every < 8 {
            kill_one(&mut workers, exe, &hosting, cfg.kills - kills_left)?;
            kills_left -= 1;
            report.kills += 1;
        }
        progress(&format!("sent {sent} of {}", planned.len()));
    }
    // Kills left over land while the pipeline drains.
    while kills_left > 0 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        kill_one(&mut workers, exe, &hosting, cfg.kills - kills_left)?;
        kills_left -= 1;
        report.kills += 1;
    }
    report.accepted = accepted.len();

    let decisions = stack.decisions()?;
    let deadline = Instant::now() + cfg.settle;
    let mut states = BTreeMap::new();
    loop {
        states.clear();
        for (id, _) in &accepted {
            let status = decisions
                .get(id)
                .await?
                .map(|r| r.status)
                .unwrap_or_else(|| "missing".into());
            states.insert(id.clone(), status);
        }
        let open = states.values().filter(|s| !terminal(s)).count();
        progress(&format!(
            "{open} of {} events still in flight",
            accepted.len()
        ));
        if open == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let ledger = stack.sandbox.ledger();
    for (id, i) in &accepted {
        let status = &states[id];
        if terminal(status) {
            report.terminal += 1;
            *report.by_state.entry(status.clone()).or_default() += 1;
        } else {
            report.in_flight += 1;
        }
        let effects = match &planned[*i].effect {
            Effect::ZendeskTicket(t) => ledger
                .iter()
                .filter(|e| e.operation == "update_ticket" && e.object_id == t.to_string())
                .count(),
            Effect::SlackPost(marker) => ledger
                .iter()
                .filter(|e| {
                    e.operation == "chat.postMessage"
                        && e.object_id == "C0INCIDENTS"
                        && e.detail["text"]
                            .as_str()
                            .is_some_and(|t| t.contains(marker.as_str()))
                })
                .count(),
        };
        let what = match &planned[*i].effect {
            Effect::ZendeskTicket(t) => format!("zendesk comment on ticket {t}"),
            Effect::SlackPost(marker) => format!("slack post {marker}"),
        };
        if effects > 1 {
            report.duplicated += 1;
            // What act recorded of each attempt: where a second effect came from.
            let attempts: Vec<String> = decisions
                .get(id)
                .await?
                .map(|r| r.attempts)
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    let text = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
                    format!("{} {} {}", text("action"), text("status"), text("error"))
                })
                .collect();
            report.problems.push(format!(
                "event {id}: {effects} effects ({what}; {status}); attempts: {}",
                attempts.join(" | ")
            ));
        }
        if effects == 0 && status == "done" {
            report.lost += 1;
            report
                .problems
                .push(format!("event {id}: done but no effect ({what})"));
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    drop(workers);
    stack.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

fn terminal(status: &str) -> bool {
    matches!(status, "done" | "in_review" | "failed" | "resolved")
}

/// Half billing tickets from Zendesk (one comment on that ticket), half outage reports from
/// Slack (one post to #incidents naming the report).
fn plan(stack: &LocalStack, n: usize) -> Vec<Planned> {
    let now = Utc::now();
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                let ticket = 60_000 + i as u64;
                stack
                    .sandbox
                    .seed_zendesk_ticket(ticket, "Refund for a double charge");
                Planned {
                    hook: fixtures::zendesk_ticket_created(
                        &stack.signing.zendesk,
                        &format!("01SOAK{i:020}"),
                        ticket,
                        "Refund for a double charge",
                        "My card was charged twice for the March invoice; please refund one payment.",
                        now,
                    ),
                    effect: Effect::ZendeskTicket(ticket),
                }
            } else {
                let marker = format!("[soak {i}]");
                Planned {
                    hook: fixtures::slack_message(
                        &stack.signing.slack,
                        &format!("EvSoak{i}"),
                        "C0SUPPORT",
                        &format!("Checkout is down with 500 errors {marker}"),
                        now,
                    ),
                    effect: Effect::SlackPost(marker),
                }
            }
        })
        .collect()
}

fn inject_faults(stack: &LocalStack) -> usize {
    let s = &stack.sandbox;
    s.inject("zendesk", Fault::ServerError(503), 4);
    s.inject("slack", Fault::ServerError(502), 4);
    s.inject("slack", Fault::Slow(Duration::from_millis(1500)), 3);
    s.inject("zendesk", Fault::Slow(Duration::from_millis(1500)), 3);
    s.inject("slack", Fault::ExpiredToken, 1);
    // Writes whose answer is lost after the vendor made them: found again by their key (Slack
    // message metadata, the Zendesk audit's custom metadata), not made twice.
    s.inject("slack", Fault::LostAnswer, 3);
    s.inject("zendesk", Fault::LostAnswer, 3);
    s.zendesk_storm(Duration::from_secs(3));
    4 + 4 + 3 + 3 + 1 + 3 + 3 + 1
}

fn kill_one(workers: &mut [Worker], exe: &Path, hosting: &Path, n: usize) -> Result<()> {
    // Two of three kills hit act (it holds claims and vendor calls), one classify.
    let which = if n % 3 == 2 { 0 } else { 1 };
    let function = workers[which].function.clone();
    workers[which].kill();
    workers[which] = Worker::spawn(exe, hosting, &function, false)?;
    Ok(())
}

async fn compress_visibility(stack: &LocalStack) -> Result<()> {
    for (queue, function) in [("ClassifyQueue", "classify"), ("ActQueue", "act")] {
        let timeout = stack.template.function(function)?.timeout_secs;
        stack
            .aws
            .sqs
            .set_queue_attributes()
            .queue_url(stack.provisioned.queue_url(queue)?)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                (timeout + 10).to_string(),
            )
            .send()
            .await
            .with_context(|| format!("setting {queue}'s visibility timeout"))?;
    }
    Ok(())
}
