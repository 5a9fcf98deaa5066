//! API drift: what switchyard relies on in each vendor's answers (a connector's [`Contract`]),
//! what the answers look like now ([`profile::Profile`], kept per connection as a snapshot), and
//! the typed [`Finding`]s when the two part ways — found by the canary's read-only calls, by
//! write requirements read from the vendor's metadata, and by failed writes in act.
//!
//! Paths are relative to one record: `via/channel`, `custom_fields[]/id` (`[]`: every element).

pub(crate) mod compare;
pub mod endpoint;
pub mod profile;
pub mod store;

use serde::{Deserialize, Serialize};

/// The JSON type a field is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// A JSON boolean.
    Bool,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
    /// A number or a string of digits (ids some proxies quote).
    Id,
    /// A timestamp read by the lenient date parser, documented as ISO 8601; its format is
    /// tracked too.
    Date,
    /// A timestamp documented as epoch seconds (Slack's `created`).
    Epoch,
}

impl Kind {
    /// Whether a value observed as `seen` (a JSON type name from [`profile::json_kind`]) fits.
    pub fn accepts(self, seen: &str) -> bool {
        match self {
            Kind::String => seen == "string",
            Kind::Number => seen == "number",
            Kind::Bool => seen == "bool",
            Kind::Object => seen == "object",
            Kind::Array => seen == "array",
            Kind::Id => seen == "number" || seen == "string",
            Kind::Date | Kind::Epoch => seen == "string" || seen == "number",
        }
    }

    /// The kind's name as contracts write it and findings show it (`string`, `id`, `epoch`, …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Bool => "bool",
            Kind::Object => "object",
            Kind::Array => "array",
            Kind::Id => "id",
            Kind::Date => "date",
            Kind::Epoch => "epoch",
        }
    }

    pub(crate) fn is_time(self) -> bool {
        matches!(self, Kind::Date | Kind::Epoch)
    }
}

/// One field of a record that switchyard relies on.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Where the field is within one record (`via/channel`; `[]`: every element of an array).
    pub path: &'static str,
    /// The JSON type the field is read as.
    pub kind: Kind,
    /// `null` is a documented value.
    pub nullable: bool,
    /// Present in every record (absent from one is a finding); otherwise a field missing from
    /// every record is a finding only when the last snapshot had it in nearly all of them.
    pub always: bool,
    /// A connector reads it: losing or retyping it breaks an action.
    pub read: bool,
    /// The values switchyard branches on (empty: any value).
    pub values: &'static [&'static str],
    /// A date written in several documented formats (one per backend, say): a format is no news.
    pub formats_vary: bool,
}

impl Field {
    /// A field in every record, never `null`, not read by a connector, with any value.
    pub const fn new(path: &'static str, kind: Kind) -> Self {
        Field {
            path,
            kind,
            nullable: false,
            always: true,
            read: false,
            values: &[],
            formats_vary: false,
        }
    }
    /// The same field, read by a connector: losing, retyping or nulling it is a breaking finding.
    pub const fn read(mut self) -> Self {
        self.read = true;
        self
    }
    pub(crate) const fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
    /// The same field, not present in every record (see `always`).
    pub const fn sometimes(mut self) -> Self {
        self.always = false;
        self
    }
    /// The same field, with the values switchyard branches on; any other is a finding.
    pub const fn values(mut self, values: &'static [&'static str]) -> Self {
        self.values = values;
        self
    }
}

/// The structure of one object type as one call answers it.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// `ticket`, `user`, `issue`…
    pub object: &'static str,
    /// The read-only call that returns it, for the report (`GET /api/v2/tickets.json`).
    pub call: &'static str,
    /// The fields of each record that switchyard relies on.
    pub fields: &'static [Field],
}

/// Everything a connector relies on in its vendor's answers, at its pinned API version.
#[derive(Clone, Copy, Debug)]
pub struct Contract {
    /// The connector the contract belongs to, by name (`zendesk`).
    pub connector: &'static str,
    /// The vendor API version the contract was written against.
    pub api_version: &'static str,
    /// One shape per object type the canary samples.
    pub shapes: &'static [Shape],
}

impl Contract {
    /// The shape of object type `object` (`ticket`); `None` when the contract has none.
    pub fn shape(&self, object: &str) -> Option<&Shape> {
        self.shapes.iter().find(|s| s.object == object)
    }
}

