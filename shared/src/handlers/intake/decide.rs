//! Slack interactivity at intake: a click on a review card is a **decision**, never an event.
//! It is verified like any Slack request (before this runs), decided with one conditional
//! write, handed to act to carry out, and answered at once (Slack wants 200 within 3 s). Every
//! interaction is kept out of the classify queue: one switchyard did not ask for (another app's
//! button, an unknown action, an unknown or finished event, a person not allowed to decide) gets
//! an ephemeral answer for that person alone and a log line, and changes nothing.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlResponse;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{info, warn};

use super::{reply_with, unavailable};
use crate::handlers::decision::{Answers, Decider, Verdict};
use crate::routing::{CardRef, Choice, GroupClick};
use crate::vendors::slack::review::{click, NotOurs};
use crate::webhook::Reply;

/// Where decisions go, and where Slack's `response_url`s may point.
#[derive(Clone, Debug)]
pub struct Door {
    pub decider: Decider,
    /// The key decision links are signed with (`DECISION_LINK_SECRET_ID`), read through `secrets`.
    pub link_secret_id: Option<String>,
    pub secrets: crate::secrets::SecretCache,
    /// Answers for the person who clicked, through Slack's `response_url`.
    pub answers: Answers,
}

impl Door {
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
        decisions: crate::decisions::DecisionStore,
    ) -> Result<Option<Door>, crate::settings::SettingError> {
        let Some(act) = s.optional("ACT_QUEUE_URL") else {
            return Ok(None);
        };
        let routing = crate::routing::RoutingConfig::from_settings(s).map_err(|e| {
            crate::settings::SettingError::Invalid {
                name: "ROUTING_CONFIG",
                reason: e.to_string(),
            }
        })?;
        Ok(Some(Door {
            link_secret_id: s.optional("DECISION_LINK_SECRET_ID").map(str::to_owned),
            secrets: crate::secrets::SecretCache::new(
                aws.secrets.clone(),
                crate::secrets::CACHE_TTL,
            ),
            decider: Decider {
                sqs: aws.sqs.clone(),
                decisions,
                routing,
                // Intake only decides; carrying out (which reads the review queue) is act's.
                review_queue_url: String::new(),
                act_queue_url: act.to_owned(),
            },
            answers: Answers::new(crate::connectors::http_client(), s),
        }))
    }
}

/// The empty 200 Slack takes as "received".
fn ack() -> LambdaFunctionUrlResponse {
    reply_with(
        200,
        Reply {
            content_type: "text/plain",
            body: String::new(),
        },
    )
}

/// Answer one verified Slack interaction (`payload` is its JSON).
pub(super) async fn interaction(
    door: Option<&Door>,
    payload: &Value,
    correlation_id: &str,
    now: DateTime<Utc>,
) -> LambdaFunctionUrlResponse {
    let response_url = payload["response_url"].as_str();
    let Some(door) = door else {
        warn!(kind = %payload["type"], "a Slack interaction arrived, but decisions are not set up (ACT_QUEUE_URL)");
        return ack();
    };
    let click = match click(payload) {
        Ok(c) => c,
        Err(not_ours) => {
            let why = match not_ours {
                NotOurs::Elsewhere => "not a switchyard review message".to_owned(),
                NotOurs::Unknown(what) => what,
            };
            info!(kind = %payload["type"], why = %why, "Slack interaction not asked for; answered, nothing done");
            door.answer(
                response_url,
                &format!("switchyard did not ask for this ({why}); nothing changed"),
            )
            .await;
            return ack();
        }
    };
    let verdict = match door
        .decider
        .decide(
            &click.event_id,
            &click.choice,
            &click.user,
            "slack",
            click.note.as_deref(),
            None,
            now,
        )
        .await
    {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, event_id = %click.event_id, "decision store unavailable");
            return unavailable("decision store unavailable");
        }
    };
    let card = click
        .channel
        .clone()
        .zip(click.message_ts.clone())
        .map(|(channel, ts)| CardRef { channel, ts });
    if let Verdict::AskGroups(groups) = &verdict {
        // Only act holds the bot token that reads a group's members: it decides this click.
        let ask = GroupClick {
            group_click: click.event_id.clone(),
            choice: click.choice.as_str().to_owned(),
            category: match &click.choice {
                Choice::Route(c) => Some(c.clone()),
                _ => None,
            },
            user: click.user.clone(),
            note: click.note.clone(),
            groups: groups.clone(),
            card,
            response_url: click.response_url.clone(),
        };
        if let Err(e) = door.decider.send_to_act(&ask, correlation_id).await {
            warn!(error = %e, event_id = %click.event_id, "a group member's click could not be handed to act");
            return unavailable("act queue unavailable");
        }
        info!(event_id = %click.event_id, user = %click.user, groups = ?groups, "not a named approver; act asks Slack about the groups");
        return ack();
    }
    if let Verdict::Already(h) = &verdict {
        door.decider.resend_if_stuck(&click.event_id, h).await;
    }
    let Verdict::Decided(_) = &verdict else {
        info!(event_id = %click.event_id, user = %click.user, choice = click.choice.as_str(), verdict = ?std::mem::discriminant(&verdict), answer = %verdict.answer(&click.event_id), "decision refused");
        door.answer(response_url, &verdict.answer(&click.event_id))
            .await;
        return ack();
    };
    if let Err(e) = door
        .decider
        .hand_to_act(&click.event_id, card, correlation_id)
        .await
    {
        // Decided and on record: the next attempt through any door hands it to act again.
        warn!(error = %e, event_id = %click.event_id, "decided, but act could not be told; the record holds the decision");
        return unavailable("act queue unavailable");
    }
    metrics::counter!(crate::metrics::HUMAN_DECISIONS, "choice" => click.choice.as_str())
        .increment(1);
    info!(event_id = %click.event_id, user = %click.user, choice = click.choice.as_str(), "decided by a person");
    ack()
}

impl Door {
    /// An ephemeral answer for the person who clicked (see [`Answers::send`]).
    async fn answer(&self, response_url: Option<&str>, text: &str) {
        self.answers.send(response_url, text).await
    }
}
