//! intake: verify the signature on the raw bytes, normalize, deduplicate, enqueue, answer at once.
//!
//! Answers: 202 accepted (new event), 200 duplicate or handshake, 4xx for anything the sender
//! got wrong (bad path, method, signature, body), 409 while a duplicate is still being accepted,
//! 503 only when a dependency (DynamoDB, SQS, Secrets Manager) is down — so the vendor retries.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;
use tracing::{info, warn, Instrument};

use crate::decisions::DecisionStore;
use crate::event::Source;
use crate::handlers::correlation_attr;
use crate::idempotency::{in_progress_until_ms, payload_hash, Claim};
use crate::pacing::{Admission, Limiter};
use crate::secrets::SecretCache;
use crate::settings::SettingError;
use crate::webhook::gate::Gates;
use crate::webhook::{self, Inbound, SignedRequest};
use crate::CORRELATION_ATTR;

mod decide;
mod links;

/// What intake needs; built once per process.
#[derive(Clone, Debug)]
pub struct Intake {
    /// Sends accepted events to the classify queue.
    pub sqs: aws_sdk_sqs::Client,
    /// Where the signing secrets are read from, cached.
    pub secrets: SecretCache,
    /// The classify queue, where accepted events are sent (`CLASSIFY_QUEUE_URL`).
    pub classify_queue_url: String,
    /// The secret holding each source's signing secrets (`INTAKE_SECRET_ID`).
    pub signing_secret_id: String,
    /// Bodies above this are refused with 413 (`MAX_BODY_BYTES`, default 256 KiB).
    pub max_body_bytes: usize,
    /// The public base URL senders call (`PUBLIC_BASE_URL`), for schemes that sign the URL
    /// (HubSpot v2/v3, Twilio); default: `https://` + the request's host.
    pub public_base_url: Option<String>,
    /// Decision records: intake claims each delivery on its event's record (the record is the
    /// delivery's key), and `GET /events/{id}` reads it.
    pub decisions: DecisionStore,
    /// How long delivery ids are remembered: the shorter of `DELIVERY_KEY_RETENTION_DAYS` and the
    /// decision records' life. Bodies that sign their own time (Jira, HubSpot, Teams) dated
    /// before it are refused, so a replay after the record expired cannot pass.
    pub replay_window: chrono::Duration,
    /// Per-source allow-lists, required domains and request ceilings (`SOURCE_*` settings).
    pub gates: Gates,
    /// The shared budgets the ceilings are kept in (`PACING_TABLE`; needed only with ceilings).
    pub limiter: Option<Limiter>,
    /// HubSpot requests that declare an older signature version are refused.
    pub hubspot_min_version: crate::vendors::hubspot::inbound::Version,
    /// Decisions from Slack's buttons on review messages (needs `ACT_QUEUE_URL`; without it an
    /// interaction is acknowledged and logged).
    pub door: Option<decide::Door>,
}

impl Intake {
    /// Everything intake needs, from its settings; built once per process.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Result<Self, SettingError> {
        let gates = Gates::from_settings(s)?;
        let limiter = match s.optional("PACING_TABLE") {
            Some(table) => Some(Limiter::new(aws.ddb.clone(), table)),
            None if gates.has_ceilings() => {
                return Err(crate::settings::MissingSetting("PACING_TABLE").into())
            }
            None => None,
        };
        let decisions = DecisionStore::new(aws.ddb.clone(), s.decisions_table()?)
            .with_retention_days(s.decision_retention_days());
        Ok(Intake {
            gates,
            limiter,
            sqs: aws.sqs.clone(),
            secrets: SecretCache::new(aws.secrets.clone(), crate::secrets::CACHE_TTL),
            replay_window: s.delivery_key_retention().min(decisions.retention()),
            classify_queue_url: s.classify_queue_url()?.to_owned(),
            signing_secret_id: s.intake_secret_id()?.to_owned(),
            max_body_bytes: s.max_body_bytes(),
            hubspot_min_version: crate::vendors::hubspot::inbound::min_version(s)?,
            public_base_url: s.public_base_url(),
            door: decide::Door::from_settings(aws, s, decisions.clone())?,
            decisions,
        })
    }
}

/// intake's Lambda handler for the function URL: answers one request (a webhook, a decision
/// link, `GET /events/{id}`) at the current time.
pub async fn handler(
    deps: &Intake,
    event: LambdaEvent<LambdaFunctionUrlRequest>,
) -> Result<LambdaFunctionUrlResponse, Error> {
    handler_at(deps, event, Utc::now()).await
}

