//! `switchyard soak`: many signed webhooks through the local stack while classify and act run as
//! worker processes that are SIGKILLed and restarted, with vendor faults injected; then the
//! decision records and the sandbox's effect ledger are compared. It reports what happened, not
//! what it planned: faults as the sandbox served them, kills by what the killed worker held
//! (`kills`), every accepted event without its effect as lost whatever its state.
//!
//! Time is compressed in one way only, and said so: the classify and act queues' visibility
//! timeouts are set to each function's timeout + 10 s (the template has 6x), so work a killed
//! worker held comes back in about a minute rather than nine. Claims still expire at each
//! function's real deadline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use crate::stack::LocalStack;

mod events;
mod kills;

use kills::{How, Workers};

#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub events: usize,
    pub kills: usize,
    /// How many of the kills are aimed at the worst moment (act holding an effect the vendor
    /// made and it has not recorded); `None`: a third, rounded up.
    pub aimed: Option<usize>,
    /// The seed of the kill schedule; `None`: one from the clock (printed, to replay the plan).
    pub seed: Option<u64>,
    /// Inject vendor faults (5xx pages, a 429 storm, slow answers, an expired token, Slack posts
    /// and Zendesk comments whose answer is lost after the vendor made them).
    pub faults: bool,
    /// Give up waiting for the pipeline to drain after this long.
    pub settle: Duration,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SoakReport {
    /// The kill schedule's seed: `--seed` replays the same plan (the moments, not the timing).
    pub seed: u64,
    pub events: usize,
    pub accepted: usize,
    /// Events intake refused, each with its status and reason.
    pub refused: Vec<String>,
    /// Events neither accepted nor refused (no answer from intake).
    pub unaccounted: usize,
    /// Redeliveries sent after acceptance, and deliveries sent twice at once.
    pub redeliveries: usize,
    pub concurrent_duplicates: usize,
    /// Kills made, and by what the killed worker held (`classify`, `idle`, `claimed`,
    /// `after_effect`).
    pub kills: usize,
    pub kills_by_window: BTreeMap<String, usize>,
    /// Kills aimed at the worst moment, and those found to have landed there.
    pub aimed: usize,
    pub aimed_landed: usize,
    /// Faults queued, and requests that met one, by `"<vendor> <kind>"`.
    pub faults_injected: usize,
    pub faults_served: BTreeMap<String, usize>,
    /// Events in a terminal state, by state (done, in_review, failed).
    pub terminal: usize,
    pub by_state: BTreeMap<String, usize>,
    /// Events with more than one effect; accepted events without their effect, whatever state.
    pub duplicated: usize,
    pub lost: usize,
    /// Accepted events not terminal when the soak stopped waiting.
    pub in_flight: usize,
    pub seconds: f64,
    /// Every duplicated or lost event, and every event ending failed or in review, with why.
    pub problems: Vec<String>,
}

impl SoakReport {
    /// Every sent event accounted for, nothing duplicated, lost or left in flight, and every
    /// aimed kill landed where it was aimed.
    pub fn clean(&self) -> bool {
        self.unaccounted == 0
            && self.accepted + self.refused.len() == self.events
            && self.duplicated == 0
            && self.lost == 0
            && self.in_flight == 0
            && self.aimed_landed >= self.aimed
    }

