//! One connection's structure check (the canary runs it daily): read a few records of each
//! object type, compare them with the contract and the last snapshot, read the vendor's write
//! requirements against the configured routes, and store what was found.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::connectors::Connector;
use crate::drift::compare::compare;
use crate::drift::profile::Profile;
use crate::drift::store::DriftStore;
use crate::drift::{Finding, FindingKind, RequiredField, Severity};
use crate::routing::{ActionTemplate, RoutingConfig};

/// A finding as this run reports it: its id, and whether it is news (a human is told once).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reported {
    /// The finding's short id, the one a person types (`switchyard canary ack <id>`).
    pub id: String,
    /// What was found; serialized inline, beside `id` and `new`.
    #[serde(flatten)]
    pub finding: Finding,
    /// Whether the finding is new, or back after being resolved; `false` if it could not be stored.
    pub new: bool,
}

/// What one connection's structure check did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StructureCheck {
    /// Records read per object type.
    pub records: BTreeMap<String, usize>,
    /// Every finding this run made, new or already known.
    pub findings: Vec<Reported>,
    /// Findings from earlier runs not seen any more.
    pub resolved: Vec<String>,
    /// The last error the check met and carried on past (reading, storing), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The routes (by name) whose actions go through `connector`, with those actions.
pub(crate) fn routes_using<'a>(
    routing: &'a RoutingConfig,
    connector: &str,
) -> Vec<(String, Vec<&'a ActionTemplate>)> {
    let mut out = Vec::new();
    let mut add = |name: String, actions: &'a [ActionTemplate]| {
        let mine: Vec<&ActionTemplate> = actions
            .iter()
            .filter(|a| a.connector == connector)
            .collect();
        if !mine.is_empty() {
            out.push((name, mine));
        }
    };
    for r in &routing.routes {
        let r = r.get_ref();
        let mut name = format!("route {:?}", r.category);
        if let Some(s) = &r.source {
            name.push_str(&format!(" from {s}"));
        }
        if let Some(l) = &r.language {
            name.push_str(&format!(" in {l}"));
        }
        add(name, &r.actions);
    }
    if let Some(d) = &routing.default {
        add("default route".into(), &d.actions);
    }
    if let Some(r) = &routing.review {
        add("review route".into(), &r.actions);
    }
    out
}

/// Required fields the configured actions do not set: one breaking finding per field (a warning
/// when the vendor only needs it later), naming every route that would fail.
pub(crate) fn unmet_requirements(
    connector: &str,
    required: &[RequiredField],
    routes: &[(String, Vec<&ActionTemplate>)],
) -> Vec<Finding> {
    required
        .iter()
        .filter_map(|rf| {
            let failing: Vec<String> = routes
                .iter()
                .filter(|(_, actions)| {
                    actions
                        .iter()
                        .any(|a| a.action == rf.action && !a.params.contains_key(&rf.param))
                })
                .map(|(name, _)| format!("{name} ({connector}.{})", rf.action))
                .collect();
            (!failing.is_empty()).then(|| Finding {
                connector: connector.to_owned(),
                object: rf.object.to_owned(),
                kind: FindingKind::RequiredField,
                severity: if rf.enforced_on_create {
                    Severity::Breaking
                } else {
                    Severity::Warning
                },
                path: rf.field.clone(),
                detail: format!(
                    "{:?} ({}) is required {}; set it with the action parameter `{}`",
                    rf.name,
                    rf.field,
                    if rf.enforced_on_create {
                        "to create: the create will be refused"
                    } else {
                        "before the object can be closed: created ones wait for a person"
                    },
                    rf.param
                ),
                example: None,
                routes: failing,
            })
        })
        .collect()
}

