//! The decision links' door at intake (`/decide/{token}`, see `handlers::decision::links`):
//! a GET shows a small page saying what the link will do, for which event, and changes nothing
//! (link scanners and chat unfurlers prefetch GETs); only the POST from that page decides. A
//! forged link is refused (403), an expired one too (410); after any decision every link of the
//! event is answered with who decided what (409).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::decide::Door;
use super::unavailable;
use crate::handlers::decision::links::{verify, LinkError};
use crate::handlers::decision::Verdict;
use crate::routing::{Choice, Markup};

fn page(status: i64, title: &str, body: &str) -> LambdaFunctionUrlResponse {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
         <title>{t}</title></head><body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\">\
         <h1>{t}</h1>{body}</body></html>",
        t = Markup::Html.escape(title)
    );
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status;
    for (k, v) in [
        ("content-type", "text/html; charset=utf-8"),
        // The token is the authority: never cached, never sent on as a referrer, never framed.
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    ] {
        r.headers.insert(k, http::HeaderValue::from_static(v));
    }
    r.body = Some(html);
    r
}

fn para(text: &str) -> String {
    format!("<p>{}</p>", Markup::Html.escape(text))
}

/// What a choice will do, in words.
fn will(choice: &Choice) -> String {
    match choice {
        Choice::Approve => {
            "Approve: switchyard does what the route for its best guess does.".into()
        }
        Choice::Route(c) => format!("Route as {c}: switchyard does what the route for {c} does."),
        Choice::Dismiss => "Dismiss: switchyard does nothing more with it.".into(),
        Choice::TakeOver => {
            "Take over: a person handles it in its tool; switchyard does nothing more.".into()
        }
    }
}

pub(super) async fn link(
    door: Option<&Door>,
    req: &LambdaFunctionUrlRequest,
    token: &str,
    correlation_id: &str,
    now: DateTime<Utc>,
) -> LambdaFunctionUrlResponse {
    let Some((door, secret_id)) = door.and_then(|d| Some((d, d.link_secret_id.as_deref()?))) else {
        return page(
            404,
            "No decision links here",
            &para("This deployment does not use decision links."),
        );
    };
    let key = match door.secrets.get(secret_id).await {
        Ok(k) => k,
        Err(e) => {
            warn!(error = %e, "decision link key unavailable");
            return unavailable("decision link key unavailable");
        }
    };
    let link = match verify(&key, token, now) {
        Ok(l) => l,
        Err(e @ LinkError::Forged) => {
            info!("a forged decision link was refused");
            return page(403, "Link refused", &para(&e.to_string()));
        }
        Err(e @ LinkError::Expired(_)) => {
            return page(410, "Link expired", &para(&format!("{e}; nothing changed. An operator can still decide with `switchyard review resolve`.")));
        }
    };
    let method = req.request_context.http.method.as_deref().unwrap_or("GET");
    if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
        let about = match door.decider.decisions.get(&link.event_id).await {
            Ok(Some(r)) => {
                let decided = r
                    .human
                    .as_ref()
                    .map(|h| para(&format!("Already decided: {}.", h.line())))
                    .unwrap_or_default();
                format!(
                    "{}{}{}{decided}",
                    para(&format!(
                        "Event {} from {} (best guess {} at {:.2}).",
                        r.event_id, r.source, r.category, r.confidence
                    )),
                    para(&format!(
                        "Why a person: {}",
                        r.reason.as_deref().unwrap_or("-")
                    )),
                    para(&format!(
                        "What arrived (PII-redacted): {}",
                        r.input.as_deref().unwrap_or("-")
                    )),
                )
            }
            Ok(None) => para(&format!(
                "switchyard has no event {} (any more).",
                link.event_id
            )),
            Err(e) => {
                warn!(error = %e, "decision store unavailable");
                return unavailable("decision store unavailable");
            }
        };
        let body = format!(
            "{}{about}<form method=\"post\"><button type=\"submit\">Confirm: {}</button></form>",
            para(&will(&link.choice)),
            Markup::Html.escape(&link.choice.describe())
        );
        return page(200, "Decide on an event", &body);
    }
    if !method.eq_ignore_ascii_case("POST") {
        return page(
            405,
            "Not allowed",
            &para("Open the link, then confirm on its page."),
        );
    }
    let verdict = match door
        .decider
        .decide(
            &link.event_id,
            &link.choice,
            "a decision link",
            "link",
            None,
            None,
            now,
        )
        .await
    {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, "decision store unavailable");
            return unavailable("decision store unavailable");
        }
    };
    if let Verdict::Already(h) = &verdict {
        door.decider.resend_if_stuck(&link.event_id, h).await;
    }
    let status = match &verdict {
        Verdict::Decided(_) => 200,
        Verdict::Unknown => 404,
        Verdict::Already(_) | Verdict::NotWaiting(_) | Verdict::Expired(_) => 409,
        _ => 422,
    };
    if status == 200 {
        if let Err(e) = door
            .decider
            .hand_to_act(&link.event_id, None, correlation_id)
            .await
        {
            warn!(error = %e, event_id = %link.event_id, "decided, but act could not be told; the record holds the decision");
            return unavailable("act queue unavailable");
        }
        metrics::counter!(crate::metrics::HUMAN_DECISIONS, "choice" => link.choice.as_str())
            .increment(1);
    }
    info!(event_id = %link.event_id, choice = link.choice.as_str(), status, "decision link used");
    page(status, "Decision", &para(&verdict.answer(&link.event_id)))
}
