//! Jira Cloud: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the webhook signature and issue events;
//! - `outbound`: the REST v3 connector (issues, comments, transitions) and its triage.

pub mod inbound;
pub mod outbound;

/// Jira in the registry.
pub(crate) static VENDOR: super::Vendor = super::Vendor {
    name: "jira",
    connect: |http, c| Ok(Box::new(outbound::Jira::new(http, c)?)),
    triage: Some(outbound::triage),
    // Cost-based; 100/min keeps well inside the burst limits for ordinary writes.
    pace: super::per(100, 60),
    ceilings: super::no_ceilings,
    pacing_class: super::no_class,
    class_rate: super::no_class_rate,
    sync: None,
    login: true,
};
