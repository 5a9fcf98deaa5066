//! What people decided, for `explain` and `stats`: who chose what, through which door, and how
//! long the event waited for them.

use std::collections::BTreeMap;

use chrono::DateTime;
use serde_json::{json, Value};
use switchyard::decisions::DecisionRecord;

/// Seconds from the event being sent to a person (classify's decision) to a person deciding.
pub fn waited_secs(r: &DecisionRecord) -> Option<f64> {
    let asked = DateTime::parse_from_rfc3339(r.decided_at.as_deref()?).ok()?;
    let decided = DateTime::parse_from_rfc3339(&r.human.as_ref()?.at).ok()?;
    Some((decided - asked).num_milliseconds().max(0) as f64 / 1000.0)
}

/// The story's lines about people: the decision, and refused attempts before it.
pub fn story_lines(r: &DecisionRecord) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if let Some(h) = &r.human {
        let waited = waited_secs(r)
            .map(|s| format!(", {s:.0} s after it was sent to a person"))
            .unwrap_or_default();
        lines.push(("decided", format!("{}{waited}", h.line())));
        if let Some(note) = &h.note {
            lines.push(("reason", format!("{note:?} (PII-redacted)")));
        }
    }
    for refusal in &r.refusals {
        lines.push((
            "refused",
            format!(
                "{} via {} at {}: {}",
                refusal["by"].as_str().unwrap_or("?"),
                refusal["via"].as_str().unwrap_or("?"),
                refusal["at"].as_str().unwrap_or("?"),
                refusal["why"].as_str().unwrap_or("?")
            ),
        ));
    }
    lines
}

/// Decisions by choice and by the category they were about, refused attempts, approvals that
/// expired undecided, and the time to decision (p50, p95) over `records`.
pub fn stats(records: &[DecisionRecord]) -> Value {
    let mut by_choice: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_category: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut waits = Vec::new();
    let (mut refused, mut expired) = (0, 0);
    for r in records {
        refused += r.refusals.len();
        // An approval nobody decided in time: it waits for an operator, or was dismissed by
        // switchyard (`via expiry`). Not a person's decision, so not timed as one.
        let by_expiry = r.human.as_ref().is_some_and(|h| h.via == "expiry");
        if r.approval_expired.is_some() || by_expiry {
            expired += 1;
            *by_category
                .entry(r.category.clone())
                .or_default()
                .entry("expired".into())
                .or_default() += 1;
        }
        let Some(h) = r.human.as_ref().filter(|_| !by_expiry) else {
            continue;
        };
        *by_choice.entry(h.choice.clone()).or_default() += 1;
        *by_category
            .entry(r.category.clone())
            .or_default()
            .entry(h.choice.clone())
            .or_default() += 1;
        waits.extend(waited_secs(r));
    }
    waits.sort_by(f64::total_cmp);
    let q = |p: f64| {
        waits
            .get(((waits.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    let awaiting = records
        .iter()
        .filter(|r| r.status == switchyard::decisions::state::IN_REVIEW)
        .count();
    json!({
        "by_choice": by_choice,
        "by_category": by_category,
        "refused": refused,
        "expired": expired,
        "awaiting": awaiting,
        "time_to_decision_s": {"p50": q(0.5), "p95": q(0.95)},
    })
}
