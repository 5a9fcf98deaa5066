//! Salesforce: everything switchyard knows about it, in one place.
//!
//! - `inbound`: outbound messages (SOAP, the endpoint token);
//! - `outbound`: the REST connector (cases by external id, comments) and its triage;
//! - `sync`: Bulk API upserts of contacts.

pub mod inbound;
pub mod outbound;
pub mod sync;

/// Salesforce in the registry.
pub(crate) static VENDOR: super::Vendor = super::Vendor {
    name: "salesforce",
    connect: |http, c| Ok(Box::new(outbound::Salesforce::new(http, c)?)),
    triage: Some(outbound::triage),
    // 100,000 per 24 h on Enterprise; spread evenly.
    pace: super::per(4_000, 3_600),
    ceilings: super::no_ceilings,
    pacing_class: super::no_class,
    class_rate: super::no_class_rate,
    sync: Some(sync::target),
    login: true,
};
