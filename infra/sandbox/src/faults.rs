//! Switchable faults, one middleware for every vendor: each injected fault applies to that
//! vendor's next request(s). Status faults answer instead of the vendor; shape faults let the
//! vendor answer, then change its JSON the way APIs drift (a new field, a missing or renamed one,
//! dates in another format).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::Shared;

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// An error page from the vendor's edge: `status` with an HTML body.
    ServerError(u16),
    /// The vendor answers, after this long.
    Slow(Duration),
    /// No answer until this long has passed (longer than the client waits), then a 504.
    Hang(Duration),
    /// The credential has expired: the vendor's own auth-failure answer.
    ExpiredToken,
    /// A field nobody documented appears in the answer.
    ExtraField,
    /// This field is missing from the answer (wherever it occurs, two levels deep).
    MissingField(&'static str),
    /// This field is renamed (`from`, `to`).
    RenamedField(&'static str, &'static str),
    /// Timestamps arrive as epoch seconds or RFC 2822 instead of ISO 8601.
    MixedDates,
    /// The vendor makes the effect of the next write (not a GET), then the connection breaks
    /// before its answer arrives (the status line comes, the body never does).
    LostAnswer,
}

impl Fault {
    /// A short name for counting what was served (`503`, `slow`, `lost_answer`, …).
    pub fn label(&self) -> String {
        match self {
            Fault::ServerError(status) => status.to_string(),
            Fault::Slow(_) => "slow".into(),
            Fault::Hang(_) => "hang".into(),
            Fault::ExpiredToken => "expired_token".into(),
            Fault::ExtraField => "extra_field".into(),
            Fault::MissingField(_) => "missing_field".into(),
            Fault::RenamedField(..) => "renamed_field".into(),
            Fault::MixedDates => "mixed_dates".into(),
            Fault::LostAnswer => "lost_answer".into(),
        }
    }
}

/// Queued faults per vendor, each used once, and how many of each kind were served.
#[derive(Debug, Default)]
pub struct Faults {
    queued: HashMap<&'static str, Vec<Fault>>,
    /// `"<vendor> <label>"` → requests that met the fault (what happened, not what was planned).
    served: std::collections::BTreeMap<String, usize>,
}

impl Faults {
    pub fn push(&mut self, vendor: &'static str, fault: Fault, times: usize) {
        let q = self.queued.entry(vendor).or_default();
        for _ in 0..times {
            q.insert(0, fault.clone());
        }
    }

    pub fn clear(&mut self, vendor: &str) {
        self.queued.remove(vendor);
    }

    pub fn pending(&self, vendor: &str) -> usize {
        self.queued.get(vendor).map_or(0, Vec::len)
    }

    fn next(&mut self, vendor: &str, method: &axum::http::Method) -> Option<Fault> {
        let q = self.queued.get_mut(vendor)?;
        // A lost answer waits for a write: reads before it (a connector's lookup) pass.
        if matches!(q.last(), Some(Fault::LostAnswer)) && method == axum::http::Method::GET {
            return None;
        }
        let fault = q.pop()?;
        *self
            .served
            .entry(format!("{vendor} {}", fault.label()))
            .or_default() += 1;
        Some(fault)
    }

    /// Faults served so far, by `"<vendor> <label>"`.
    pub fn served(&self) -> std::collections::BTreeMap<String, usize> {
        self.served.clone()
    }
}

/// The middleware for one vendor's routes.
pub(crate) async fn apply(
    State((shared, vendor)): State<(Arc<Shared>, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let (fault, blocked, offset, drift, effects_before, hook) = {
        let mut state = shared.state.lock().expect("sandbox state");
        (
            state.faults.next(vendor, req.method()),
            state.ip_blocked.contains(vendor),
            state.clock_offset_secs,
            state.drift.get(vendor).cloned().unwrap_or_default(),
            state.ledger.len(),
            state.on_effect.clone(),
        )
    };
    if blocked {
        return ip_rejected(vendor);
    }
    let resp = answer(fault, vendor, offset, drift, req, next).await;
    // The vendor has made its effects and its answer is not sent yet: the moment a caller's
    // worker holds an effect it has not recorded (the soak kills workers here on purpose).
    if let Some(hook) = hook {
        let made: Vec<_> = {
            let state = shared.state.lock().expect("sandbox state");
            state
                .ledger
                .get(effects_before..)
                .unwrap_or_default()
                .to_vec()
        };
        for entry in &made {
            (hook.0)(entry);
        }
    }
    resp
}

async fn answer(
    fault: Option<Fault>,
    vendor: &'static str,
    offset: i64,
    drift: Vec<super::drift::Drift>,
    req: Request,
    next: Next,
) -> Response {
    let Some(fault) = fault else {
        let mut resp = next.run(req).await;
        if !drift.is_empty() {
            resp = drifted(resp, vendor, &drift).await;
        }
        // Every vendor answer carries its clock in `Date`, as real APIs' do.
        let at = chrono::Utc::now() + chrono::Duration::seconds(offset);
        if let Ok(v) = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string().parse() {
            resp.headers_mut().insert("date", v);
        }
        return resp;
    };
    match fault {
        Fault::ServerError(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let page = format!(
                "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
            );
            (status, [("content-type", "text/html")], page).into_response()
        }
        Fault::Slow(d) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Fault::ExpiredToken => expired(vendor),
        Fault::LostAnswer => {
            let (parts, _) = next.run(req).await.into_parts();
            let broken = futures::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset before the answer",
                ))
            });
            let mut resp = Response::from_parts(parts, Body::from_stream(broken));
            resp.headers_mut().remove("content-length");
            resp
        }
        shape => {
            let resp = next.run(req).await;
            let (parts, body) = resp.into_parts();
            let Ok(bytes) = to_bytes(body, 1 << 20).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
                return Response::from_parts(parts, Body::from(bytes));
            };
            reshape(&mut v, &shape, 0);
            let mut resp = Response::from_parts(parts, Body::from(v.to_string()));
            resp.headers_mut().remove("content-length");
            resp
        }
    }
}