/// [`handler`] at a given time: what a request captured now meets when it is replayed weeks
/// later (signature windows, dated bodies and delivery keys all read this clock).
pub async fn handler_at(
    deps: &Intake,
    event: LambdaEvent<LambdaFunctionUrlRequest>,
    now: DateTime<Utc>,
) -> Result<LambdaFunctionUrlResponse, Error> {
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let deadline = event.context.deadline;
    let span = tracing::info_span!("intake", correlation_id = %correlation_id);
    let webhook = event
        .payload
        .raw_path
        .as_deref()
        .and_then(|p| p.strip_prefix("/webhooks/"))
        .map(|name| Source::parse(name).map_or("unknown", Source::as_str));
    let mut response = handle(deps, event.payload, &correlation_id, deadline, now)
        .instrument(span)
        .await;
    if let Some(source) = webhook {
        count_request(source, response.status_code);
    }
    if let Ok(v) = http::HeaderValue::from_str(&correlation_id) {
        response.headers.insert("x-correlation-id", v);
    }
    Ok(response)
}

/// Received and, for a refusal, rejected by reason — per source and in total. Accepted events
/// and duplicates are counted per event where they are decided (a batch holds several).
fn count_request(source: &str, status: i64) {
    use crate::metrics as m;
    // Zeros while nothing arrives, so a volume alarm reads a quiet hour as a quiet hour.
    m::register(m::EVENTS_ACCEPTED);
    m::register(m::WEBHOOKS_REJECTED);
    m::count(m::WEBHOOKS_RECEIVED, "source", source);
    let reason = match status {
        0..=399 => return,
        400 => "unreadable",
        401 => "signature",
        404 => "unknown_source",
        405 => "method",
        403 => "origin",
        409 => "in_progress",
        413 => "too_large",
        415 => "content_type",
        422 => "payload_mismatch",
        429 => "ceiling",
        503 => "unavailable",
        _ => "other",
    };
    m::count(m::WEBHOOKS_REJECTED, "reason", reason);
}

/// A refusal: status and a message that names what was wrong (no secrets, no payload content).
pub(crate) fn refuse(status: i64, source: &str, reason: String) -> LambdaFunctionUrlResponse {
    warn!(source, status, %reason, "webhook refused");
    respond(status, json!({"error": reason}))
}

