//! Zendesk Support: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the webhook signature and ticket events;
//! - `outbound`: the Support API v2 connector (tickets, comments, audits) and its triage;
//! - `sync`: bulk upserts of users.

pub mod inbound;
pub mod outbound;
pub mod sync;

/// Zendesk in the registry.
pub(crate) static VENDOR: super::Vendor = super::Vendor {
    name: "zendesk",
    connect: |http, c| Ok(Box::new(outbound::Zendesk::new(http, c)?)),
    triage: Some(outbound::triage),
    // Support API: 200/min on Team plans (400 Professional, 700 Enterprise).
    pace: super::per(200, 60),
    ceilings: super::no_ceilings,
    pacing_class: super::no_class,
    class_rate: super::no_class_rate,
    sync: Some(sync::target),
    login: true,
};