/// The answer with the vendor's switched-on API changes applied to its records.
async fn drifted(resp: Response, vendor: &str, drift: &[super::drift::Drift]) -> Response {
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, 1 << 20).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    for d in drift {
        d.apply(vendor, &mut v);
    }
    let mut resp = Response::from_parts(parts, Body::from(v.to_string()));
    resp.headers_mut().remove("content-length");
    resp
}

/// Each vendor's answer to a caller its IP allowlist refuses (Atlassian's documented body;
/// Slack's `accesslimited`; a plain 403 elsewhere).
fn ip_rejected(vendor: &str) -> Response {
    match vendor {
        "jira" => (StatusCode::FORBIDDEN, axum::Json(json!({"errorMessages": ["The IP address has been rejected because it is not on the allowed list. See your admin for more information."], "errors": {}})))
            .into_response(),
        "slack" => axum::Json(json!({"ok": false, "error": "accesslimited"})).into_response(),
        // Casebook's allow-list sits in its proxy, which answers with its own page.
        "casebook" => (StatusCode::FORBIDDEN, [("content-type", "text/html")],
            "<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1><p>Requests from this address are not on the allow list.</p></body></html>")
            .into_response(),
        _ => (StatusCode::FORBIDDEN, axum::Json(json!({"error": "Forbidden", "description": "Your IP address is not on the allowed list"}))).into_response(),
    }
}

/// Each vendor's documented answer to an expired credential.
fn expired(vendor: &str) -> Response {
    match vendor {
        "slack" => axum::Json(json!({"ok": false, "error": "token_expired"})).into_response(),
        "hubspot" => (StatusCode::UNAUTHORIZED, axum::Json(json!({"status": "error",
            "message": "The OAuth token used to make this call expired 2 hour(s) ago.",
            "correlationId": "5e3b0c2a-0000-4000-8000-000000000000", "category": "EXPIRED_AUTHENTICATION"})))
            .into_response(),
        "salesforce" => (StatusCode::UNAUTHORIZED, axum::Json(json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])))
            .into_response(),
        "jira" => (StatusCode::UNAUTHORIZED, "Client must be authenticated to access this resource.").into_response(),
        _ => (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "Couldn't authenticate you"}))).into_response(),
    }
}

fn reshape(v: &mut Value, fault: &Fault, depth: usize) {
    if depth > 2 {
        return;
    }
    if let Value::Object(map) = v {
        match fault {
            Fault::ExtraField if depth <= 1 => {
                map.insert(
                    "x_added_without_notice".into(),
                    json!({"since": "2026-11-01"}),
                );
            }
            Fault::MissingField(name) => {
                map.remove(*name);
            }
            Fault::RenamedField(from, to) => {
                if let Some(x) = map.remove(*from) {
                    map.insert((*to).into(), x);
                }
            }
            Fault::MixedDates => {
                for (i, (_, x)) in map.iter_mut().enumerate() {
                    if let Some(t) = x
                        .as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    {
                        *x = if i % 2 == 0 {
                            json!(t.timestamp())
                        } else {
                            json!(t.to_rfc2822())
                        };
                    }
                }
            }
            _ => {}
        }
        for (_, child) in map.iter_mut() {
            reshape(child, fault, depth + 1);
        }
    } else if let Value::Array(items) = v {
        for item in items {
            reshape(item, fault, depth + 1);
        }
    }
}
