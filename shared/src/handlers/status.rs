//! `GET /events/{id}`: where an accepted event is, for a sender holding a status token.
//!
//! Tokens live in the intake secret: one listed under `"status"` reads every event; one listed
//! under `"status:<source>"` (e.g. `"status:zendesk"`) reads only that source's events — an event
//! of another source answers exactly as an unknown id does, so a scoped token learns nothing of
//! the rest. Every token is compared in constant time; the answer carries state, category, route
//! and reason, never customer text.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use serde_json::json;
use tracing::warn;

use super::intake::{refuse, respond, token_matches, unavailable, Intake};

/// What a presented token may read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    All,
    Sources(Vec<String>),
}

impl Scope {
    /// The scope of `presented` among the secret's tokens, or `None` when no token matches.
    pub(crate) fn of(secrets: &crate::secrets::SigningSecrets, presented: &[u8]) -> Option<Scope> {
        if presented.is_empty() {
            return None;
        }
        // Every list is compared, whatever matched first, so timing tells nothing.
        let mut all = false;
        let mut sources = Vec::new();
        for (key, tokens) in secrets {
            let matched = token_matches(tokens, presented).is_ok();
            if key == "status" {
                all |= matched;
            } else if let Some(source) = key.strip_prefix("status:") {
                if matched {
                    sources.push(source.to_owned());
                }
            }
        }
        match (all, sources.is_empty()) {
            (true, _) => Some(Scope::All),
            (false, false) => Some(Scope::Sources(sources)),
            (false, true) => None,
        }
    }

    fn reads(&self, source: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Sources(s) => s.iter().any(|s| s == source),
        }
    }
}

pub(crate) async fn status(
    deps: &Intake,
    req: &LambdaFunctionUrlRequest,
    event_id: &str,
) -> LambdaFunctionUrlResponse {
    let method = req.request_context.http.method.as_deref().unwrap_or("");
    if !method.eq_ignore_ascii_case("GET") {
        return refuse(
            405,
            "status",
            format!("{method} is not allowed; use GET /events/{{id}}"),
        );
    }
    // A client fault, answered before any AWS call (an empty id is not "please retry").
    let well_formed = !event_id.is_empty()
        && event_id.len() <= 64
        && event_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !well_formed {
        return refuse(
            400,
            "status",
            "an event id is required: GET /events/{id}, the id intake answered with".into(),
        );
    }
    let secrets = match deps.secrets.signing_secrets(&deps.signing_secret_id).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "signing secrets unavailable");
            return unavailable("secrets unavailable");
        }
    };
    let presented = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(scope) = Scope::of(&secrets, presented.as_bytes()) else {
        return refuse(
            401,
            "status",
            "a valid status token is required (Authorization: Bearer …)".into(),
        );
    };
    let not_found = || {
        refuse(
            404,
            "status",
            format!("no event {event_id} (unknown, or older than 30 days)"),
        )
    };
    match deps.decisions.get(event_id).await {
        Ok(Some(r)) if scope.reads(&r.source) => respond(
            200,
            json!({"event_id": r.event_id, "source": r.source, "status": r.stage(), "category": (!r.category.is_empty()).then_some(&r.category),
                   "confidence": (!r.category.is_empty()).then_some(r.confidence), "path": (!r.path.is_empty()).then_some(&r.path),
                   "reason": public_reason(r.stage(), &r.path, r.reason.as_deref()),
                   // Waiting for a person's decision (the review message's buttons), and what a
                   // person decided (not who: that is the operator's, in `explain`).
                   "awaiting_approval": r.status == crate::decisions::state::IN_REVIEW && r.human.is_none(),
                   "decision": r.human.as_ref().map(|h| &h.choice)}),
        ),
        Ok(_) => not_found(),
        Err(e) => {
            warn!(error = %e, "decision store unavailable");
            unavailable("decision store unavailable")
        }
    }
}

/// The reason as switchyard words it. Classify's routing reasons are its own (confidence,
/// threshold, route, guard); a failure's or act's reason can quote a vendor's error text, which
/// can quote customer text, so those are said in general terms (`switchyard explain` has them).
fn public_reason(stage: &str, path: &str, reason: Option<&str>) -> Option<String> {
    match (stage, path) {
        ("in review", "review") => reason.map(str::to_owned),
        ("in review", _) => Some(
            "an action could not be completed; a person decides (the operator's `switchyard explain` has the details)".into(),
        ),
        ("failed", _) => Some(
            "processing failed after its retries (the operator's `switchyard explain` has the details)".into(),
        ),
        ("waiting", _) => Some("waiting for the vendor's rate budget".into()),
        ("parked", _) => Some("waiting for a connection to be reconnected".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn the_reason_is_switchyards_own_words() {
        let vendor =
            "zendesk.update_ticket refused: HTTP 422: Subject 'Jane Doe +1 555 0100' invalid";
        for (stage, path) in [("failed", "act"), ("in review", "act"), ("waiting", "act")] {
            let said = public_reason(stage, path, Some(vendor)).unwrap();
            assert!(!said.contains("Jane") && !said.contains("422"), "{said}");
        }
        let routing = "confidence 0.41 for \"billing\" is below the review threshold 0.60";
        assert_eq!(
            public_reason("in review", "review", Some(routing)).as_deref(),
            Some(routing)
        );
        assert_eq!(public_reason("acted", "act", Some(vendor)), None);
    }

    fn secrets(entries: &[(&str, &[&str])]) -> crate::secrets::SigningSecrets {
        entries
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    v.iter().map(|t| SecretString::from(*t)).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_token_reads_what_its_list_names_and_nothing_else() {
        let s = secrets(&[
            ("status", &["ops-token"]),
            ("status:zendesk", &["zd-token", "shared"]),
            ("status:jira", &["jira-token", "shared"]),
            ("zendesk", &["zd-signing"]),
        ]);
        assert_eq!(Scope::of(&s, b"ops-token"), Some(Scope::All));
        let zd = Scope::of(&s, b"zd-token").unwrap();
        assert!(zd.reads("zendesk") && !zd.reads("jira") && !zd.reads("slack"));
        let mut both = match Scope::of(&s, b"shared").unwrap() {
            Scope::Sources(v) => v,
            Scope::All => panic!("a scoped token must not read everything"),
        };
        both.sort();
        assert_eq!(both, ["jira", "zendesk"]);
        // A signing secret is not a status token; nor is a prefix of one, or nothing.
        for wrong in [&b"zd-signing"[..], b"ops-toke", b"ops-token2", b""] {
            assert_eq!(Scope::of(&s, wrong), None);
        }
    }
}