async fn handle(
    deps: &Intake,
    req: LambdaFunctionUrlRequest,
    correlation_id: &str,
    deadline_ms: u64,
    now: DateTime<Utc>,
) -> LambdaFunctionUrlResponse {
    let path = req.raw_path.as_deref().unwrap_or("/");
    if let Some(event_id) = path.strip_prefix("/events/") {
        return super::status::status(deps, &req, event_id).await;
    }
    if let Some(token) = path.strip_prefix("/decide/") {
        return links::link(deps.door.as_ref(), &req, token, correlation_id, now).await;
    }
    let Some(source) = path.strip_prefix("/webhooks/").and_then(Source::parse) else {
        let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
        return refuse(
            404,
            "",
            format!(
                "no webhook endpoint at {path}; use /webhooks/{{{}}}",
                names.join("|")
            ),
        );
    };
    let name = source.as_str();
    let method = req.request_context.http.method.as_deref().unwrap_or("");
    if !method.eq_ignore_ascii_case("POST") {
        let mut r = refuse(
            405,
            name,
            format!("{method} is not allowed; webhooks are POSTed"),
        );
        r.headers
            .insert("allow", http::HeaderValue::from_static("POST"));
        return r;
    }
    // From settings alone: a sender outside its source's allow-list costs no AWS call.
    let ctx = &req.request_context;
    if let Err(reason) = deps.gates.check_origin(
        source,
        ctx.http.source_ip.as_deref(),
        ctx.domain_name.as_deref(),
    ) {
        return refuse(403, name, reason.to_string());
    }
    let content_type = match req.headers.get("content-type").map(|v| v.to_str()) {
        None => None,
        Some(Ok(ct)) => Some(ct),
        Some(Err(_)) => {
            return refuse(
                415,
                name,
                "the content-type header is not readable text (non-ASCII bytes)".into(),
            )
        }
    };
    if !crate::vendors::inbound::accepts_content_type(source, content_type) {
        return refuse(
            415,
            name,
            format!(
                "{name} webhooks are not sent as {}",
                content_type.unwrap_or("")
            ),
        );
    }
    let body = match raw_body(&req) {
        Ok(b) => b,
        Err(msg) => return refuse(400, name, msg),
    };
    if body.len() > deps.max_body_bytes {
        return refuse(
            413,
            name,
            format!(
                "body of {} bytes is over the {} byte limit",
                body.len(),
                deps.max_body_bytes
            ),
        );
    }

    let all_secrets = match deps.secrets.signing_secrets(&deps.signing_secret_id).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "signing secrets unavailable");
            return unavailable("signing secrets unavailable");
        }
    };
    let secrets = all_secrets.get(name).map(Vec::as_slice).unwrap_or_default();
    let url = public_url(deps, &req);
    let signed = SignedRequest {
        method,
        url: &url,
        headers: &req.headers,
        body: &body,
    };
    let verified =
        crate::vendors::inbound::verify(source, &signed, secrets, now, deps.hubspot_min_version)
            .map_err(|e| e.to_string())
            .and_then(|()| match source {
                Source::Salesforce => endpoint_token(&all_secrets, &req),
                _ => Ok(()),
            });
    if let Err(detail) = verified {
        // The operator's log says a source has no secret; the sender's answer does not.
        let logged = match secrets.is_empty() {
            true => format!("{detail} (the intake secret has no usable {name} entry)"),
            false => detail.clone(),
        };
        return unauthenticated(source, &detail, &logged);
    }
    let (events, ack) = match crate::vendors::inbound::normalize(source, &req.headers, &body) {
        Ok(Inbound::Handshake(reply)) => {
            info!(source = name, "handshake answered");
            return reply_with(200, reply);
        }
        Ok(Inbound::Events { events, ack }) => (events, ack),
        Err(e) => return refuse(400, name, format!("{name} payload not understood: {e}")),
    };
    if let Some(reason) = stale_signed_body(source, &events, now, deps.replay_window) {
        return refuse(401, name, reason);
    }
    if let Some(refusal) = over_ceiling(deps, source, now).await {
        return refusal;
    }
    // A click on a review message is a decision, never an event to classify.
    if let Some(payload) = interaction(source, &events) {
        return decide::interaction(deps.door.as_ref(), &payload, correlation_id, now).await;
    }

    let mut accepted = Vec::new();
    let mut duplicates = Vec::new();
    let single = events.len() == 1;
    for (index, n) in events.into_iter().enumerate() {
        // A delivery id the signature covers is the key; otherwise the signed bytes are (a
        // batch item without its own id gets the body hash plus its position), so a captured
        // request resent under a fresh id header is the same delivery.
        let hash = payload_hash(n.raw.get().as_bytes());
        let signed_id = n
            .delivery_id
            .clone()
            .filter(|_| crate::vendors::inbound::signs_delivery_id(source));
        if let (None, Some(vendor_id)) = (&signed_id, &n.delivery_id) {
            info!(source = name, vendor_delivery_id = %vendor_id, "unsigned delivery id; deduplicated on the signed body");
        }
        let delivery_id = match (signed_id, single) {
            (Some(id), _) => id,
            // The event as read: Twilio signs its form fields sorted, so a reordered body is
            // the same signed request.
            (None, _) if !crate::vendors::inbound::signs_delivery_id(source) => {
                format!("sha256:{hash}")
            }
            (None, true) => format!("sha256:{}", payload_hash(&body)),
            (None, false) => format!("sha256:{}#{index}", payload_hash(&body)),
        };
        match accept_one(
            deps,
            source,
            n,
            &delivery_id,
            &hash,
            correlation_id,
            deadline_ms,
            now,
        )
        .await
        {
            Ok(Accepted::New(id)) => accepted.push(id),
            Ok(Accepted::Duplicate(id)) => duplicates.push(id),
            Err(response) => return response,
        }
    }
    if let Some(ack) = ack {
        return reply_with(200, ack);
    }
    if accepted.is_empty() {
        return respond(
            200,
            json!({"status": "duplicate", "event_id": duplicates.first(), "event_ids": duplicates}),
        );
    }
    respond(
        202,
        json!({"status": "accepted", "event_id": accepted.first(), "event_ids": accepted, "duplicates": duplicates.len()}),
    )
}

/// A Slack interaction's payload (a click, a modal's submission): nothing to classify.
fn interaction(source: Source, events: &[webhook::Normalized]) -> Option<serde_json::Value> {
    let first = events.first()?;
    (source == Source::Slack && first.event_type.starts_with("interactivity:"))
        .then(|| serde_json::from_str(first.raw.get()).ok())?
}