/// Check one connection now.
pub(crate) async fn check_structure(
    name: &str,
    connector: &dyn Connector,
    store: &DriftStore,
    routing: &RoutingConfig,
    now: DateTime<Utc>,
) -> StructureCheck {
    let mut out = StructureCheck::default();
    let routes = routes_using(routing, name);
    let route_names: Vec<String> = routes.iter().map(|(n, _)| n.clone()).collect();
    let mut findings = Vec::new();
    let mut examined = BTreeSet::new();
    let mut snapshots = Vec::new();
    match connector.samples().await {
        Ok(samples) => {
            for (object, records) in samples {
                out.records.insert(object.to_owned(), records.len());
                if records.is_empty() {
                    continue;
                }
                examined.insert(object.to_owned());
                let shape = connector.contract().and_then(|c| c.shape(object));
                let previous = match store.snapshot(name, object).await {
                    Ok(p) => p,
                    Err(e) => {
                        out.error = Some(e.to_string());
                        return out;
                    }
                };
                let profile = Profile::build(&records, shape);
                let found = compare(name, object, shape, &profile, previous.as_ref());
                // The snapshot moves on only when nothing needs a person: a change that does
                // stays reported each run until it is fixed or the contract follows it.
                if !found.iter().any(|f| f.severity >= Severity::Warning) {
                    snapshots.push((object, profile));
                }
                findings.extend(found.into_iter().map(|mut f| {
                    f.routes = route_names.clone();
                    f
                }));
            }
        }
        Err(e) => {
            out.error = Some(format!("reading samples: {e}"));
            return out;
        }
    }
    let templates: Vec<&ActionTemplate> = routes.iter().flat_map(|(_, a)| a.clone()).collect();
    examined.insert("configuration".to_owned());
    findings.extend(
        connector
            .check_configuration(&templates)
            .await
            .into_iter()
            .map(|mut f| {
                f.routes = route_names.clone();
                f
            }),
    );
    match connector.required_fields(&templates).await {
        Ok(required) => {
            examined.extend(required.iter().map(|r| r.object.to_owned()));
            findings.extend(unmet_requirements(name, &required, &routes));
        }
        Err(e) => out.error = Some(format!("reading write requirements: {e}")),
    }
    for (object, profile) in snapshots {
        if let Err(e) = store.put_snapshot(name, object, &profile, now).await {
            out.error = Some(e.to_string());
        }
    }
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in findings {
        let id = f.id();
        seen.entry(f.object.clone()).or_default().insert(id.clone());
        let new = match store.raise(&f, "canary", now).await {
            Ok(new) => new,
            Err(e) => {
                out.error = Some(e.to_string());
                false
            }
        };
        if new {
            crate::metrics::count(
                crate::metrics::DRIFT_FINDINGS,
                "severity",
                f.severity.name(),
            );
            warn!(connector = name, id = %id, kind = f.kind.name(), severity = f.severity.name(),
                  object = %f.object, path = %f.path, detail = %f.detail, "API drift found");
        }
        out.findings.push(Reported {
            id,
            finding: f,
            new,
        });
    }
    for object in &examined {
        let ids = seen.remove(object).unwrap_or_default();
        match store.resolve_unseen(name, object, &ids, now).await {
            Ok(r) => out.resolved.extend(r),
            Err(e) => out.error = Some(e.to_string()),
        }
    }
    if out.error.is_none() {
        if let Err(e) = store.set_checked(name, now).await {
            out.error = Some(e.to_string());
        }
    }
    info!(
        connector = name,
        findings = out.findings.len(),
        resolved = out.resolved.len(),
        "structure checked"
    );
    out
}

/// Record a refused write's fields as findings (act); `Ok(ids)` of the findings raised.
pub(crate) async fn record_refusal(
    store: &DriftStore,
    connector: &str,
    action: &str,
    fields: &[String],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, crate::aws::StoreError> {
    let mut ids = Vec::new();
    for field in fields {
        let f = Finding {
            connector: connector.to_owned(),
            object: action.to_owned(),
            kind: FindingKind::WriteRefused,
            severity: Severity::Breaking,
            path: field.clone(),
            detail: format!(
                "{connector} refused {action} for this field: {}",
                crate::redact::redact(reason)
            ),
            example: None,
            routes: Vec::new(),
        };
        if store.raise(&f, "act", now).await? {
            crate::metrics::count(crate::metrics::DRIFT_FINDINGS, "severity", "breaking");
        }
        ids.push(f.id());
    }
    Ok(ids)
}

/// Store what live traffic showed (`connectors::drift`) as findings from `source` (`act`,
/// `intake`). Best effort: a finding that cannot be stored now is seen again later.
pub(crate) async fn store_observed(store: Option<&DriftStore>, source: &str) {
    let observed = crate::connectors::drift::take_observed();
    let Some(store) = store else { return };
    for f in observed {
        match store.raise(&f, source, Utc::now()).await {
            Ok(true) => {
                crate::metrics::count(
                    crate::metrics::DRIFT_FINDINGS,
                    "severity",
                    f.severity.name(),
                );
                warn!(connector = %f.connector, object = %f.object, kind = f.kind.name(),
                      path = %f.path, source, "API drift in live traffic");
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not store a drift finding"),
        }
    }
}
