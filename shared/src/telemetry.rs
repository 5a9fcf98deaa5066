//! Structured JSON logs. Every stage logs inside a span carrying the correlation id.

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Install the JSON subscriber once per process (Lambda `main`, the CLI).
/// `RUST_LOG` overrides the default `info` level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .flatten_event(true);
    // A second init (tests, CLI re-entry) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .try_init();
}
