//! Microsoft Teams: everything switchyard knows about it, in one place.
//!
//! - `inbound`: outgoing webhooks (HMAC over the body);
//! - `outbound`: the Workflows / incoming webhook connector (Adaptive Cards) and its triage.

pub mod inbound;
pub mod outbound;

/// Teams in the registry.
pub(crate) static VENDOR: super::Vendor = super::Vendor {
    name: "teams",
    connect: |http, c| Ok(Box::new(outbound::Teams::new(http, c)?)),
    triage: Some(outbound::triage),
    // Connector webhooks: about 4 per second per webhook.
    pace: super::per(4, 1),
    ceilings: super::no_ceilings,
    pacing_class: super::no_class,
    class_rate: super::no_class_rate,
    sync: None,
    login: false,
};
