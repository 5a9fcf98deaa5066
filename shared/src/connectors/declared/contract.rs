//! A description's `[contract.*]` tables as the drift canary's [`Contract`]: built once per
//! process (descriptions are compiled in), so it lives as long as the built-in ones.

use crate::drift::{Contract, Field, Kind, Shape};

use super::describe::Description;

/// A contract field as a description writes it.
pub(crate) struct FieldSpec {
    pub kind: Kind,
    pub read: bool,
    pub nullable: bool,
    pub sometimes: bool,
    /// `*`: a date written in several formats (the description's `[dates]` reads them).
    pub formats_vary: bool,
    pub values: Vec<String>,
}

/// One field's kind: `string|number|bool|object|array|id|date|epoch` or `enum:a|b`, then `!`
/// (switchyard reads it), `?` (null is documented), `~` (not every record has it), `*` (a date
/// in several formats), in any order.
pub(crate) fn field_kind(spec: &str) -> Result<FieldSpec, String> {
    let base = spec.trim_end_matches(['!', '?', '~', '*']);
    let flags = &spec[base.len()..];
    let flag = |c: char| flags.contains(c);
    let (read, nullable, sometimes, formats_vary) = (flag('!'), flag('?'), flag('~'), flag('*'));
    if let Some(values) = base.strip_prefix("enum:") {
        let values: Vec<String> = values.split('|').map(|v| v.trim().to_owned()).collect();
        if values.iter().any(String::is_empty) {
            return Err(format!("{spec:?}: an enum lists its values as enum:a|b"));
        }
        return Ok(FieldSpec {
            kind: Kind::String,
            read,
            nullable,
            sometimes,
            formats_vary,
            values,
        });
    }
    let kind = match base {
        "string" => Kind::String,
        "number" => Kind::Number,
        "bool" => Kind::Bool,
        "object" => Kind::Object,
        "array" => Kind::Array,
        "id" => Kind::Id,
        "date" => Kind::Date,
        "epoch" => Kind::Epoch,
        other => {
            return Err(format!(
                "{other:?} is not a field kind (string, number, bool, object, array, id, date, epoch, enum:a|b)"
            ))
        }
    };
    if formats_vary && !kind.is_time() {
        return Err(format!(
            "{spec:?}: * (several formats) is for date and epoch fields"
        ));
    }
    Ok(FieldSpec {
        kind,
        read,
        nullable,
        sometimes,
        formats_vary,
        values: Vec::new(),
    })
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// The contract of a validated description (`None` when it declares none). Called once per
/// description per process: what it allocates is kept for the process's life.
pub fn build(d: &Description) -> Option<&'static Contract> {
    if d.contract.is_empty() {
        return None;
    }
    let shapes: Vec<Shape> = d
        .contract
        .iter()
        .map(|(object, c)| {
            let c = c.get_ref();
            let fields: Vec<Field> = c
                .fields
                .iter()
                .filter_map(|(path, spec)| {
                    let spec = field_kind(spec).ok()?;
                    let mut f = Field::new(leak(path.trim_start_matches('/')), spec.kind);
                    f.read = spec.read;
                    f.nullable = spec.nullable;
                    f.always = !spec.sometimes;
                    f.formats_vary = spec.formats_vary;
                    if !spec.values.is_empty() {
                        let v: Vec<&'static str> = spec.values.iter().map(|v| leak(v)).collect();
                        f.values = Box::leak(v.into_boxed_slice());
                    }
                    Some(f)
                })
                .collect();
            Shape {
                object: leak(object),
                call: leak(&format!(
                    "{} {}",
                    c.sample.method.to_ascii_uppercase(),
                    c.sample.path
                )),
                fields: Box::leak(fields.into_boxed_slice()),
            }
        })
        .collect();
    Some(Box::leak(Box::new(Contract {
        connector: leak(d.name()),
        api_version: leak(&d.api_version),
        shapes: Box::leak(shapes.into_boxed_slice()),
    })))
}
