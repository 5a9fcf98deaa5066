//! The soak's worker kills: when they happen (random moments from a seeded generator, or aimed
//! at the worst one), and what each killed worker held at that moment, read from the emulator's
//! idempotency table and the sandbox's ledger after the worker is dead.
//!
//! The worst moment is after the vendor made an effect and before the worker recorded it: an
//! aimed kill is made by the sandbox's effect hook, which runs after the effect and before the
//! vendor's answer is sent, so the worker dies still waiting for that answer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::events::{is_soak_effect, Planned};
use crate::stack::LocalStack;
use crate::workers::Worker;

/// What a killed worker held when it died.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// classify (it holds messages, never action keys).
    Classify,
    /// act holding no action key.
    Idle,
    /// act holding an action's key, its effect not made (before or during the vendor call).
    Claimed,
    /// act holding an action's key after the vendor made the effect, before act recorded it.
    AfterEffect,
}

impl Window {
    pub fn name(self) -> &'static str {
        match self {
            Window::Classify => "classify",
            Window::Idle => "idle",
            Window::Claimed => "claimed",
            Window::AfterEffect => "after_effect",
        }
    }
}

/// One planned kill: after which sent chunk, and how.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Scheduled {
    pub after_chunk: usize,
    pub how: How,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum How {
    /// SIGKILL this worker (0 classify, 1 act) this many ms after the chunk is sent.
    At { worker: usize, delay_ms: u64 },
    /// Arm the sandbox's hook: act dies at the next soak effect a vendor makes.
    Aimed,
}

/// `kills` kills over `chunks` sent chunks, `aimed` of them aimed, the rest at random moments
/// (two in three hitting act); the same seed gives the same schedule.
pub(super) fn schedule(seed: u64, kills: usize, aimed: usize, chunks: usize) -> Vec<Scheduled> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let chunks = chunks.max(1);
    let mut plan: Vec<Scheduled> = (0..kills)
        .map(|k| Scheduled {
            after_chunk: rng.usize(0..chunks),
            how: if k < aimed {
                How::Aimed
            } else {
                How::At {
                    worker: if rng.usize(0..3) == 0 { 0 } else { 1 },
                    delay_ms: rng.u64(0..1_000),
                }
            },
        })
        .collect();
    plan.sort_by_key(|s| s.after_chunk);
    plan
}

/// The aimed kills' shared state: the live act worker's pid (0 while none may be killed) and
/// how many kills are armed.
#[derive(Default)]
pub(super) struct Aim {
    pid: AtomicU32,
    armed: AtomicUsize,
}

impl Aim {
    /// The sandbox hook: at a soak effect, with a kill armed, SIGKILL act before the answer.
    pub fn hook(self: &Arc<Self>) -> switchyard_sandbox::EffectFn {
        let aim = self.clone();
        Arc::new(move |entry| {
            if !is_soak_effect(entry) {
                return;
            }
            let take = |n: usize| n.checked_sub(1);
            if aim
                .armed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
                .is_err()
            {
                return;
            }
            match aim.pid.swap(0, Ordering::SeqCst) {
                // No live act to kill (it is being restarted): the kill stays armed.
                0 => {
                    aim.armed.fetch_add(1, Ordering::SeqCst);
                }
                // Synchronous, so the vendor's answer leaves only after the worker is dead.
                pid => {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        })
    }

    pub fn arm(&self) {
        self.armed.fetch_add(1, Ordering::SeqCst);
    }

    pub fn armed(&self) -> usize {
        self.armed.load(Ordering::SeqCst)
    }
}

/// The classify and act worker processes, killed and restarted, and what each kill found.
pub(super) struct Workers<'a> {
    stack: &'a LocalStack,
    exe: PathBuf,
    hosting: PathBuf,
    classify: Worker,
    act: Worker,
    /// Keys (with their hold) in progress when the current act started: not its own.
    held_before: HashSet<(String, String)>,
    pub aim: Arc<Aim>,
    pub by_window: BTreeMap<Window, usize>,
    /// Aimed kills noted (found dead), and those that found act holding an unrecorded effect.
    pub aimed_reaped: usize,
    pub aimed_landed: usize,
}

impl<'a> Workers<'a> {
    pub async fn start(
        stack: &'a LocalStack,
        exe: PathBuf,
        hosting: PathBuf,
    ) -> Result<Workers<'a>> {
        let classify = Worker::spawn(&exe, &hosting, "classify", false)?;
        let act = Worker::spawn(&exe, &hosting, "act", false)?;
        let aim = Arc::new(Aim::default());
        aim.pid.store(act.pid(), Ordering::SeqCst);
        Ok(Workers {
            held_before: held_keys(stack).await?.into_keys().collect(),
            stack,
            exe,
            hosting,
            classify,
            act,
            aim,
            by_window: BTreeMap::new(),
            aimed_reaped: 0,
            aimed_landed: 0,
        })
    }