    fn served(&self) -> usize {
        self.faults_served.values().sum()
    }
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "seed {} (replay the plan with --seed {})",
            self.seed, self.seed
        )?;
        writeln!(
            f,
            "sent {} events ({} redeliveries, {} concurrent duplicates): accepted {}, refused {}, unaccounted {}",
            self.events,
            self.redeliveries,
            self.concurrent_duplicates,
            self.accepted,
            self.refused.len(),
            self.unaccounted
        )?;
        writeln!(
            f,
            "{} worker kills ({}); {} aimed after a vendor's effect, {} landed there",
            self.kills,
            list(&self.kills_by_window),
            self.aimed,
            self.aimed_landed
        )?;
        writeln!(
            f,
            "{} vendor faults served ({}); {} queued",
            self.served(),
            list(&self.faults_served),
            self.faults_injected
        )?;
        writeln!(f, "terminal {} ({})", self.terminal, list(&self.by_state))?;
        writeln!(
            f,
            "effects: duplicated {}, lost {}; in flight {}; {:.0} s",
            self.duplicated, self.lost, self.in_flight, self.seconds
        )?;
        for p in self.refused.iter().chain(&self.problems) {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

const CHUNK: usize = 8;

pub async fn run(cfg: &SoakConfig, exe: &Path, progress: &dyn Fn(&str)) -> Result<SoakReport> {
    let started = Instant::now();
    let stack = LocalStack::start_hosting(&[], &crate::workers::HOSTABLE).await?;
    compress_visibility(&stack).await?;
    let dir = std::env::temp_dir().join(format!("{}-soak", stack.provisioned.prefix));
    std::fs::create_dir_all(&dir)?;
    let hosting = dir.join("hosting.json");
    stack.hosting()?.write(&hosting)?;
    let mut workers = Workers::start(&stack, exe.to_owned(), hosting).await?;
    stack.sandbox.on_effect(Some(workers.aim.hook()));

    let planned = events::plan(&stack, cfg.events);
    let chunks = planned.len().div_ceil(CHUNK);
    let seed = cfg.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let aimed = cfg.aimed.unwrap_or(cfg.kills.div_ceil(3)).min(cfg.kills);
    let mut schedule = kills::schedule(seed, cfg.kills, aimed, chunks)
        .into_iter()
        .peekable();
    let mut report = SoakReport {
        seed,
        events: planned.len(),
        aimed,
        ..SoakReport::default()
    };
    if cfg.faults {
        report.faults_injected = events::inject_faults(&stack);
    }
    let http = reqwest::Client::new();
    // Accepted event id → its planned index.
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for (chunk_no, chunk) in planned.chunks(CHUNK).enumerate() {
        if cfg.faults && chunk_no == chunks / 2 {
            events::storm(&stack);
        }
        let sends = chunk.iter().enumerate().map(|(j, p)| {
            let i = chunk_no * CHUNK + j;
            let http = http.clone();
            let base = stack.webhook_base.clone();
            let hook = p.delivery(&stack);
            async move {
                // Every 15th delivery arrives twice at once, as vendors' retries sometimes do.
                let twice = i % 15 == 7;
                let first = hook.send(&http, &base);
                let (a, b) = if twice {
                    let (a, b) = tokio::join!(first, hook.send(&http, &base));
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
            let answers: Vec<_> = [Some(a), b].into_iter().flatten().collect();
            let ids = answers
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .filter(|(status, _)| matches!(status, 200 | 202))
                .filter_map(|(_, body)| body["event_id"].as_str().map(str::to_owned))
                .collect::<HashSet<_>>();
            if let Some(id) = ids.into_iter().next() {
                accepted.insert(id, i);
            } else if let Some((status, body)) = answers.iter().find_map(|r| r.as_ref().ok()) {
                report
                    .refused
                    .push(format!("delivery {i}: refused with {status}: {body}"));
            } else {
                report.unaccounted += 1;
            }
        }
        // Every 10th event is redelivered after it was accepted (a vendor retry).
        for p in chunk.iter().step_by(10) {
            let _ = p.delivery(&stack).send(&http, &stack.webhook_base).await;
            report.redeliveries += 1;
        }
        workers.reap(&accepted, &planned).await?;
        while let Some(kill) = schedule.next_if(|k| k.after_chunk == chunk_no) {
            match kill.how {
                How::Aimed => workers.aim.arm(),
                How::At { worker, delay_ms } => {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    workers.kill(worker, &accepted, &planned).await?;
                }
            }
        }
        progress(&format!(
            "sent {} of {}",
            (chunk_no + 1) * CHUNK,
            planned.len()
        ));
    }
    report.accepted = accepted.len();

    let decisions = stack.decisions()?;
    let deadline = Instant::now() + cfg.settle;
    let mut records = BTreeMap::new();
    loop {
        workers.reap(&accepted, &planned).await?;
        records.clear();
        for id in accepted.keys() {
            records.insert(id.clone(), decisions.get(id).await?);
        }
        let open = records
            .values()
            .filter(|r| !r.as_ref().is_some_and(|r| terminal(&r.status)))
            .count();
        progress(&format!(
            "{open} of {} events still in flight",
            accepted.len()
        ));
        // Armed kills wait for effects: an open pipeline still makes some.
        if (open == 0 && workers.aim.armed() == 0) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stack.sandbox.on_effect(None);
    workers.reap(&accepted, &planned).await?;
    report.kills = workers.kills();
    report.aimed_landed = workers.aimed_landed;
    report.kills_by_window = workers
        .by_window
        .iter()
        .map(|(w, n)| (w.name().to_owned(), *n))
        .collect();
    report.faults_served = stack.sandbox.faults_served();

    let ledger = stack.sandbox.ledger();
    for (id, record) in &records {
        let status = record.as_ref().map_or("missing", |r| r.status.as_str());
        if terminal(status) {
            report.terminal += 1;
            *report.by_state.entry(status.to_owned()).or_default() += 1;
        } else {
            report.in_flight += 1;
        }
        let effect = &planned[accepted[id]].effect;
        let effects = effect.count(&ledger);
        let what = effect.describe();
        let why = record.as_ref().map(why).unwrap_or_default();
        if effects > 1 {
            report.duplicated += 1;
            report.problems.push(format!(
                "event {id}: {effects} effects ({what}; {status}); {why}"
            ));
        }
        if effects == 0 {
            report.lost += 1;
            report
                .problems
                .push(format!("event {id}: no effect ({what}); {status}: {why}"));
        } else if matches!(status, "failed" | "in_review") {
            report.problems.push(format!("event {id}: {status}: {why}"));
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

/// Why an event stands where it does: its record's reason and each attempt act recorded.
fn why(r: &switchyard::decisions::DecisionRecord) -> String {
    let attempts: Vec<String> = r
        .attempts
        .iter()
        .map(|a| {
            let text = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            format!("{} {} {}", text("action"), text("status"), text("error"))
                .trim_end()
                .to_owned()
        })
        .collect();
    format!(
        "reason: {}; attempts: {}",
        r.reason.as_deref().unwrap_or("none"),
        attempts.join(" | ")
    )
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
