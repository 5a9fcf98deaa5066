//! switchyard core library: everything the Lambda binaries and the local stack share.
//!
//! Follow one webhook: [`handlers::intake`] (verify, dedupe, enqueue) →
//! [`handlers::classify`] (decide, record) → [`handlers::act`] (call a [`connectors::Connector`]).
//!
//! What another crate may name is public and documented; the rest is `pub(crate)`.
#![warn(missing_docs)]

pub mod aws;
mod batch;
mod calls;
pub mod classifier;
pub mod connectors;
pub mod dates;
pub mod decisions;
pub mod doctor;
pub mod documents;
pub mod drift;
pub mod event;
pub mod handlers;
pub mod http;
pub mod idempotency;
mod lease;
pub mod metrics;
pub mod model;
pub mod pacing;
pub mod reconnect;
mod redact;
pub mod routing;
pub mod secrets;
pub mod settings;
pub mod sync;
pub mod telemetry;
pub mod vendors;
pub mod webhook;

/// The SQS message attribute that carries the correlation id from stage to stage.
pub const CORRELATION_ATTR: &str = "correlation_id";
