//! Slack Events API: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))` with the
//! epoch-seconds `X-Slack-Request-Timestamp`; `url_verification` handshakes answered at once.
//! Slash commands and interactivity arrive form-encoded under the same signature: a command's
//! fields, or one `payload` field holding the interaction's JSON.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use secrecy::SecretString;

use crate::webhook::signature::{check_epoch_secs, hex_after, verify_hmac_sha256};
use crate::webhook::{header, str_field, Inbound, NormalizeError, Normalized, Reply, VerifyError};

pub(crate) const SIGNATURE_HEADER: &str = "x-slack-signature";
pub(crate) const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

/// Checks `X-Slack-Signature` (HMAC-SHA256 of `v0:{ts}:{body}`) against each of `secrets`; with
/// `now`, a timestamp more than 5 minutes from it is refused first.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
    now: Option<DateTime<Utc>>,
) -> Result<(), VerifyError> {
    let expected = hex_after(header(headers, SIGNATURE_HEADER)?, "v0=", SIGNATURE_HEADER)?;
    let timestamp = header(headers, TIMESTAMP_HEADER)?.trim();
    // Slack's own advice: check the age first, so a replayed request is never even MAC'd.
    check_epoch_secs(timestamp, TIMESTAMP_HEADER, now)?;
    verify_hmac_sha256(
        secrets,
        &[b"v0:", timestamp.as_bytes(), b":", body],
        &expected,
    )
}

/// Reads an Events API body as one event (`<type>:<event.type>`) with its files; a
/// `url_verification` is a handshake answered with its challenge.
pub fn normalize(raw: serde_json::Value) -> Result<Inbound, NormalizeError> {
    let kind = str_field(&raw, "/type").ok_or(NormalizeError::MissingField("type"))?;
    if kind == "url_verification" {
        let challenge =
            str_field(&raw, "/challenge").ok_or(NormalizeError::MissingField("challenge"))?;
        return Ok(Inbound::Handshake(Reply::json(
            serde_json::json!({ "challenge": challenge }),
        )));
    }
    let inner = str_field(&raw, "/event/type").ok_or(NormalizeError::MissingField("event.type"))?;
    // `event_time` is epoch seconds; the message `ts` would do too but is per message, not event.
    let occurred_at = raw
        .get("event_time")
        .and_then(|t| crate::dates::parse_json(t).ok());
    let unknown_fields = crate::webhook::unknown_keys(
        &raw,
        &[
            "token",
            "team_id",
            "api_app_id",
            "event",
            "type",
            "event_id",
            "event_time",
            "authorizations",
            "authed_users",
            "authed_teams",
            "is_ext_shared_channel",
            "event_context",
            "context_team_id",
            "context_enterprise_id",
            "enterprise_id",
        ],
    );
    Ok(Inbound::event(Normalized {
        event_type: format!("{kind}:{inner}"),
        delivery_id: str_field(&raw, "/event_id"),
        object_id: str_field(&raw, "/event/channel"),
        subject: None,
        text: str_field(&raw, "/event/text"),
        requester: str_field(&raw, "/event/user"),
        occurred_at,
        links: Vec::new(),
        unknown_fields,
        attachments: files(&raw),
        raw: raw.into(),
    }))
}

/// A message's `files`: each with `url_private_download` (or `url_private`), which Slack serves
/// only with the bot token.
fn files(raw: &serde_json::Value) -> Vec<crate::event::Attachment> {
    let Some(files) = raw.pointer("/event/files").and_then(|f| f.as_array()) else {
        return Vec::new();
    };
    files
        .iter()
        .map(|f| crate::event::Attachment {
            id: str_field(f, "/id"),
            name: str_field(f, "/name"),
            declared_type: str_field(f, "/mimetype"),
            size: f.get("size").and_then(|s| s.as_u64()),
            url: str_field(f, "/url_private_download").or_else(|| str_field(f, "/url_private")),
        })
        .collect()
}

