//! `switchyard bench pacing`: K concurrent workers share one Zendesk credential whose sandbox
//! API allows R requests in any trailing minute (429 beyond). Each worker takes a slot from the
//! shared DynamoDB limiter (moto, serial so conditional writes are atomic as in DynamoDB), then
//! updates a ticket through the real connector over HTTP. A wait longer than the in-function
//! limit is slept here, standing in for act's hand-back through SQS; a 429 holds the shared
//! budget and the item is retried — never dropped.
//!
//! Reported per K: achieved rate / R (over the run), 429s, lost items (failed for any other
//! reason). Then a 429 storm mid-run: how long after it ends the first call succeeds again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use secrecy::SecretString;
use switchyard::connectors::{with_budget_hint, Connector, ConnectorError};
use switchyard::pacing::{Limiter, Limits, Pace, Pacer};
use switchyard::routing::PlannedAction;
use switchyard::secrets::Credential;
use switchyard::vendors::zendesk::outbound::Zendesk;

use crate::emulator::Emulator;
use crate::sandbox::Sandbox;

#[derive(Debug, Default)]
pub struct Run {
    pub workers: usize,
    pub seconds: f64,
    pub done: u64,
    pub rate_limited: u64,
    pub lost: u64,
    /// After a storm: from its end to the first success.
    pub recovery: Option<Duration>,
}

impl Run {
    pub fn ratio(&self, per_minute: u32) -> f64 {
        self.done as f64 / (f64::from(per_minute) * self.seconds / 60.0)
    }
}

struct Bench {
    _emulator: Emulator,
    sandbox: Sandbox,
    limiter: Limiter,
    breaker: switchyard::pacing::Breaker,
    http: reqwest::Client,
}

