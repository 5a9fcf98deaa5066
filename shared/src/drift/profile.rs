//! The structure of a few records of one object type: per JSON path, in how many records it
//! occurs, its JSON types, the formats of its dates and short hashes of its values (to tell a
//! rename from a removal). Kept per connection as the snapshot the next run compares with, so a
//! field seen in only some records is not reported as removed when a sample lacks it.
//! No record value is stored: examples and enum values live only for the run.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Shape;

/// Paths deeper than this, elements past this many per array, and more paths than this are not
/// profiled (a vendor's answer can be large; drift that matters shows near the top).
const MAX_DEPTH: usize = 6;
const MAX_ELEMENTS: usize = 20;
const MAX_PATHS: usize = 400;
const MAX_HASHES: usize = 8;
const MAX_VALUES: usize = 20;

/// What one JSON path looked like across a profile's records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldStats {
    /// Records in which the path occurs at least once.
    pub present: u32,
    /// Records in which it held an object or an array (children are expected there).
    #[serde(default)]
    pub containers: u32,
    /// JSON types seen: string, number, bool, object, array, null.
    pub kinds: BTreeSet<String>,
    /// Date formats seen (digits as 9: `9999-99-99T99:99:99Z`; `epoch` for numbers).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub formats: BTreeSet<String>,
    /// Short hashes of a few scalar values.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub hashes: BTreeSet<String>,
    /// Distinct string values (this run only; enum checks).
    #[serde(skip)]
    pub values: BTreeSet<String>,
    /// One example per JSON type (this run only).
    #[serde(skip)]
    pub examples: BTreeMap<String, Value>,
}

/// The structure of a sample of one object type's records, per JSON path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Records profiled.
    pub records: u32,
    /// Statistics per JSON path (`via/channel`, `tags[]`), at most 400 paths and 6 levels deep.
    pub fields: BTreeMap<String, FieldStats>,
}

/// The JSON type name of a value.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The path of the object or array a path's field sits in (`""` for a top-level field).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => path.strip_suffix("[]").unwrap_or_default(),
    }
}

/// A date's format: digits become 9, everything else stays (`2024-01-15T10:31:00Z` →
/// `9999-99-99T99:99:99Z`).
pub fn date_format(v: &Value) -> Option<String> {
    match v {
        Value::Number(_) => Some("epoch".into()),
        Value::String(s) if s.len() >= 8 && s.bytes().any(|b| b == b'-' || b == b':') => {
            crate::dates::parse(s).ok()?;
            Some(
                s.chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Whether a format is ISO 8601 / RFC 3339 (what every contract's dates are documented as).
pub(crate) fn is_iso(format: &str) -> bool {
    format.len() >= 19 && format.starts_with("9999-99-99T99:99:99")
}

fn hash(v: &Value) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(v.to_string().as_bytes());
    h[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl Profile {
    /// Profile `records`; `shape` says which paths are dates.
    pub fn build(records: &[Value], shape: Option<&Shape>) -> Self {
        let dates: BTreeSet<&str> = shape
            .map(|s| {
                s.fields
                    .iter()
                    .filter(|f| f.kind.is_time())
                    .map(|f| f.path)
                    .collect()
            })
            .unwrap_or_default();
        let mut p = Profile::default();
        for r in records {
            p.records += 1;
            let mut seen = BTreeSet::new();
            if let Value::Object(m) = r {
                for (k, v) in m {
                    p.walk(k.clone(), v, 1, &dates, &mut seen);
                }
            }
            for (path, container) in seen {
                if let Some(s) = p.fields.get_mut(&path) {
                    s.present += 1;
                    s.containers += u32::from(container);
                }
            }
        }
        p
    }

    fn walk(
        &mut self,
        path: String,
        v: &Value,
        depth: usize,
        dates: &BTreeSet<&str>,
        seen: &mut BTreeSet<(String, bool)>,
    ) {
        if depth > MAX_DEPTH || (self.fields.len() >= MAX_PATHS && !self.fields.contains_key(&path))
        {
            return;
        }
        let s = self.fields.entry(path.clone()).or_default();
        let kind = json_kind(v);
        s.kinds.insert(kind.to_owned());
        s.examples
            .entry(kind.to_owned())
            .or_insert_with(|| v.clone());
        if let Value::String(text) = v {
            if s.values.len() < MAX_VALUES {
                s.values.insert(text.clone());
            }
        }
        if matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
            && s.hashes.len() < MAX_HASHES
        {
            s.hashes.insert(hash(v));
        }
        let is_date = dates.contains(path.as_str());
        if is_date || matches!(v, Value::String(_)) {
            if let Some(f) = date_format(v) {
                s.formats.insert(f);
            }
        }
        let container = matches!(v, Value::Object(_) | Value::Array(_));
        // A path seen as a container anywhere in the record counts as one.
        if container {
            seen.remove(&(path.clone(), false));
            seen.insert((path.clone(), true));
        } else if !seen.contains(&(path.clone(), true)) {
            seen.insert((path.clone(), false));
        }
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    self.walk(format!("{path}/{k}"), child, depth + 1, dates, seen);
                }
            }
            Value::Array(items) => {
                for item in items.iter().take(MAX_ELEMENTS) {
                    self.walk(format!("{path}[]"), item, depth + 1, dates, seen);
                }
            }
            _ => {}
        }
    }

    /// How many records the path's parent occurred in: what a field's presence is measured
    /// against (a child of an absent object is not missing).
    pub fn base(&self, path: &str) -> u32 {
        match parent(path) {
            "" => self.records,
            // A parent that was null or a scalar has no children to expect.
            p => self.fields.get(p).map_or(0, |s| s.containers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_counts_and_types() {
        let p = Profile::build(
            &[
                json!({"id": 1, "via": {"channel": "email"}, "tags": ["a"], "custom_fields": [{"id": 7, "value": null}]}),
                json!({"id": "2", "via": null, "tags": []}),
            ],
            None,
        );
        assert_eq!(p.records, 2);
        assert_eq!(p.fields["id"].present, 2);
        assert_eq!(
            p.fields["id"].kinds,
            ["number", "string"].map(String::from).into()
        );
        assert_eq!(p.fields["via/channel"].present, 1);
        assert_eq!(p.base("via/channel"), 1);
        assert_eq!(
            p.fields["custom_fields[]/value"].kinds,
            ["null".to_owned()].into()
        );
        assert_eq!(p.fields["tags[]"].present, 1);
        assert_eq!(parent("custom_fields[]/id"), "custom_fields[]");
        assert_eq!(parent("custom_fields[]"), "custom_fields");
        assert_eq!(parent("id"), "");
    }

    #[test]
    fn dates_have_formats_and_snapshots_keep_no_values() {
        let p = Profile::build(
            &[
                json!({"created_at": "2024-01-15T10:31:00Z", "subject": "Printer jam at alice@example.com"}),
            ],
            None,
        );
        assert_eq!(
            p.fields["created_at"].formats,
            ["9999-99-99T99:99:99Z".to_owned()].into()
        );
        assert!(p.fields["subject"].formats.is_empty());
        let stored = serde_json::to_string(&p).unwrap();
        assert!(!stored.contains("alice"), "{stored}");
        assert!(!stored.contains("2024-01-15"), "{stored}");
    }
}
