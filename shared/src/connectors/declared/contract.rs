//! A description's `[contract.*]` tables as the drift canary's [`Contract`]: built once per
//! process (descriptions are compiled in), so it lives as long as the built-in ones.

use crate::drift::{Contract, Field, Kind, Shape};

use super::describe::Description;

/// One field's kind: `string|number|bool|object|array|id|date|epoch` or `enum:a|b`, then `!`
/// (switchyard reads it), `?` (null is documented), `~` (not every record has it), in any order.
pub fn field_kind(spec: &str) -> Result<(Kind, bool, bool, bool, Vec<String>), String> {
    let base = spec.trim_end_matches(['!', '?', '~']);
    let flags = &spec[base.len()..];
    let (read, nullable, sometimes) = (
        flags.contains('!'),
        flags.contains('?'),
        flags.contains('~'),
    );
    if let Some(values) = base.strip_prefix("enum:") {
        let values: Vec<String> = values.split('|').map(|v| v.trim().to_owned()).collect();
        if values.iter().any(String::is_empty) {
            return Err(format!("{spec:?}: an enum lists its values as enum:a|b"));
        }
        return Ok((Kind::String, read, nullable, sometimes, values));
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
    Ok((kind, read, nullable, sometimes, Vec::new()))
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
                    let (kind, read, nullable, sometimes, values) = field_kind(spec).ok()?;
                    let mut f = Field::new(leak(path.trim_start_matches('/')), kind);
                    f.read = read;
                    f.nullable = nullable;
                    f.always = !sometimes;
                    if !values.is_empty() {
                        let v: Vec<&'static str> = values.iter().map(|v| leak(v)).collect();
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
