//! GitHub: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the `X-Hub-Signature-256` signature and issue events.

pub mod inbound;
