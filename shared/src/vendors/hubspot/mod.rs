//! HubSpot: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the v1, v2 and v3 signatures and CRM events;
//! - `outbound`: the CRM v3 connector (tickets, contacts, notes, associations) and its triage;
//! - `sync`: batch upserts of contacts.

pub mod inbound;
pub mod outbound;
pub mod sync;
