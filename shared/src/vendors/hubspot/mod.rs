//! HubSpot: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the v1, v2 and v3 signatures and CRM events;
//! - `outbound`: the CRM v3 connector (tickets, contacts, notes, associations) and its triage;
//! - `sync`: batch upserts of contacts.

pub mod inbound;
pub mod outbound;
pub mod sync;

/// HubSpot in the registry.
pub(crate) static VENDOR: super::Vendor = super::Vendor {
    name: "hubspot",
    connect: |http, c| Ok(Box::new(outbound::Hubspot::new(http, c)?)),
    triage: Some(outbound::triage),
    // Private apps: 100 per 10 s (Free/Starter), 190 on Pro/Enterprise.
    pace: super::per(100, 10),
    // Private apps on Free/Starter: 250,000 a day beside the 100 per 10 s.
    ceilings: || {
        vec![crate::pacing::Rate::ceiling(
            250_000,
            std::time::Duration::from_secs(86_400),
        )]
    },
    pacing_class: outbound::pacing_class,
    // CRM search endpoints: five requests per second per token.
    class_rate: |class| (class == "search").then_some(super::per(5, 1)),
    sync: Some(sync::target),
    login: true,
};
