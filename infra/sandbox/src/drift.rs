//! Switchable API drift, per vendor: once switched on, every answer of that vendor carries the
//! change until it is switched off — the way a vendor's API changes on a Tuesday. Structure
//! changes reshape the vendor's records in its JSON answers; `required_field` adds a field the
//! vendor's metadata marks required and its create endpoint enforces (each vendor module reads
//! [`required_field`]).

use serde_json::{json, Value};

/// One drift mode as applied to a vendor: which field of its records, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    pub mode: Mode,
    /// Path within a record, `/`-separated.
    pub field: String,
    /// The new name (renamed), the new value (enum_value), or the added field's name.
    pub to: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Renamed,
    Removed,
    Retyped,
    Nulled,
    Nested,
    EnumValue,
    DateFormat,
    Added,
    RequiredField,
}

pub const MODES: &[&str] = &[
    "renamed",
    "removed",
    "retyped",
    "nulled",
    "nested",
    "enum_value",
    "date_format",
    "added",
    "required_field",
];

/// A vendor's drift table: where its answers hold records (top-level keys), and each mode's
/// default field and new name or value.
type Table = (
    &'static [&'static str],
    fn(Mode) -> (&'static str, &'static str),
);

/// Where each vendor's answers hold records, and each mode's default field.
fn vendor(vendor: &str) -> Option<Table> {
    Some(match vendor {
        "zendesk" => (&["ticket", "tickets"], |m| match m {
            Mode::Renamed => ("status", "ticket_status"),
            Mode::Removed => ("updated_at", ""),
            Mode::Retyped => ("tags", ""),
            Mode::Nulled => ("subject", ""),
            Mode::Nested => ("via/channel", ""),
            Mode::EnumValue => ("status", "triaged"),
            Mode::DateFormat => ("updated_at", ""),
            Mode::Added => ("", "x_sentiment"),
            Mode::RequiredField => ("360012345678", "Product area"),
        }),
        "jira" => (&["issues"], |m| match m {
            Mode::Renamed => ("fields/summary", "title"),
            Mode::Removed => ("key", ""),
            Mode::Retyped => ("fields/labels", ""),
            Mode::Nulled => ("fields/status", ""),
            Mode::Nested => ("fields/status/statusCategory/key", ""),
            Mode::EnumValue => ("fields/status/statusCategory/key", "blocked"),
            Mode::DateFormat => ("fields/updated", ""),
            Mode::Added => ("fields", "customfield_10099"),
            Mode::RequiredField => ("customfield_10042", "Product area"),
        }),
        "salesforce" => (&["records"], |m| match m {
            Mode::Renamed => ("Subject", "Title"),
            Mode::Removed => ("Id", ""),
            Mode::Retyped => ("IsClosed", ""),
            Mode::Nulled => ("Status", ""),
            Mode::Nested => ("attributes/type", ""),
            Mode::EnumValue => ("Status", "Escalated Twice"),
            Mode::DateFormat => ("LastModifiedDate", ""),
            Mode::Added => ("", "Sentiment__c"),
            Mode::RequiredField => ("Product_Area__c", "Product Area"),
        }),
        "hubspot" => (&["results"], |m| match m {
            Mode::Renamed => ("properties/subject", "title"),
            Mode::Removed => ("id", ""),
            Mode::Retyped => ("archived", ""),
            Mode::Nulled => ("properties/hs_pipeline_stage", ""),
            Mode::Nested => ("properties/hs_pipeline", ""),
            Mode::EnumValue => ("properties/hs_ticket_priority", "CRITICAL"),
            Mode::DateFormat => ("updatedAt", ""),
            Mode::Added => ("properties", "hs_sentiment"),
            // HubSpot's API has no required-property metadata to read.
            Mode::RequiredField => ("", ""),
        }),
        "slack" => (&["channels"], |m| match m {
            Mode::Renamed => ("name", "channel_name"),
            Mode::Removed => ("id", ""),
            Mode::Retyped => ("is_archived", ""),
            Mode::Nulled => ("name", ""),
            Mode::Nested => ("topic/value", ""),
            Mode::EnumValue => ("", ""),
            Mode::DateFormat => ("created", ""),
            Mode::Added => ("", "is_frozen"),
            Mode::RequiredField => ("", ""),
        }),
        _ => return None,
    })
}