pub async fn pacing(
    per_minute: u32,
    seconds: u64,
    workers: &[usize],
    storm: Duration,
) -> Result<Vec<Run>> {
    let emulator = Emulator::start_serial()?;
    let config = emulator.sdk_config().await;
    let template = crate::template::Template::load(&crate::repo_root().join("template.yaml"))?;
    let prefix = format!("sy-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let p = crate::provision::provision(&config, &template, &prefix, &HashMap::new()).await?;
    let table = p
        .refs
        .get("PacingTable")
        .context("template has no PacingTable")?;
    let bench = Bench {
        limiter: Limiter::new(aws_sdk_dynamodb::Client::new(&config), table),
        breaker: switchyard::pacing::Breaker::new(aws_sdk_dynamodb::Client::new(&config), table),
        _emulator: emulator,
        sandbox: Sandbox::start().await?,
        http: switchyard::connectors::http_client(),
    };
    bench.sandbox.seed_zendesk_ticket(1, "bench");
    let mut runs = Vec::new();
    for &k in workers {
        runs.push(bench.run(per_minute, seconds, k, None).await?);
    }
    let k = workers.iter().copied().max().unwrap_or(4).min(4);
    runs.push(bench.run(per_minute, seconds, k, Some(storm)).await?);
    Ok(runs)
}

impl Bench {
    async fn run(
        &self,
        per_minute: u32,
        seconds: u64,
        workers: usize,
        storm: Option<Duration>,
    ) -> Result<Run> {
        // A fresh vendor window and a fresh credential (so a fresh shared budget) per run.
        self.sandbox.set_zendesk_rate_limit(Some(per_minute));
        let credential = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let pacer = Pacer {
            limiter: self.limiter.clone(),
            limits: Limits::parse(&format!("zendesk={per_minute}/minute"))
                .map_err(anyhow::Error::msg)?
                .with_documented(&switchyard::vendors::DOCUMENTED),
            breaker: self.breaker.clone(),
        };
        let c = &self.sandbox.credentials;
        let zendesk = Arc::new(Zendesk::new(
            self.http.clone(),
            Credential::ApiToken {
                base_url: self.sandbox.base_url("zendesk"),
                email: c.zendesk_email.clone(),
                api_token: SecretString::from(c.zendesk_token.clone()),
            },
        )?);
        let started = Instant::now();
        let end = started + Duration::from_secs(seconds);
        let storm_window = storm.map(|s| {
            let from = started + Duration::from_secs(seconds) / 3;
            (from, from + s)
        });
        let (done, limited, lost) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let first_after_storm = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (pacer, zendesk, credential) = (pacer.clone(), zendesk.clone(), credential.clone());
            let (done, limited, lost) = (done.clone(), limited.clone(), lost.clone());
            let first_after_storm = first_after_storm.clone();
            tasks.push(tokio::spawn(async move {
                let mut item = 0u64;
                while Instant::now() < end {
                    let action = PlannedAction {
                        json: Default::default(),
                        connector: "zendesk".into(),
                        action: "update_ticket".into(),
                        params: [
                            ("ticket_id".to_owned(), "1".to_owned()),
                            ("comment".to_owned(), format!("worker {w} item {item}")),
                        ]
                        .into(),
                    };
                    match pacer.wait_turn("zendesk", &credential).await {
                        Ok(Pace::Go) => {}
                        // A slot of ours, later: wait for it (`wait_turn` sleeps short waits itself).
                        Ok(Pace::Reserved { at_us }) => {
                            let now = chrono::Utc::now().timestamp_micros();
                            tokio::time::sleep(Duration::from_micros((at_us - now).max(0) as u64))
                                .await;
                        }
                        Ok(Pace::Defer(wait)) => {
                            tokio::time::sleep(
                                wait.min(end.saturating_duration_since(Instant::now())),
                            )
                            .await;
                            continue;
                        }
                        Err(_) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                            item += 1;
                            continue;
                        }
                    }
                    if Instant::now() >= end {
                        break;
                    }
                    // As act does: the answer's remaining budget feeds the shared one.
                    let (result, spacing) =
                        with_budget_hint(zendesk.perform(&action, "bench")).await;
                    if result.is_ok() {
                        let _ = pacer.learn("zendesk", &credential, spacing).await;
                    }
                    match result {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            if let Some((_, storm_end)) = storm_window {
                                let now = Instant::now();
                                let mut first = first_after_storm.lock().expect("lock");
                                if now >= storm_end && first.is_none() {
                                    *first = Some(now);
                                }
                            }
                            item += 1;
                        }
                        Err(ConnectorError::RateLimited { retry_after }) => {
                            limited.fetch_add(1, Ordering::Relaxed);
                            // Same item again once the shared hold is over.
                            let _ = pacer
                                .rate_limited("zendesk", &credential, retry_after)
                                .await;
                        }
                        Err(_) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                            item += 1;
                        }
                    }
                }
            }));
        }
        if let Some((from, until)) = storm_window {
            tokio::time::sleep_until(from.into()).await;
            self.sandbox.zendesk_storm(until - from);
        }
        for t in tasks {
            t.await?;
        }
        let recovery = storm_window.and_then(|(_, storm_end)| {
            first_after_storm
                .lock()
                .expect("lock")
                .map(|t| t.duration_since(storm_end))
        });
        Ok(Run {
            workers,
            seconds: started.elapsed().as_secs_f64().min(seconds as f64),
            done: done.load(Ordering::Relaxed),
            rate_limited: limited.load(Ordering::Relaxed),
            lost: lost.load(Ordering::Relaxed),
            recovery,
        })
    }
}

pub fn render(per_minute: u32, storm: Duration, runs: &[Run]) -> String {
    let mut o = format!(
        "pacing benchmark: one credential, sandbox limit {per_minute} requests per trailing minute\n\
         workers  seconds  done  achieved/R  429s  lost  recovery after a {} s storm\n",
        storm.as_secs()
    );
    for r in runs {
        o.push_str(&format!(
            "{:>7}  {:>7.0}  {:>4}  {:>9.1}%  {:>4}  {:>4}  {}\n",
            r.workers,
            r.seconds,
            r.done,
            100.0 * r.ratio(per_minute),
            r.rate_limited,
            r.lost,
            r.recovery
                .map(|d| format!("{} ms", d.as_millis()))
                .unwrap_or_else(|| "-".into())
        ));
    }
    o
}
