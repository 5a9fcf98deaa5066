//! API drift signals: fields a vendor's answer has that we do not know of (counted and logged,
//! never an error) and fields we rely on that are missing (handled by the caller).

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tracing::warn;

static UNKNOWN_FIELDS: AtomicU64 = AtomicU64::new(0);

/// How many unknown fields the process has seen in vendor answers (a drift metric).
pub fn unknown_fields_seen() -> u64 {
    UNKNOWN_FIELDS.load(Ordering::Relaxed)
}

/// Log and count the top-level fields of `object` that are not in `known`.
pub fn check(what: &str, object: &Value, known: &[&str]) -> Vec<String> {
    let unknown: Vec<String> = object
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !known.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !unknown.is_empty() {
        UNKNOWN_FIELDS.fetch_add(unknown.len() as u64, Ordering::Relaxed);
        warn!(object = what, fields = ?unknown, "vendor answer has fields switchyard does not know (API drift)");
    }
    unknown
}
