//! HubSpot webhooks. v3: `X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client_secret,
//! method + uri + body + timestamp))` with the millisecond `X-HubSpot-Request-Timestamp`
//! (5-minute window). v1: `X-HubSpot-Signature = hex(SHA-256(client_secret + body))`;
//! v2: `hex(SHA-256(client_secret + method + uri + body))`, chosen by `X-HubSpot-Signature-Version`.
//! A delivery is a JSON array of up to 100 events; each becomes its own event.

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use http::HeaderMap;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::webhook::signature::{check_freshness, ct_eq, verify_any, verify_hmac_sha256};
use crate::webhook::{
    header, opt_header, str_field, Inbound, NormalizeError, Normalized, SignedRequest, VerifyError,
};

pub(crate) const V3_HEADER: &str = "x-hubspot-signature-v3";
pub(crate) const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";
pub(crate) const SIGNATURE_HEADER: &str = "x-hubspot-signature";
pub(crate) const VERSION_HEADER: &str = "x-hubspot-signature-version";

/// Ordered by what they sign: v1 the body, v2 also method and URL, v3 also a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `X-HubSpot-Signature`: hex SHA-256 of the client secret followed by the body.
    V1,
    /// Like v1, with the method and URL signed between the secret and the body.
    V2,
    /// `X-HubSpot-Signature-v3`: base64 HMAC-SHA256 of method, URL, body and a timestamp.
    V3,
}

/// The lowest signature version intake accepts (`HUBSPOT_MIN_SIGNATURE_VERSION`: `v1`, `v2` or
/// `v3`; default `v3`, the only one that signs the URL and a time).
pub(crate) fn min_version(
    settings: &crate::settings::Settings,
) -> Result<Version, crate::settings::SettingError> {
    let name = "HUBSPOT_MIN_SIGNATURE_VERSION";
    match settings.optional(name) {
        None => Ok(Version::V3),
        Some(v) => Version::parse(v).ok_or(crate::settings::SettingError::Invalid {
            name,
            reason: format!("{v:?} is not one of v1, v2, v3"),
        }),
    }
}

impl Version {
    /// `v1`, `v2` or `v3` (the `HUBSPOT_MIN_SIGNATURE_VERSION` setting).
    pub fn parse(s: &str) -> Option<Version> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v1" => Some(Version::V1),
            "v2" => Some(Version::V2),
            "v3" => Some(Version::V3),
            _ => None,
        }
    }
}

