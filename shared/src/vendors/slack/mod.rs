//! Slack: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the Events API signature, events and slash commands;
//! - `outbound`: the Web API connector (chat.postMessage with its key as metadata) and its triage.

pub mod inbound;
pub mod outbound;
