//! Standard Webhooks (and Svix): everything switchyard knows about it, in one place.
//!
//! - `inbound`: the `webhook-signature` scheme and its events;
//! - `outbound`: the signed webhook connector (`webhook`): a POST any receiver can verify.

pub mod inbound;
pub mod outbound;
