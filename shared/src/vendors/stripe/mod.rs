//! Stripe: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the `Stripe-Signature` scheme and events.

pub mod inbound;
