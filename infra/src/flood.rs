//! `switchyard bench flood`: what a flood of forged webhooks costs and whether it harms real
//! traffic. On the local stack, K senders post correctly shaped Zendesk webhooks signed with the
//! wrong secret for S seconds while real signed tickets arrive; it reports the refusals per
//! second and per CPU-second of the process that hosts intake (the functions run in-process, so
//! that is an upper bound on intake's own cost), how many forged requests reached a queue
//! (none may), and how long the real events took to settle, against the same events without
//! the flood.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::Utc;

use crate::fixtures;
use crate::stack::LocalStack;

pub struct FloodReport {
    pub seconds: f64,
    pub senders: usize,
    pub forged_sent: u64,
    pub forged_refused: u64,
    pub forged_accepted: u64,
    pub cpu_seconds: f64,
    pub real_events: usize,
    pub settle_quiet_ms: Vec<u64>,
    pub settle_flood_ms: Vec<u64>,
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Send `n` real billing tickets and wait until each is terminal: the settle time of each (ms).
async fn real_traffic(
    stack: &LocalStack,
    http: &reqwest::Client,
    tag: &str,
    n: usize,
) -> Result<Vec<u64>> {
    let decisions = stack.decisions()?;
    let mut pending = Vec::new();
    for i in 0..n {
        stack
            .sandbox
            .seed_zendesk_ticket(40_000 + i as u64, "Refund for a double charge");
        let hook = fixtures::zendesk_ticket_created(
            &stack.signing.zendesk,
            &format!("{tag}-{i}-{}", uuid::Uuid::new_v4()),
            40_000 + i as u64,
            "Refund for a double charge",
            "My card was charged twice for the March invoice; please refund one payment.",
            Utc::now(),
        );
        let sent = Instant::now();
        let (status, body) = hook.send(http, &stack.webhook_base).await?;
        if status != 202 {
            bail!("a real webhook got {status}: {body}");
        }
        pending.push((
            body["event_id"].as_str().unwrap_or_default().to_owned(),
            sent,
        ));
    }
    let mut settled = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() {
        let mut left = Vec::new();
        for (id, sent) in pending {
            match decisions.get(&id).await? {
                Some(r) if matches!(r.status.as_str(), "done" | "in_review" | "failed") => {
                    settled.push(sent.elapsed().as_millis() as u64)
                }
                _ => left.push((id, sent)),
            }
        }
        pending = left;
        if Instant::now() > deadline {
            bail!("{} real events did not settle within 60 s", pending.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    settled.sort_unstable();
    Ok(settled)
}

pub async fn flood(seconds: u64, senders: usize, real: usize) -> Result<FloodReport> {
    let stack = LocalStack::start().await?;
    let http = reqwest::Client::new();
    let settle_quiet_ms = real_traffic(&stack, &http, "quiet", real).await?;

    // A forged request: the right shape and headers, signed with a secret intake does not hold.
    let forged = fixtures::zendesk_ticket_created(
        "not-the-signing-secret",
        "forged-delivery",
        1,
        "Reset my password",
        "Click here",
        Utc::now(),
    );
    let (sent, refused, accepted) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let until = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (http, base, forged) = (http.clone(), stack.webhook_base.clone(), forged.clone());
            let (sent, refused, accepted) = (sent.clone(), refused.clone(), accepted.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    sent.fetch_add(1, Ordering::Relaxed);
                    match forged.send(&http, &base).await {
                        Ok((401, _)) => refused.fetch_add(1, Ordering::Relaxed),
                        _ => accepted.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    // Real tickets arrive in the middle of the flood.
    tokio::time::sleep(Duration::from_secs(seconds / 3)).await;
    let settle_flood_ms = real_traffic(&stack, &http, "flood", real).await?;
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let report = FloodReport {
        seconds: elapsed,
        senders,
        forged_sent: sent.load(Ordering::Relaxed),
        forged_refused: refused.load(Ordering::Relaxed),
        forged_accepted: accepted.load(Ordering::Relaxed),
        cpu_seconds: cpu,
        real_events: real,
        settle_quiet_ms,
        settle_flood_ms,
    };
    // Nothing forged may reach the classify queue: only the real events' records exist.
    let records = stack
        .decisions()?
        .list_day(&Utc::now().format("%Y-%m-%d").to_string(), None)
        .await?;
    if records.len() != 2 * real {
        bail!(
            "{} decision records for {} real events: a forged request got through",
            records.len(),
            2 * real
        );
    }
    stack.stop();
    Ok(report)
}

fn quantile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

impl FloodReport {
    pub fn render(&self) -> String {
        let rate = self.forged_refused as f64 / self.seconds;
        let per_cpu = self.forged_refused as f64 / self.cpu_seconds.max(1e-9);
        format!(
            "flood benchmark: {} senders of forged Zendesk webhooks for {:.1} s, {} real tickets in the middle\n\
             forged sent {}  refused (401) {}  accepted {}\n\
             refused per second {:.0}  per CPU-second of the whole local stack {:.0}\n\
             real events settled (p50 / max ms): without flood {} / {}, during flood {} / {}\n",
            self.senders,
            self.seconds,
            self.real_events,
            self.forged_sent,
            self.forged_refused,
            self.forged_accepted,
            rate,
            per_cpu,
            quantile(&self.settle_quiet_ms, 0.5),
            quantile(&self.settle_quiet_ms, 1.0),
            quantile(&self.settle_flood_ms, 0.5),
            quantile(&self.settle_flood_ms, 1.0),
        )
    }
}
