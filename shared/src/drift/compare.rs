//! A profile against the contract and the last snapshot: the findings.
//!
//! Against the contract: a field switchyard relies on is missing, of another type, null where it
//! never is, or has a value it does not branch on. Against the snapshot (when there is one):
//! fields added, fields that were nearly always there and are gone, dates in a new format, and
//! renames (a field gone and a new one beside it holding the same values).

use std::collections::BTreeSet;

use super::profile::{is_iso, parent, Profile};
use super::{example, Finding, FindingKind, Severity, Shape};

/// A field absent from every record counts as removed only when the snapshot had it in at least
/// this share of at least `MIN_RECORDS` records, and this run saw at least as many.
const USUAL_SHARE: f64 = 0.9;
const MIN_RECORDS: u32 = 3;

/// Compare one object type's profile. `previous` is the connection's last snapshot of it.
pub(crate) fn compare(
    connector: &str,
    object: &str,
    shape: Option<&Shape>,
    now: &Profile,
    previous: Option<&Profile>,
) -> Vec<Finding> {
    let finding = |kind, severity, path: &str, detail: String, example: Option<String>| Finding {
        connector: connector.to_owned(),
        object: object.to_owned(),
        kind,
        severity,
        path: path.to_owned(),
        detail,
        example,
        routes: Vec::new(),
    };
    let mut out = Vec::new();
    let contract_paths: BTreeSet<&str> = shape
        .map(|s| s.fields.iter().map(|f| f.path).collect())
        .unwrap_or_default();
    let usually_there = |path: &str| {
        previous.is_some_and(|prev| {
            let base = prev.base(path);
            let present = prev.fields.get(path).map_or(0, |s| s.present);
            base >= MIN_RECORDS && f64::from(present) >= USUAL_SHARE * f64::from(base)
        })
    };

    for f in shape.map(|s| s.fields).unwrap_or_default() {
        let stats = now.fields.get(f.path);
        let present = stats.map_or(0, |s| s.present);
        let base = now.base(f.path);
        let severity = if f.read {
            Severity::Breaking
        } else {
            Severity::Warning
        };
        // An array's elements are never missing: an empty array has none.
        let gone = if f.path.ends_with("[]") {
            false
        } else if f.always {
            base > present
        } else {
            present == 0 && base >= MIN_RECORDS && usually_there(f.path)
        };
        if gone {
            out.push(finding(
                FindingKind::FieldMissing,
                severity,
                f.path,
                format!(
                    "{} of {base} records lack it{}",
                    base - present,
                    if f.read { "; switchyard reads it" } else { "" }
                ),
                None,
            ));
        }
        let Some(stats) = stats else { continue };
        for kind in stats.kinds.iter().filter(|k| *k != "null") {
            if !f.kind.accepts(kind) {
                out.push(finding(
                    FindingKind::TypeChanged,
                    severity,
                    f.path,
                    format!("documented as {}, now {kind}", f.kind.name()),
                    stats.examples.get(kind).map(example),
                ));
            }
        }
        if stats.kinds.contains("null") && !f.nullable {
            out.push(finding(
                FindingKind::BecameNull,
                severity,
                f.path,
                "never null before, now null in a record".into(),
                None,
            ));
        }
        if !f.values.is_empty() {
            for v in stats
                .values
                .iter()
                .filter(|v| !f.values.contains(&v.as_str()))
            {
                out.push(finding(
                    FindingKind::NewEnumValue,
                    Severity::Warning,
                    f.path,
                    format!(
                        "a value switchyard does not know (it knows {})",
                        f.values.join(", ")
                    ),
                    Some(example(&serde_json::Value::String(v.clone()))),
                ));
            }
        }
    }

    for (path, stats) in &now.fields {
        let before = previous.and_then(|p| p.fields.get(path));
        let varies =
            shape.is_some_and(|s| s.fields.iter().any(|f| f.path == path && f.formats_vary));
        let new_formats: Vec<&String> = match before {
            _ if varies => Vec::new(),
            Some(b) if !b.formats.is_empty() => stats
                .formats
                .iter()
                .filter(|f| !b.formats.contains(*f))
                .collect(),
            // No format known yet: a contract date not in its documented form is news.
            _ => match shape
                .and_then(|s| s.fields.iter().find(|f| f.path == path))
                .map(|f| f.kind)
            {
                Some(super::Kind::Date) => stats.formats.iter().filter(|f| !is_iso(f)).collect(),
                Some(super::Kind::Epoch) => {
                    stats.formats.iter().filter(|f| *f != "epoch").collect()
                }
                _ => Vec::new(),
            },
        };
        if !new_formats.is_empty() {
            let read = shape.is_some_and(|s| s.fields.iter().any(|f| f.path == path && f.read));
            let example_value = stats
                .examples
                .get("string")
                .or_else(|| stats.examples.get("number"));
            let parses = example_value.is_some_and(|v| crate::dates::parse_json(v).is_ok());
            out.push(finding(
                FindingKind::DateFormatChanged,
                match (parses, read, contract_paths.contains(path.as_str())) {
                    (false, true, _) => Severity::Breaking,
                    (_, _, true) => Severity::Warning,
                    _ => Severity::Info,
                },
                path,
                format!(
                    "dates now written as {}{}",
                    new_formats
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if parses {
                        " (still read by the lenient parser)"
                    } else {
                        " (which the date parser cannot read)"
                    }
                ),
                example_value.map(example),
            ));
        }
        // New since the snapshot; only the top of a new subtree.
        if let Some(prev) = previous {
            let p = parent(path);
            // Under a parent that was a container before (a retyped parent is its own finding).
            let parent_known = p.is_empty()
                || prev
                    .fields
                    .get(p)
                    .is_some_and(|s| s.kinds.contains("object") || s.kinds.contains("array"));
            if before.is_none() && parent_known && !contract_paths.contains(path.as_str()) {
                out.push(finding(
                    FindingKind::FieldAdded,
                    Severity::Info,
                    path,
                    format!(
                        "new field ({}) in {} of {} records",
                        stats.kinds.iter().cloned().collect::<Vec<_>>().join("/"),
                        stats.present,
                        now.base(path)
                    ),
                    None,
                ));
            }
        }
    }

    // Gone since the snapshot, for fields the contract does not list (it handled its own).
    if let Some(prev) = previous {
        for path in prev.fields.keys() {
            let p = parent(path);
            let parent_still = p.is_empty() || now.fields.contains_key(p);
            if !now.fields.contains_key(path)
                && parent_still
                && !contract_paths.contains(path.as_str())
                && now.base(path) >= MIN_RECORDS
                && usually_there(path)
            {
                out.push(finding(
                    FindingKind::FieldMissing,
                    Severity::Info,
                    path,
                    format!("in every record before, in none of {} now", now.base(path)),
                    None,
                ));
            }
        }
    }
    fold_renames(out, now, previous)
}

