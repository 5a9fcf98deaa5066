//! API drift seen in live traffic: a connector hands each record it reads from a vendor's answer
//! to [`observe`]; it is compared with the connector's contract (at any depth: missing, retyped,
//! null, new enum values, dates in another format) and with the fields the vendor documents (new
//! ones). What is found waits in this process until act stores it as findings
//! ([`take_observed`]), once per finding per process and hour — never an error for the action.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::warn;

use crate::drift::{Contract, Finding, FindingKind, Severity};

static UNKNOWN_FIELDS: AtomicU64 = AtomicU64::new(0);
static PENDING: Mutex<Vec<Finding>> = Mutex::new(Vec::new());
/// When each finding was last handed out, so a busy process stores it once an hour at most.
static HANDED_OUT: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
const AGAIN_AFTER: Duration = Duration::from_secs(3600);

/// How many unknown fields the process has seen in vendor answers (a drift metric).
pub fn unknown_fields_seen() -> u64 {
    UNKNOWN_FIELDS.load(Ordering::Relaxed)
}

/// Compare one record of `object` from a live answer with the contract; `documented` lists the
/// top-level fields the vendor documents (others are new: information).
pub(crate) fn observe(contract: &Contract, object: &str, record: &Value, documented: &[&str]) {
    let shape = contract.shape(object);
    let profile = crate::drift::profile::Profile::build(std::slice::from_ref(record), shape);
    let mut found =
        crate::drift::compare::compare(contract.connector, object, shape, &profile, None);
    if let Some(map) = record.as_object() {
        let unknown: Vec<&String> = map
            .keys()
            .filter(|k| !documented.is_empty() && !documented.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            UNKNOWN_FIELDS.fetch_add(unknown.len() as u64, Ordering::Relaxed);
            warn!(connector = contract.connector, object, fields = ?unknown,
                  "vendor answer has fields switchyard does not know (API drift)");
        }
        found.extend(unknown.into_iter().map(|k| Finding {
            connector: contract.connector.to_owned(),
            object: object.to_owned(),
            kind: FindingKind::FieldAdded,
            severity: Severity::Info,
            path: k.clone(),
            detail: "in a live answer; not in the vendor's documented fields".into(),
            example: None,
            routes: Vec::new(),
        }));
    }
    pend(found);
}

/// Keep findings for [`take_observed`], each once.
fn pend(found: impl IntoIterator<Item = Finding>) {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    for f in found {
        if !pending.iter().any(|p| p.fingerprint() == f.fingerprint()) {
            pending.push(f);
        }
    }
}

/// A write the vendor accepted (2xx) without these fields: it dropped them without a word.
pub(crate) fn write_dropped(connector: &str, action: &str, fields: &[String]) {
    pend(fields.iter().map(|field| Finding {
        connector: connector.to_owned(),
        object: action.to_owned(),
        kind: FindingKind::WriteDropped,
        severity: Severity::Breaking,
        path: field.clone(),
        detail: format!(
            "{connector} accepted {action} and dropped this field: the account does not have it (renamed or deleted?)"
        ),
        example: None,
        routes: Vec::new(),
    }));
}

/// Fields a verified webhook carried that its normalizer does not know (information: the
/// vendor added something; what switchyard reads is checked by the normalizer itself).
pub(crate) fn webhook_fields(source: &str, event_type: &str, fields: &[String]) {
    pend(fields.iter().map(|field| Finding {
        connector: source.to_owned(),
        object: format!("webhook {event_type}"),
        kind: FindingKind::FieldAdded,
        severity: Severity::Info,
        path: field.clone(),
        detail: "in a delivered webhook; not a field switchyard's normalizer knows".into(),
        example: None,
        routes: Vec::new(),
    }));
}

/// The findings observed since the last call, less those handed out within the hour.
pub(crate) fn take_observed() -> Vec<Finding> {
    let found = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed = handed.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    handed.retain(|_, at| now.duration_since(*at) < AGAIN_AFTER);
    found
        .into_iter()
        .filter(|f| {
            let fresh = !handed.contains_key(&f.fingerprint());
            if fresh {
                handed.insert(f.fingerprint(), now);
            }
            fresh
        })
        .collect()
}