/// What kind of change a finding reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A field is absent from records: ones the contract says always have it, or every record
    /// where the last snapshot nearly always had it.
    FieldMissing,
    /// A field holds values of a JSON type its contract kind does not accept.
    TypeChanged,
    /// A field the contract does not document as nullable is `null` in a record.
    BecameNull,
    /// A field holds a value outside the ones switchyard branches on.
    NewEnumValue,
    /// A field is gone and a new one beside it holds the same values.
    Renamed,
    /// A field that neither the last snapshot nor the contract has.
    FieldAdded,
    /// Dates are written in a format not seen before (or not the contract's documented one).
    DateFormatChanged,
    /// The vendor now requires a field on create that switchyard's configured actions do not set.
    RequiredField,
    /// A real write was refused for a missing or invalid field.
    WriteRefused,
    /// A real write was accepted, but a field it set was dropped (Zendesk, with a 200).
    WriteDropped,
    /// A post-only connection's endpoint is misconfigured or unreachable (checked without
    /// posting: URL shape, DNS, TLS).
    Configuration,
}

impl FindingKind {
    /// The kind's snake_case name, as serialized and shown in [`Finding::line`].
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::FieldMissing => "field_missing",
            FindingKind::TypeChanged => "type_changed",
            FindingKind::BecameNull => "became_null",
            FindingKind::NewEnumValue => "new_enum_value",
            FindingKind::Renamed => "renamed",
            FindingKind::FieldAdded => "field_added",
            FindingKind::DateFormatChanged => "date_format_changed",
            FindingKind::RequiredField => "required_field",
            FindingKind::WriteRefused => "write_refused",
            FindingKind::WriteDropped => "write_dropped",
            FindingKind::Configuration => "configuration",
        }
    }
}

/// How much a finding matters: breaking findings alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// News only: nothing switchyard relies on is at risk (a field added, say).
    Info,
    /// A change a person should look at, though nothing switchyard reads is known broken.
    Warning,
    /// A change that breaks what switchyard reads or writes; a new one raises the drift alarm.
    Breaking,
}

impl Severity {
    /// The severity's lower-case name, as serialized (`info`, `warning`, `breaking`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Breaking => "breaking",
        }
    }

    /// The severity [`Severity::name`] names; `None` for any other text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "breaking" => Some(Severity::Breaking),
            _ => None,
        }
    }
}

/// One observed change, before it is stored (the store adds state and first/last seen).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The connector the finding is about, by name (`zendesk`).
    pub connector: String,
    /// The object type (`ticket`); for a refused write, the action; for an endpoint check,
    /// `configuration`.
    pub object: String,
    /// What kind of change was found.
    pub kind: FindingKind,
    /// How much the change matters.
    pub severity: Severity,
    /// JSON path within the record (`via/channel`), or the required field's id.
    pub path: String,
    /// What changed, in words, with no record values but the redacted example.
    pub detail: String,
    /// An example value, PII-redacted and cut short.
    #[serde(default)]
    pub example: Option<String>,
    /// The routes (and actions) this would fail, when known.
    #[serde(default)]
    pub routes: Vec<String>,
}

impl Finding {
    /// Stable across runs: the same change found again is the same finding.
    pub fn fingerprint(&self) -> String {
        let mut f = format!(
            "{}#{}#{}#{}",
            self.connector,
            self.object,
            self.kind.name(),
            self.path
        );
        if self.kind == FindingKind::NewEnumValue {
            if let Some(v) = &self.example {
                f.push('#');
                f.push_str(v);
            }
        }
        f
    }

    /// One line for a person: `SEVERITY connector.object kind `path`: detail`.
    pub fn line(&self) -> String {
        format!(
            "{:<8} {}.{} {} `{}`: {}",
            self.severity.name().to_uppercase(),
            self.connector,
            self.object,
            self.kind.name(),
            self.path,
            self.detail
        )
    }

    /// A short id a person can type (`switchyard canary ack 3f9a1c2e`).
    pub fn id(&self) -> String {
        use sha2::Digest;
        let h = sha2::Sha256::digest(self.fingerprint().as_bytes());
        h[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// An example value for a finding: redacted, at most 40 characters.
pub fn example(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let red = crate::redact::redact(&text);
    if red.chars().count() > 40 {
        format!("{}…", red.chars().take(40).collect::<String>())
    } else {
        red
    }
}

/// A field a vendor requires on create, read from its metadata (Jira create metadata,
/// Salesforce describe, Zendesk ticket fields).
#[derive(Clone, Debug, PartialEq)]
pub struct RequiredField {
    /// The object created (`issue`, `case`, `ticket`).
    pub object: &'static str,
    /// The connector action that creates it.
    pub action: &'static str,
    /// The vendor's field id (`customfield_10042`, `Product_Area__c`).
    pub field: String,
    /// Its display name.
    pub name: String,
    /// The action parameter that sets it (`fields.customfield_10042`, `case.Product_Area__c`).
    pub param: String,
    /// Refused on create without it (breaking), or only later (Zendesk: to solve; a warning).
    pub enforced_on_create: bool,
}
