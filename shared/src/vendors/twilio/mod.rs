//! Twilio: everything switchyard knows about it, in one place.
//!
//! - `inbound`: the `X-Twilio-Signature` scheme (URL + form parameters, or the body hash).

pub mod inbound;
