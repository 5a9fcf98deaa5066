//! Structured JSON logs. Every stage logs inside a span carrying the correlation id.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::{fmt, prelude::*};

/// Install the JSON subscriber once per process (Lambda `main`, the CLI).
/// `RUST_LOG` overrides the default `info` level, as `target=level` directives
/// (`info,switchyard=debug`). Span and field filters are not read: `Targets` needs no regex
/// engine, which `EnvFilter` would link into every function.
pub fn init() {
    let asked = std::env::var("RUST_LOG").ok();
    let parsed = asked.as_deref().map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(targets)) => targets.clone(),
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
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
    if let Some(Err(e)) = parsed {
        tracing::warn!(error = %e, "RUST_LOG is not target=level directives; logging at info");
    }
}
