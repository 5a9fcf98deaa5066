//! Jira Cloud: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the webhook signature and issue events;
//! - `outbound`: the REST v3 connector (issues, comments, transitions) and its triage.

pub mod inbound;
pub mod outbound;
