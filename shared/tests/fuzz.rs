//! Property tests: no input, however malformed, makes a verifier, a normalizer or the date parser
//! panic. Bounded by case count (run by the test command, a few seconds).

use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use secrecy::SecretString;
use switchyard::event::Source;
use switchyard::vendors::inbound::{self, Scheme};
use switchyard::webhook::SignedRequest;

/// Every header any scheme reads, so generated requests reach deep into each verifier.
const HEADERS: &[&str] = &[
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-zendesk-webhook-signature",
    "x-zendesk-webhook-signature-timestamp",
    "x-hub-signature-256",
    "x-hub-signature",
    "x-hubspot-signature",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-hubspot-signature-version",
    "authorization",
    "stripe-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-twilio-signature",
    "content-type",
    "x-github-event",
    "x-github-delivery",
    "x-atlassian-webhook-identifier",
];

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,64}",
        "(v0=|sha256=|sha1=|HMAC |t=1700000000,v1=|v1,)[0-9a-zA-Z+/=]{0,64}",
        "[0-9]{1,16}",
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec((0..HEADERS.len(), header_value()), 0..8).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (i, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(HeaderName::from_static(HEADERS[i]), v);
            }
        }
        h
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "\\{\"(type|id|event|detail|issue|data)\": ?(\\{|\\[|\"x\"|1|null)[ -~]{0,64}"
            .prop_map(String::into_bytes),
        "\\[\\{\"eventId\":[0-9]{1,5},\"subscriptionType\":\"[a-z.]{1,10}\"[ -~]{0,32}"
            .prop_map(String::into_bytes),
        "<[a-zA-Z:]{1,12}>[ -~]{0,64}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn verifiers_never_panic(h in headers(), b in body(), secret in "[ -~]{0,40}", now in 0i64..4_000_000_000) {
        let secrets = [SecretString::from(secret)];
        let req = SignedRequest { method: "POST", url: "https://example.com/webhooks/x?bodySHA256=00", headers: &h, body: &b };
        let now = Utc.timestamp_opt(now, 0).single();
        for (_, scheme) in Scheme::ALL {
            let _ = scheme.verify(&req, &secrets, now);
        }
        for source in Source::ALL {
            let _ = inbound::verify(source, &req, &secrets, now.unwrap_or_default(), switchyard::vendors::hubspot::inbound::Version::V1);
        }
    }

    #[test]
    fn normalizers_never_panic(h in headers(), b in body()) {
        for source in Source::ALL {
            let _ = inbound::normalize(source, &h, &b);
        }
    }

    #[test]
    fn date_parser_never_panics(s in "[ -~]{0,40}", digits in "-?[0-9]{1,25}(\\.[0-9]{0,20})?") {
        let _ = switchyard::dates::parse(&s);
        let _ = switchyard::dates::parse(&digits);
    }
}