impl Version {
    /// The version as `v1`, `v2` or `v3`, the form the setting takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::V3 => "v3",
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version the request itself declares (v3 by its header, else `X-HubSpot-Signature-Version`).
pub(crate) fn declared_version(headers: &HeaderMap) -> Result<Version, VerifyError> {
    if headers.contains_key(V3_HEADER) {
        return Ok(Version::V3);
    }
    match opt_header(headers, VERSION_HEADER).map(str::trim) {
        Some("v1") => Ok(Version::V1),
        Some("v2") => Ok(Version::V2),
        Some(_) => Err(VerifyError::MalformedHeader(VERSION_HEADER)),
        None => Err(VerifyError::MissingHeader(V3_HEADER)),
    }
}

/// Checks a `version` signature against each of `secrets`; with `now`, a v3 timestamp more than
/// 5 minutes from it is refused.
pub fn verify(
    version: Version,
    req: &SignedRequest<'_>,
    secrets: &[SecretString],
    now: Option<DateTime<Utc>>,
) -> Result<(), VerifyError> {
    match version {
        Version::V3 => {
            let expected = STANDARD
                .decode(header(req.headers, V3_HEADER)?.trim())
                .map_err(|_| VerifyError::MalformedHeader(V3_HEADER))?;
            let ts = header(req.headers, TIMESTAMP_HEADER)?.trim();
            let ms: i64 = ts
                .parse()
                .map_err(|_| VerifyError::MalformedHeader(TIMESTAMP_HEADER))?;
            if let Some(now) = now {
                let signed_at = DateTime::from_timestamp_millis(ms)
                    .ok_or(VerifyError::MalformedHeader(TIMESTAMP_HEADER))?;
                check_freshness(signed_at, now, crate::webhook::DEFAULT_TOLERANCE_SECS)?;
            }
            let parts = [
                req.method.as_bytes(),
                req.url.as_bytes(),
                req.body,
                ts.as_bytes(),
            ];
            verify_hmac_sha256(secrets, &parts, &expected)
        }
        Version::V1 | Version::V2 => {
            let expected = hex::decode(header(req.headers, SIGNATURE_HEADER)?.trim())
                .map_err(|_| VerifyError::MalformedHeader(SIGNATURE_HEADER))?;
            verify_any(secrets, |secret| {
                let mut h = Sha256::new();
                h.update(secret);
                if version == Version::V2 {
                    h.update(req.method.as_bytes());
                    h.update(req.url.as_bytes());
                }
                h.update(req.body);
                ct_eq(&h.finalize(), &expected)
            })
        }
    }
}

const KNOWN: &[&str] = &[
    "eventId",
    "subscriptionId",
    "portalId",
    "appId",
    "occurredAt",
    "subscriptionType",
    "eventType",
    "attemptNumber",
    "objectId",
    "objectTypeId",
    "propertyName",
    "propertyValue",
    "changeSource",
    "changeFlag",
    "sourceId",
    "messageId",
    "messageType",
    "primaryObjectId",
    "mergedObjectIds",
    "newObjectId",
    "numberOfPropertiesMoved",
    "fromObjectId",
    "toObjectId",
    "associationType",
    "associationCategory",
    "associationTypeId",
    "isPrimaryAssociation",
    "associationRemoved",
];

/// Reads HubSpot's JSON array as one event per item; the delivery id is `portalId:eventId`.
pub fn normalize(raw: serde_json::Value) -> Result<Inbound, NormalizeError> {
    let items = raw
        .as_array()
        .ok_or(NormalizeError::MissingField("a JSON array of events"))?;
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        // Live deliveries say `subscriptionType`; HubSpot's documentation examples say
        // `eventType`: either names the event.
        let event_type = str_field(item, "/subscriptionType")
            .or_else(|| str_field(item, "/eventType"))
            .ok_or(NormalizeError::MissingField("subscriptionType"))?;
        let event_id =
            str_field(item, "/eventId").ok_or(NormalizeError::MissingField("eventId"))?;
        let text = match (
            str_field(item, "/propertyName"),
            str_field(item, "/propertyValue"),
        ) {
            (Some(name), Some(value)) => Some(format!("{name} = {value}")),
            _ => None,
        };
        events.push(Normalized {
            event_type,
            // eventId is unique per portal and app; qualify it so two portals never collide.
            delivery_id: Some(match str_field(item, "/portalId") {
                Some(portal) => format!("{portal}:{event_id}"),
                None => event_id,
            }),
            object_id: str_field(item, "/objectId"),
            subject: None,
            text,
            requester: str_field(item, "/sourceId"),
            occurred_at: item
                .get("occurredAt")
                .and_then(|v| crate::dates::parse_json(v).ok()),
            links: Vec::new(),
            unknown_fields: crate::webhook::unknown_keys(item, KNOWN),
            attachments: Vec::new(),
            raw: without_attempt(item).into(),
        });
    }
    if events.is_empty() {
        return Err(NormalizeError::MissingField("at least one event"));
    }
    Ok(Inbound::Events { events, ack: None })
}