    pub fn kills(&self) -> usize {
        self.by_window.values().sum()
    }

    /// Kill `worker` now (0 classify, 1 act), note what it held, start another.
    pub async fn kill(
        &mut self,
        worker: usize,
        accepted: &HashMap<String, usize>,
        planned: &[Planned],
    ) -> Result<()> {
        if worker == 0 {
            self.classify.kill();
            self.classify = Worker::spawn(&self.exe, &self.hosting, "classify", false)?;
            *self.by_window.entry(Window::Classify).or_default() += 1;
            return Ok(());
        }
        // Taken from the hook first: an aimed kill cannot land on the worker being replaced. A
        // pid already taken means the hook killed this act a moment ago: that kill is noted first.
        if self.aim.pid.swap(0, Ordering::SeqCst) == 0 {
            self.replace_act(true, accepted, planned).await?;
            self.aim.pid.store(0, Ordering::SeqCst);
        }
        self.act.kill();
        self.replace_act(false, accepted, planned).await
    }

    /// Whether the hook killed act (an aimed kill; it takes the pid): then note it and start
    /// another.
    pub async fn reap(
        &mut self,
        accepted: &HashMap<String, usize>,
        planned: &[Planned],
    ) -> Result<()> {
        if self.aim.pid.load(Ordering::SeqCst) == 0 {
            self.replace_act(true, accepted, planned).await?;
        }
        Ok(())
    }

    async fn replace_act(
        &mut self,
        aimed: bool,
        accepted: &HashMap<String, usize>,
        planned: &[Planned],
    ) -> Result<()> {
        self.act.kill(); // waits for it to be gone
        let window = self.window(accepted, planned).await?;
        *self.by_window.entry(window).or_default() += 1;
        if aimed {
            self.aimed_reaped += 1;
            self.aimed_landed += usize::from(window == Window::AfterEffect);
        }
        self.held_before = held_keys(self.stack).await?.into_keys().collect();
        self.act = Worker::spawn(&self.exe, &self.hosting, "act", false)?;
        self.aim.pid.store(self.act.pid(), Ordering::SeqCst);
        Ok(())
    }

    /// What the dead act held: its own keys still in progress, each with or without its effect
    /// in the ledger, skipping keys whose event is recorded finished (a run's last completion is
    /// written on the record and leaves its key in progress).
    async fn window(
        &self,
        accepted: &HashMap<String, usize>,
        planned: &[Planned],
    ) -> Result<Window> {
        let ledger = self.stack.sandbox.ledger();
        let decisions = self.stack.decisions()?;
        let mut window = Window::Idle;
        for (held, event) in held_keys(self.stack).await? {
            if self.held_before.contains(&held) {
                continue;
            }
            let status = decisions.get(&event).await?.map(|r| r.status);
            if status.as_deref().is_some_and(super::terminal) {
                continue;
            }
            let made = accepted
                .get(&event)
                .is_some_and(|i| planned[*i].effect.count(&ledger) > 0);
            window = window.max(if made {
                Window::AfterEffect
            } else {
                Window::Claimed
            });
        }
        Ok(window)
    }
}

/// Action keys held now (in progress, the hold not ended): (key, hold) → their event.
async fn held_keys(stack: &LocalStack) -> Result<HashMap<(String, String), String>> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let table = stack
        .provisioned
        .refs
        .get("IdempotencyTable")
        .context("no IdempotencyTable")?;
    let mut held = HashMap::new();
    let mut start = None;
    loop {
        let page = stack
            .aws
            .ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .context("scanning the idempotency table")?;
        for item in page.items() {
            let text = |k: &str| match item.get(k) {
                Some(AttributeValue::S(s)) | Some(AttributeValue::N(s)) => s.clone(),
                _ => String::new(),
            };
            let hold: i64 = text("in_progress_expiration").parse().unwrap_or(0);
            if text("status") != switchyard::idempotency::STATUS_INPROGRESS || hold <= now_ms {
                continue;
            }
            let key = text("id");
            // `<stage>#<event id>#<action index>`
            let event = key
                .split_once('#')
                .and_then(|(_, rest)| rest.rsplit_once('#'))
                .map(|(event, _)| event.to_owned())
                .unwrap_or_default();
            held.insert((key, text("in_progress_expiration")), event);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_schedule_and_another_seed_another() {
        let a = schedule(7, 20, 7, 125);
        assert_eq!(a, schedule(7, 20, 7, 125));
        assert_ne!(a, schedule(8, 20, 7, 125));
        assert_eq!(a.iter().filter(|s| s.how == How::Aimed).count(), 7);
        assert!(a.windows(2).all(|w| w[0].after_chunk <= w[1].after_chunk));
        assert!(a.iter().all(|s| s.after_chunk < 125));
    }
}