/// A form-encoded request: a slash command (`command`, `text`, `trigger_id`, …) or an
/// interaction (`payload=` JSON: `block_actions`, `view_submission`, `shortcut`, …). Slack
/// wants an answer within 3 seconds: a command gets an ephemeral note, an interaction an empty 200.
pub(crate) fn normalize_form(body: &[u8]) -> Result<Inbound, NormalizeError> {
    let fields: std::collections::BTreeMap<String, String> =
        serde_urlencoded::from_bytes(body).map_err(|e| NormalizeError::NotForm(e.to_string()))?;
    let get = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
    if let Some(payload) = fields.get("payload") {
        let p = crate::webhook::parse_json(payload.as_bytes())?;
        let kind = str_field(&p, "/type").ok_or(NormalizeError::MissingField("payload.type"))?;
        let action = p.pointer("/actions/0");
        let value = action.and_then(|a| {
            str_field(a, "/value").or_else(|| str_field(a, "/selected_option/value"))
        });
        let event = Normalized {
            event_type: format!("interactivity:{kind}"),
            // Unique per interaction; a retry of the same request carries the same one.
            delivery_id: str_field(&p, "/trigger_id")
                .or_else(|| action.and_then(|a| str_field(a, "/action_ts"))),
            object_id: str_field(&p, "/channel/id")
                .or_else(|| str_field(&p, "/container/channel_id"))
                .or_else(|| str_field(&p, "/view/id")),
            subject: None,
            text: value.or_else(|| str_field(&p, "/message/text")),
            requester: str_field(&p, "/user/id"),
            occurred_at: action
                .and_then(|a| a.get("action_ts"))
                .and_then(|t| crate::dates::parse_json(t).ok()),
            links: Vec::new(),
            unknown_fields: Vec::new(),
            attachments: Vec::new(),
            raw: p.into(),
        };
        return Ok(Inbound::Events {
            events: vec![event],
            ack: Some(Reply {
                content_type: "text/plain",
                body: String::new(),
            }),
        });
    }
    let command = get("command").ok_or(NormalizeError::MissingField(
        "a slash command's `command` or an interaction's `payload`",
    ))?;
    let raw = serde_json::to_value(&fields).unwrap_or_default();
    let event = Normalized {
        event_type: format!("slash_command:{command}"),
        delivery_id: get("trigger_id"),
        object_id: get("channel_id"),
        subject: None,
        text: get("text"),
        requester: get("user_id"),
        occurred_at: None,
        links: Vec::new(),
        unknown_fields: Vec::new(),
        attachments: Vec::new(),
        raw: raw.into(),
    };
    Ok(Inbound::Events {
        events: vec![event],
        ack: Some(Reply::json(serde_json::json!({
            "response_type": "ephemeral",
            "text": "switchyard received this and is on it."
        }))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Slack's own worked example is a slash command: it verifies and becomes one event.
    #[test]
    fn slash_commands_and_interactions_arrive_as_forms() {
        verify(
            &headers(SIG, TS),
            BODY.as_bytes(),
            &[SecretString::from(SECRET)],
            at(1531420618 + 30),
        )
        .unwrap();
        let Inbound::Events { events, ack } = normalize_form(BODY.as_bytes()).unwrap() else {
            panic!("a command is an event");
        };
        let e = &events[0];
        assert_eq!(e.event_type, "slash_command:/webhook-collect");
        assert_eq!(
            e.delivery_id.as_deref(),
            Some("398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
        );
        assert_eq!(
            (
                e.object_id.as_deref(),
                e.requester.as_deref(),
                e.text.as_deref()
            ),
            (Some("G8PSS9T3V"), Some("U2CERLKJA"), None)
        );
        assert!(ack.unwrap().body.contains("ephemeral"));
        // Slack's block_actions example, as interactivity posts it (`payload=` JSON).
        let payload = r#"{"type":"block_actions","user":{"id":"U0CA5","username":"Amy McGee","name":"Amy McGee","team_id":"T3MDE"},"api_app_id":"A0CA5","token":"Shh_its_a_seekrit","container":{"type":"message_attachment","message_ts":"1548261231.000200","attachment_id":1,"channel_id":"CBR2V3XEX","is_ephemeral":false,"is_app_unfurl":false},"trigger_id":"12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3","team":{"id":"T9TK3CUKW","domain":"example"},"channel":{"id":"CBR2V3XEX","name":"review-updates"},"response_url":"https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209","actions":[{"action_id":"WaXA","block_id":"=qXel","text":{"type":"plain_text","text":"View","emoji":true},"value":"click_me_123","type":"button","action_ts":"1548426417.840180"}]}"#;
        let body = serde_urlencoded::to_string([("payload", payload)]).unwrap();
        let Inbound::Events { events, ack } = normalize_form(body.as_bytes()).unwrap() else {
            panic!("an interaction is an event");
        };
        let e = &events[0];
        assert_eq!(e.event_type, "interactivity:block_actions");
        assert_eq!(
            (
                e.object_id.as_deref(),
                e.requester.as_deref(),
                e.text.as_deref()
            ),
            (Some("CBR2V3XEX"), Some("U0CA5"), Some("click_me_123"))
        );
        assert!(e
            .delivery_id
            .as_deref()
            .unwrap()
            .starts_with("12321423423."));
        assert!(e.occurred_at.is_some());
        assert_eq!(ack.unwrap().body, "");
        // Neither a command nor a payload: a clear refusal naming what is missing.
        assert!(matches!(
            normalize_form(b"team_id=T1&text=hi"),
            Err(NormalizeError::MissingField(_))
        ));
    }

    // The worked example from Slack's "Verifying requests from Slack" page.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn headers(sig: &str, ts: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        h.insert(TIMESTAMP_HEADER, ts.parse().unwrap());
        h
    }

    fn at(secs: i64) -> Option<DateTime<Utc>> {
        Some(Utc.timestamp_opt(secs, 0).unwrap())
    }

    #[test]
    fn vendor_example_verifies() {
        let secrets = [SecretString::from(SECRET)];
        assert_eq!(
            verify(
                &headers(SIG, TS),
                BODY.as_bytes(),
                &secrets,
                at(1531420618 + 10)
            ),
            Ok(())
        );
    }

    #[test]
    fn wrong_secret_fails() {
        let secrets = [SecretString::from("not-the-secret")];
        let err = verify(&headers(SIG, TS), BODY.as_bytes(), &secrets, at(1531420618)).unwrap_err();
        assert_eq!(err, VerifyError::Mismatch);
    }

    #[test]
    fn replay_after_five_minutes_fails_both_directions() {
        let secrets = [SecretString::from(SECRET)];
        for now in [1531420618 + 301, 1531420618 - 301] {
            let err = verify(&headers(SIG, TS), BODY.as_bytes(), &secrets, at(now)).unwrap_err();
            assert!(matches!(err, VerifyError::StaleTimestamp { .. }), "{err:?}");
        }
    }

    #[test]
    fn signature_without_version_prefix_is_malformed() {
        let secrets = [SecretString::from(SECRET)];
        let err = verify(
            &headers(&SIG[3..], TS),
            BODY.as_bytes(),
            &secrets,
            at(1531420618),
        )
        .unwrap_err();
        assert_eq!(err, VerifyError::MalformedHeader(SIGNATURE_HEADER));
    }

    #[test]
    fn url_verification_is_a_handshake() {
        let raw = serde_json::json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"});
        assert_eq!(
            normalize(raw).unwrap(),
            Inbound::Handshake(Reply::json(
                serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
            ))
        );
    }

    #[test]
    fn message_event_normalizes() {
        let raw = serde_json::json!({
            "token": "XXYYZZ", "team_id": "T123ABC456", "api_app_id": "A123ABC456",
            "event": {"type": "message", "channel": "C123ABC456", "user": "U123ABC456",
                      "text": "Checkout is down", "ts": "1355517523.000005", "channel_type": "channel"},
            "type": "event_callback", "event_id": "Ev123ABC456", "event_time": 1355517523
        });
        let n = normalize(raw).unwrap().into_events().remove(0);
        assert_eq!(n.event_type, "event_callback:message");
        assert_eq!(n.delivery_id.as_deref(), Some("Ev123ABC456"));
        assert_eq!(n.object_id.as_deref(), Some("C123ABC456"));
        assert_eq!(n.text.as_deref(), Some("Checkout is down"));
        assert_eq!(n.occurred_at, at(1355517523));
    }

    #[test]
    fn a_message_with_files_names_each() {
        // Shape of a `message` event with `files` (Events API, file_share subtype).
        let raw = serde_json::json!({
            "type": "event_callback", "event_id": "Ev1", "event_time": 1355517523,
            "event": {"type": "message", "subtype": "file_share", "channel": "C1", "user": "U1",
                "text": "see attached", "files": [
                    {"id": "F0S43PZDF", "name": "scan.pdf", "mimetype": "application/pdf", "size": 4096,
                     "url_private": "https://files.slack.com/files-pri/T1-F0S43PZDF/scan.pdf",
                     "url_private_download": "https://files.slack.com/files-pri/T1-F0S43PZDF/download/scan.pdf"},
                    {"id": "F2", "name": "note.txt"}
                ]}
        });
        let n = normalize(raw).unwrap().into_events().remove(0);
        assert_eq!(n.attachments.len(), 2);
        assert_eq!(n.attachments[0].id.as_deref(), Some("F0S43PZDF"));
        assert_eq!(n.attachments[0].size, Some(4096));
        assert_eq!(
            n.attachments[0].url.as_deref(),
            Some("https://files.slack.com/files-pri/T1-F0S43PZDF/download/scan.pdf")
        );
        assert_eq!(
            (n.attachments[1].url.as_ref(), n.attachments[1].size),
            (None, None)
        );
    }
}