/// A verified request past its source's ceiling (shared by every instance): 429 with the wait,
/// so the vendor retries later; 503 when the shared budget cannot be read.
async fn over_ceiling(
    deps: &Intake,
    source: Source,
    now: DateTime<Utc>,
) -> Option<LambdaFunctionUrlResponse> {
    let rate = deps.gates.ceiling(source)?;
    let limiter = deps.limiter.as_ref()?;
    let key = format!("intake#{source}");
    match limiter
        .acquire(
            &key,
            rate,
            now.timestamp_micros(),
            std::time::Duration::ZERO,
        )
        .await
    {
        Ok(Admission::Go { .. }) => None,
        Ok(Admission::Wait { retry_after }) => {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let mut r = refuse(
                429,
                source.as_str(),
                format!("{source} webhooks are over this deployment's ceiling for {source} (SOURCE_CEILINGS); retry after {secs} s"),
            );
            if let Ok(v) = http::HeaderValue::from_str(&secs.to_string()) {
                r.headers.insert("retry-after", v);
            }
            Some(r)
        }
        Err(e) => {
            warn!(error = %e, "request ceiling unavailable");
            Some(unavailable("request ceiling unavailable"))
        }
    }
}

/// Jira's `timestamp`, HubSpot's `occurredAt` and a Teams activity's `timestamp` are inside the
/// signed body: one dated before the delivery-id window is a replay the key no longer catches (or
/// a sender's clock years off). GitHub's times are the object's, not the delivery's (a push of
/// old commits is new), so GitHub is not judged by them.
fn stale_signed_body(
    source: Source,
    events: &[webhook::Normalized],
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Option<String> {
    if !matches!(source, Source::Jira | Source::Hubspot | Source::Teams) {
        return None;
    }
    let oldest = events.iter().filter_map(|n| n.occurred_at).min()?;
    (oldest < now - window).then(|| {
        format!(
            "signed {source} body is dated {}, older than the {}-day replay window; it is not accepted again",
            oldest.format("%Y-%m-%d %H:%M UTC"),
            window.num_days()
        )
    })
}

/// A 401 that tells the sender what is wrong with its request (a missing header, a stale
/// timestamp, a signature that matches no active secret) but not whether the source is
/// configured (an unconfigured source fails exactly as a wrong signature does), nor for
/// Salesforce whether the organization id was right. The detail goes to the log.
fn unauthenticated(source: Source, detail: &str, logged: &str) -> LambdaFunctionUrlResponse {
    let name = source.as_str();
    warn!(source = name, status = 401, detail = %logged, "webhook refused");
    let public = match source {
        Source::Salesforce => "salesforce outbound messages must come from an allowed organization to the endpoint URL with its token (?token=…)".to_owned(),
        _ => format!("{name} signature check failed: {detail}"),
    };
    respond(401, json!({"error": public}))
}

/// Salesforce outbound messages are unsigned: the endpoint URL must carry one of the intake
/// secret's `"salesforce_token"`s (`?token=…`), compared in constant time. With none configured
/// the source refuses everything: an organization id is printed on public web-to-case forms.
fn endpoint_token(
    secrets: &crate::secrets::SigningSecrets,
    req: &LambdaFunctionUrlRequest,
) -> Result<(), String> {
    let Some(tokens) = secrets.get("salesforce_token").filter(|t| !t.is_empty()) else {
        return Err("no \"salesforce_token\" in the intake secret: add one (a random string) and register the endpoint URL with ?token=<it>".into());
    };
    let presented = req
        .raw_query_string
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v)
        })
        .unwrap_or_default();
    let presented = presented.as_bytes();
    if presented.is_empty() || token_matches(tokens, presented).is_err() {
        return Err("the endpoint URL's token is missing or wrong".into());
    }
    Ok(())
}

/// Whether `presented` is one of the configured tokens: every one compared in constant time.
pub(crate) fn token_matches(
    tokens: &[secrecy::SecretString],
    presented: &[u8],
) -> Result<(), webhook::VerifyError> {
    webhook::signature::verify_any(tokens, |t| webhook::signature::ct_eq(t, presented))
}

enum Accepted {
    New(String),
    Duplicate(String),
}

