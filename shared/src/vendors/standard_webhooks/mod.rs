//! Standard Webhooks (and Svix): everything switchyard knows about it, in one place.
//!
//! - `inbound`: the `webhook-signature` scheme and its events;
//! - `outbound`: the signed webhook connector (`webhook`): a POST any receiver can verify.

pub mod inbound;
pub mod outbound;

/// The signed webhook connector (`webhook`) in the registry.
pub(crate) static VENDOR: super::Vendor = super::Vendor {
    name: "webhook",
    connect: |http, c| Ok(Box::new(outbound::Webhook::new(http, c)?)),
    triage: None,
    // Any receiver: a conservative default (`RATE_LIMITS` raises it).
    pace: super::per(60, 60),
    ceilings: super::no_ceilings,
    pacing_class: super::no_class,
    class_rate: super::no_class_rate,
    sync: None,
    login: false,
};