/// HubSpot counts its retries in `attemptNumber`; a retry is the same event, so the counter is
/// not part of what dedupe compares (nor of the kept payload).
fn without_attempt(item: &serde_json::Value) -> serde_json::Value {
    let mut v = item.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("attemptNumber");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HubSpot's documentation example names the event `eventType`; live deliveries say
    /// `subscriptionType`. Both are one event of that type.
    #[test]
    fn the_documentation_examples_eventtype_is_read_like_subscriptiontype() {
        let doc = serde_json::json!([{"objectId": 1246965, "propertyName": "lifecyclestage",
            "propertyValue": "subscriber", "changeSource": "ACADEMY_FORM_SUBMISSION",
            "eventId": 3816279340u64, "subscriptionId": 25, "portalId": 33, "appId": 1160452,
            "occurredAt": 1462216307945u64, "eventType": "contact.propertyChange", "attemptNumber": 0}]);
        let Inbound::Events { events, .. } = normalize(doc).unwrap() else {
            panic!("an event");
        };
        assert_eq!(events[0].event_type, "contact.propertyChange");
        assert!(
            events[0].unknown_fields.is_empty(),
            "{:?}",
            events[0].unknown_fields
        );
    }
    use crate::webhook::signature::hmac_sha256;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const V1_BODY: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn req<'a>(
        method: &'a str,
        url: &'a str,
        h: &'a HeaderMap,
        body: &'a [u8],
    ) -> SignedRequest<'a> {
        SignedRequest {
            method,
            url,
            headers: h,
            body,
        }
    }

    #[test]
    fn v1_vendor_example() {
        let h = headers(&[
            (VERSION_HEADER, "v1"),
            (
                SIGNATURE_HEADER,
                "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
            ),
        ]);
        let secrets = [SecretString::from(SECRET)];
        let r = req("POST", "https://example.com/x", &h, V1_BODY.as_bytes());
        assert_eq!(declared_version(&h), Ok(Version::V1));
        assert_eq!(verify(Version::V1, &r, &secrets, None), Ok(()));
        let tampered = V1_BODY.replace("123", "124");
        let r = req("POST", "https://example.com/x", &h, tampered.as_bytes());
        assert_eq!(
            verify(Version::V1, &r, &secrets, None),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn v2_vendor_examples() {
        let secrets = [SecretString::from(SECRET)];
        let get = headers(&[(
            SIGNATURE_HEADER,
            "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
        )]);
        assert_eq!(
            verify(
                Version::V2,
                &req("GET", "https://www.example.com/webhook_uri", &get, b""),
                &secrets,
                None
            ),
            Ok(())
        );
        let post = headers(&[(
            SIGNATURE_HEADER,
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
        )]);
        let body = br#"{"example_field":"example_value"}"#;
        assert_eq!(
            verify(
                Version::V2,
                &req("POST", "https://www.example.com/webhook_uri", &post, body),
                &secrets,
                None
            ),
            Ok(())
        );
        let other_uri = req("POST", "https://www.example.com/other", &post, body);
        assert_eq!(
            verify(Version::V2, &other_uri, &secrets, None),
            Err(VerifyError::Mismatch)
        );
        let wrong = [SecretString::from("other-secret")];
        assert_eq!(
            verify(
                Version::V2,
                &req("POST", "https://www.example.com/webhook_uri", &post, body),
                &wrong,
                None
            ),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn v3_signs_method_uri_body_timestamp_and_is_fresh() {
        let ts = "1700000000000";
        let url = "https://hooks.example.com/webhooks/hubspot?portal=62515";
        let sig = STANDARD.encode(hmac_sha256(
            SECRET.as_bytes(),
            &[b"POST", url.as_bytes(), V1_BODY.as_bytes(), ts.as_bytes()],
        ));
        let h = headers(&[(V3_HEADER, &sig), (TIMESTAMP_HEADER, ts)]);
        let secrets = [SecretString::from(SECRET)];
        let now = DateTime::from_timestamp_millis(1_700_000_060_000);
        assert_eq!(
            verify(
                Version::V3,
                &req("POST", url, &h, V1_BODY.as_bytes()),
                &secrets,
                now
            ),
            Ok(())
        );
        let late = DateTime::from_timestamp_millis(1_700_000_301_000);
        assert!(matches!(
            verify(
                Version::V3,
                &req("POST", url, &h, V1_BODY.as_bytes()),
                &secrets,
                late
            ),
            Err(VerifyError::StaleTimestamp { .. })
        ));
    }

    #[test]
    fn a_batch_becomes_one_event_each() {
        let raw: serde_json::Value = serde_json::from_str(&format!(
            "[{}, {}]",
            &V1_BODY[1..V1_BODY.len() - 1],
            r#"{"eventId":"2","portalId":62515,"occurredAt":"1564113600000","subscriptionType":"contact.propertyChange","objectId":"123","propertyName":"lifecyclestage","propertyValue":"customer","brandNewField":1}"#
        ))
        .unwrap();
        let events = normalize(raw).unwrap().into_events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].delivery_id.as_deref(), Some("62515:1"));
        assert_eq!(events[1].text.as_deref(), Some("lifecyclestage = customer"));
        assert_eq!(
            events[1].occurred_at,
            DateTime::from_timestamp_millis(1_564_113_600_000)
        );
        assert_eq!(events[1].unknown_fields, ["brandNewField"]);
    }
}