/// Dedupe and enqueue one event. `Err` is the response to send at once.
#[allow(clippy::too_many_arguments)]
async fn accept_one(
    deps: &Intake,
    source: Source,
    n: webhook::Normalized,
    delivery_id: &str,
    hash: &str,
    correlation_id: &str,
    deadline_ms: u64,
    now: DateTime<Utc>,
) -> Result<Accepted, LambdaFunctionUrlResponse> {
    let name = source.as_str();
    let event_id = crate::event::event_id_for(source, delivery_id);
    let event = n.into_event(event_id.clone(), source, delivery_id.to_owned(), now);
    // Refused before the claim: what classify or act could not read must not be accepted.
    let body = event.queue_body().map_err(|e| {
        let status = match e {
            crate::event::Unqueueable::TooLarge(_) => 413,
            _ => 400,
        };
        refuse(status, name, e.to_string())
    })?;
    // The claim is the decision record's first write: `GET /events/{id}` answers from then on.
    match deps
        .decisions
        .claim_delivery(
            &event,
            correlation_id,
            hash,
            now,
            in_progress_until_ms(deadline_ms, now),
        )
        .await
    {
        Ok(Claim::Claimed | Claim::Reclaimed) => {}
        // The event id is the delivery's: the first delivery's answer is this one.
        Ok(Claim::Completed { .. }) => {
            let first = event_id;
            info!(source = name, %delivery_id, event_id = %first, "duplicate delivery acknowledged");
            crate::metrics::count(crate::metrics::DUPLICATES, "source", name);
            if let Err(e) = deps.decisions.record_duplicate(&first).await {
                warn!(error = %e, "could not count the redelivery on the decision record");
            }
            return Ok(Accepted::Duplicate(first));
        }
        Ok(Claim::InProgress) => {
            let mut r = respond(
                409,
                json!({"error": "this delivery is being accepted right now; retry shortly"}),
            );
            r.headers
                .insert("retry-after", http::HeaderValue::from_static("2"));
            return Err(r);
        }
        Ok(Claim::PayloadMismatch) => {
            return Err(refuse(
                422,
                name,
                format!("delivery id {delivery_id} was already used with a different payload"),
            ));
        }
        Err(e) => {
            warn!(error = %e, "decision store unavailable");
            return Err(unavailable("delivery store unavailable"));
        }
    }
    let sent = deps
        .sqs
        .send_message()
        .queue_url(&deps.classify_queue_url)
        .message_body(body)
        .message_attributes(CORRELATION_ATTR, correlation_attr(correlation_id))
        .send()
        .await;
    if let Err(e) = sent {
        warn!(error = %crate::aws::error_message(&e), "enqueue failed; releasing the claim so the vendor's retry is accepted");
        if let Err(e) = deps.decisions.release_delivery(&event_id).await {
            warn!(error = %e, "could not release the delivery's claim; it frees itself at this invocation's deadline");
        }
        return Err(unavailable("queue unavailable"));
    }
    if let Err(e) = deps.decisions.mark_queued(&event_id, now).await {
        // Queued all the same: a redelivery inside the claim's window gets 409; past it, the event
        // is queued again, and classify's one decision and act's keys make it one effect.
        warn!(error = %e, "could not mark the delivery queued");
    }
    if !event.unknown_fields.is_empty() {
        info!(source = name, fields = ?event.unknown_fields, "payload has fields this version does not know (drift)");
    }
    info!(source = name, event_type = %event.event_type, %delivery_id, %event_id, "accepted");
    crate::metrics::count(crate::metrics::EVENTS_ACCEPTED, "source", name);
    Ok(Accepted::New(event_id))
}

/// The URL the sender called, as schemes that sign it need it.
fn public_url(deps: &Intake, req: &LambdaFunctionUrlRequest) -> String {
    let base = match &deps.public_base_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let host = req
                .request_context
                .domain_name
                .clone()
                .or_else(|| {
                    req.headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            format!("https://{host}")
        }
    };
    let path = req.raw_path.as_deref().unwrap_or("/");
    match req.raw_query_string.as_deref().filter(|q| !q.is_empty()) {
        Some(q) => format!("{base}{path}?{q}"),
        None => format!("{base}{path}"),
    }
}

fn reply_with(status: i64, reply: webhook::Reply) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status;
    r.headers.insert(
        "content-type",
        http::HeaderValue::from_static(reply.content_type),
    );
    r.body = Some(reply.body);
    r
}

fn raw_body(req: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, String> {
    let body = req.body.as_deref().unwrap_or_default();
    if req.is_base64_encoded {
        STANDARD
            .decode(body)
            .map_err(|_| "body is marked base64 but is not valid base64".to_owned())
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

pub(crate) fn unavailable(what: &str) -> LambdaFunctionUrlResponse {
    let mut r = respond(503, json!({"error": format!("{what}; please retry")}));
    r.headers
        .insert("retry-after", http::HeaderValue::from_static("5"));
    r
}

pub(crate) fn respond(status: i64, body: serde_json::Value) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status;
    r.headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r.body = Some(body.to_string());
    r
}

#[cfg(test)]
mod tests;
