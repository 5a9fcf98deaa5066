//! Slack: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the Events API signature, events and slash commands;
//! - `outbound`: the Web API connector (chat.postMessage with its key as metadata) and its triage;
//! - `review`: the review message as Block Kit with its buttons, and the clicks on it.

pub mod inbound;
pub mod outbound;
pub mod review;

/// Slack in the registry.
pub(crate) static VENDOR: super::Vendor = super::Vendor {
    name: "slack",
    connect: |http, c| Ok(Box::new(outbound::Slack::new(http, c)?)),
    triage: Some(outbound::triage),
    // Web API Tier 3 (50+/min).
    pace: super::per(50, 60),
    ceilings: super::no_ceilings,
    pacing_class: outbound::pacing_class,
    // chat.postMessage: about one message per second per channel.
    class_rate: |class| (class == "post_message").then_some(super::per(1, 1)),
    sync: None,
    login: true,
};
