//! Microsoft Teams: everything switchyard knows about it, in one place.
//!
//! - `inbound`: outgoing webhooks (HMAC over the body);
//! - `outbound`: the Workflows / incoming webhook connector (Adaptive Cards) and its triage.

pub mod inbound;
pub mod outbound;
