//! What the soak sends and what it counts: half billing tickets from Zendesk (one comment on that
//! ticket), half outage reports from Slack (one post to #incidents naming the report), the vendor
//! faults, and each event's effects in the sandbox's ledger.

use std::time::Duration;

use chrono::Utc;
use switchyard_sandbox::LedgerEntry;

use crate::fixtures::{self, SignedWebhook};
use crate::sandbox::faults::Fault;
use crate::stack::LocalStack;

/// One soak event: its webhook and how to find its effect in the ledger.
pub(super) struct Planned {
    pub hook: SignedWebhook,
    pub effect: Effect,
}

impl Planned {
    /// The delivery as its vendor sends it now: the same body, signed at this moment. Vendors
    /// sign each delivery attempt; signed once at plan time, a long run's later deliveries would
    /// be refused as stale (they were: 64 of 1,000 came 301 s after the plan).
    pub fn delivery(&self, stack: &LocalStack) -> SignedWebhook {
        let mut hook = self.hook.clone();
        let now = Utc::now();
        if hook.source == "zendesk" {
            let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            for (name, value) in &mut hook.headers {
                if name == "x-zendesk-webhook-signature-timestamp" {
                    *value = at.clone();
                }
            }
            let body = hook.body.clone();
            fixtures::resign_zendesk(&mut hook, &stack.signing.zendesk, body);
            hook
        } else {
            fixtures::slack_signed(&stack.signing.slack, hook.body, now)
        }
    }
}

pub(super) enum Effect {
    ZendeskTicket(u64),
    SlackPost(String),
}

impl Effect {
    /// Whether `entry` is this event's effect.
    pub fn is(&self, entry: &LedgerEntry) -> bool {
        match self {
            Effect::ZendeskTicket(t) => {
                entry.operation == "update_ticket" && entry.object_id == t.to_string()
            }
            Effect::SlackPost(marker) => {
                entry.operation == "chat.postMessage"
                    && entry.object_id == "C0INCIDENTS"
                    && entry.detail["text"]
                        .as_str()
                        .is_some_and(|t| t.contains(marker.as_str()))
            }
        }
    }

    pub fn count(&self, ledger: &[LedgerEntry]) -> usize {
        ledger.iter().filter(|e| self.is(e)).count()
    }

    pub fn describe(&self) -> String {
        match self {
            Effect::ZendeskTicket(t) => format!("zendesk comment on ticket {t}"),
            Effect::SlackPost(marker) => format!("slack post {marker}"),
        }
    }
}

/// Whether `entry` is an effect some soak event plans (what the aimed kills wait for).
pub(super) fn is_soak_effect(entry: &LedgerEntry) -> bool {
    (entry.operation == "update_ticket" && entry.vendor == "zendesk")
        || (entry.operation == "chat.postMessage" && entry.object_id == "C0INCIDENTS")
}

pub(super) fn plan(stack: &LocalStack, n: usize) -> Vec<Planned> {
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

/// Queue the vendor faults; returns how many requests are meant to meet one (the report counts
/// what the sandbox actually served).
pub(super) fn inject_faults(stack: &LocalStack) -> usize {
    let s = &stack.sandbox;
    let queued: [(&'static str, Fault, usize); 7] = [
        ("zendesk", Fault::ServerError(503), 4),
        ("slack", Fault::ServerError(502), 4),
        ("slack", Fault::Slow(Duration::from_millis(1500)), 3),
        ("zendesk", Fault::Slow(Duration::from_millis(1500)), 3),
        ("slack", Fault::ExpiredToken, 1),
        // Writes whose answer is lost after the vendor made them: found again by their key
        // (Slack message metadata, the Zendesk audit's custom metadata), not made twice.
        ("slack", Fault::LostAnswer, 3),
        ("zendesk", Fault::LostAnswer, 3),
    ];
    let mut total = 0;
    for (vendor, fault, times) in queued {
        s.inject(vendor, fault, times);
        total += times;
    }
    total
}

/// A 429 storm: every Zendesk request for the next 3 s is refused (started mid-run, when
/// requests flow; the report counts the 429s served).
pub(super) fn storm(stack: &LocalStack) {
    stack.sandbox.zendesk_storm(Duration::from_secs(3));
}