/// A field gone and a new field beside it holding the same values: one rename, as severe as
/// losing the old field.
fn fold_renames(mut out: Vec<Finding>, now: &Profile, previous: Option<&Profile>) -> Vec<Finding> {
    let Some(prev) = previous else { return out };
    let mut renames = Vec::new();
    for (i, gone) in out.iter().enumerate() {
        if gone.kind != FindingKind::FieldMissing {
            continue;
        }
        let Some(old) = prev.fields.get(&gone.path) else {
            continue;
        };
        let same_values = |added: &Finding| {
            added.kind == FindingKind::FieldAdded
                && parent(&added.path) == parent(&gone.path)
                && now
                    .fields
                    .get(&added.path)
                    .is_some_and(|n| !n.hashes.is_disjoint(&old.hashes))
        };
        if let Some(j) = out.iter().position(same_values) {
            renames.push((i, j));
        }
    }
    let mut drop = BTreeSet::new();
    for (i, j) in renames {
        let to = out[j].path.clone();
        let gone = &mut out[i];
        gone.kind = FindingKind::Renamed;
        gone.severity = gone.severity.max(Severity::Warning);
        gone.detail = format!("now called {to:?} (same values)");
        drop.insert(j);
    }
    let mut k = 0;
    out.retain(|_| {
        k += 1;
        !drop.contains(&(k - 1))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Field, Kind};
    use super::*;
    use serde_json::{json, Value};

    const SHAPE: Shape = Shape {
        object: "ticket",
        call: "GET /tickets",
        fields: &[
            Field::new("id", Kind::Id).read(),
            Field::new("status", Kind::String).values(&["new", "open", "solved"]),
            Field::new("updated_at", Kind::Date).read(),
            Field::new("priority", Kind::String).nullable(),
            Field::new("via", Kind::Object).sometimes(),
            Field::new("via/channel", Kind::String),
        ],
    };

    fn tickets(n: u64, change: impl Fn(&mut Value)) -> Vec<Value> {
        (1..=n)
            .map(|i| {
                let mut t = json!({"id": i, "status": "open", "updated_at": "2024-01-15T10:31:00Z",
                    "priority": null, "via": {"channel": "email"}, "subject": format!("s{i}")});
                change(&mut t);
                t
            })
            .collect()
    }

    fn run(before: &[Value], after: &[Value]) -> Vec<(FindingKind, Severity, String)> {
        let prev = Profile::build(before, Some(&SHAPE));
        let now = Profile::build(after, Some(&SHAPE));
        compare("zendesk", "ticket", Some(&SHAPE), &now, Some(&prev))
            .into_iter()
            .map(|f| (f.kind, f.severity, f.path))
            .collect()
    }

    #[test]
    fn unchanged_answers_have_no_findings() {
        assert_eq!(run(&tickets(5, |_| {}), &tickets(5, |_| {})), vec![]);
        // Nor does the first run, with no snapshot.
        let now = Profile::build(&tickets(5, |_| {}), Some(&SHAPE));
        assert!(compare("zendesk", "ticket", Some(&SHAPE), &now, None).is_empty());
    }

    #[test]
    fn each_change_is_one_finding_with_its_severity_and_path() {
        use FindingKind::*;
        use Severity::*;
        let base = tickets(5, |_| {});
        let case = |f: &dyn Fn(&mut Value)| run(&base, &tickets(5, f));
        assert_eq!(
            case(&|t| {
                t.as_object_mut().unwrap().remove("updated_at");
            }),
            vec![(FieldMissing, Breaking, "updated_at".into())]
        );
        assert_eq!(
            case(&|t| t["id"] = json!(true)),
            vec![(TypeChanged, Breaking, "id".into())]
        );
        assert_eq!(
            case(&|t| t["status"] = Value::Null),
            vec![(BecameNull, Warning, "status".into())]
        );
        assert_eq!(
            case(&|t| t["status"] = json!("triaged")),
            vec![(NewEnumValue, Warning, "status".into())]
        );
        assert_eq!(
            case(&|t| t["via"]["channel"] = json!({"name": "email"})),
            vec![(TypeChanged, Warning, "via/channel".into())]
        );
        assert_eq!(
            case(&|t| t["x_new"] = json!(1)),
            vec![(FieldAdded, Info, "x_new".into())]
        );
        assert_eq!(
            case(&|t| {
                let s = t.as_object_mut().unwrap().remove("status").unwrap();
                t["state"] = s;
            }),
            vec![(Renamed, Warning, "status".into())]
        );
        assert_eq!(
            case(&|t| t["updated_at"] = json!(1705314660)),
            vec![(DateFormatChanged, Warning, "updated_at".into())]
        );
    }

    #[test]
    fn a_sparse_field_is_not_reported_removed() {
        // `via` was in 2 of 5 records: a sample without it is not a removal.
        let before = tickets(5, |t| {
            if t["id"].as_u64().unwrap() > 2 {
                t.as_object_mut().unwrap().remove("via");
            }
        });
        let after = tickets(5, |t| {
            t.as_object_mut().unwrap().remove("via");
        });
        assert_eq!(run(&before, &after), vec![]);
        // In every record before, in none now: reported.
        let gone = run(&tickets(5, |_| {}), &after);
        assert_eq!(gone.len(), 1, "{gone:?}");
        assert_eq!(gone[0].2, "via");
    }
}