impl Drift {
    /// The drift `mode` for `vendor` on its default field (or `field`, when given).
    pub fn new(vendor_name: &str, mode: &str, field: Option<&str>) -> Result<Self, String> {
        let mode = match mode {
            "renamed" => Mode::Renamed,
            "removed" => Mode::Removed,
            "retyped" => Mode::Retyped,
            "nulled" => Mode::Nulled,
            "nested" => Mode::Nested,
            "enum_value" => Mode::EnumValue,
            "date_format" => Mode::DateFormat,
            "added" => Mode::Added,
            "required_field" => Mode::RequiredField,
            other => {
                return Err(format!(
                    "unknown drift mode {other:?}; one of {}",
                    MODES.join(", ")
                ))
            }
        };
        let (_, default) =
            vendor(vendor_name).ok_or_else(|| format!("no drift modes for {vendor_name:?}"))?;
        let (f, to) = default(mode);
        if f.is_empty() && mode != Mode::Added {
            return Err(format!(
                "{vendor_name} has no {mode:?} drift: nothing of that kind that switchyard reads"
            ));
        }
        Ok(Drift {
            mode,
            field: field.unwrap_or(f).to_owned(),
            to: to.to_owned(),
        })
    }

    /// Reshape the records in one JSON answer of `vendor_name`.
    pub fn apply(&self, vendor_name: &str, answer: &mut Value) {
        let Some((roots, _)) = vendor(vendor_name) else {
            return;
        };
        for root in roots {
            match answer.get_mut(*root) {
                Some(Value::Array(records)) => records.iter_mut().for_each(|r| self.reshape(r)),
                Some(r @ Value::Object(_)) => self.reshape(r),
                _ => {}
            }
        }
    }

    fn reshape(&self, record: &mut Value) {
        // `added` names the object the new field appears in; the rest name the field itself.
        let (parent_path, name) = match self.field.rsplit_once('/') {
            _ if self.mode == Mode::Added => {
                (Some(self.field.as_str()).filter(|f| !f.is_empty()), "")
            }
            Some((p, n)) => (Some(p), n),
            None => (None, self.field.as_str()),
        };
        let parent = match parent_path {
            Some(p) => record.pointer_mut(&format!("/{p}")),
            None => Some(record),
        };
        let Some(Value::Object(obj)) = parent else {
            return;
        };
        match self.mode {
            Mode::Added => {
                obj.insert(self.to.clone(), json!("positive"));
            }
            Mode::Renamed => {
                if let Some(v) = obj.remove(name) {
                    obj.insert(self.to.clone(), v);
                }
            }
            Mode::Removed => {
                obj.remove(name);
            }
            Mode::Nulled => {
                if obj.contains_key(name) {
                    obj.insert(name.to_owned(), Value::Null);
                }
            }
            Mode::Retyped => {
                if let Some(v) = obj.get_mut(name) {
                    *v = match v.take() {
                        Value::Array(items) => json!(items
                            .iter()
                            .map(|i| i.as_str().map_or(i.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(" ")),
                        Value::Bool(b) => json!(if b { "true" } else { "false" }),
                        Value::Number(n) => json!(n.to_string()),
                        Value::String(s) => json!({ "value": s }),
                        other => json!(other.to_string()),
                    };
                }
            }
            Mode::Nested => {
                if let Some(v) = obj.get_mut(name) {
                    *v = json!({ "name": v.take() });
                }
            }
            Mode::EnumValue => {
                if obj.contains_key(name) {
                    obj.insert(name.to_owned(), json!(self.to));
                }
            }
            Mode::DateFormat => {
                if let Some(v) = obj.get_mut(name) {
                    let parsed = v.as_str().and_then(|s| {
                        chrono::DateTime::parse_from_rfc3339(s)
                            .or_else(|_| {
                                chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z")
                            })
                            .ok()
                    });
                    if let Some(t) = parsed {
                        *v = json!(t.to_rfc2822());
                    } else if let Some(t) = v
                        .as_i64()
                        .and_then(|n| chrono::DateTime::from_timestamp(n, 0))
                    {
                        // Epoch seconds (Slack's `created`) become ISO 8601 text.
                        *v = json!(t.to_rfc3339());
                    }
                }
            }
            Mode::RequiredField => {}
        }
    }
}

/// The required field a vendor's drift added: (field id, display name).
pub fn required_field(drifts: &[Drift]) -> Option<(&str, &str)> {
    drifts
        .iter()
        .find(|d| d.mode == Mode::RequiredField)
        .map(|d| (d.field.as_str(), d.to.as_str()))
}
