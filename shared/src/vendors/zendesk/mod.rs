//! Zendesk Support: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the webhook signature and ticket events;
//! - `outbound`: the Support API v2 connector (tickets, comments, audits) and its triage;
//! - `sync`: bulk upserts of users.

pub mod inbound;
pub mod outbound;
pub mod sync;
