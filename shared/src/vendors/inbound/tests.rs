//! Dispatch by source: content types, versions, refusals that name no secret.

use super::*;
use crate::webhook::signature;

mod matrix;

#[test]
fn content_types_per_source() {
    assert!(accepts_content_type(
        Source::Zendesk,
        Some("application/json; charset=utf-8")
    ));
    assert!(accepts_content_type(Source::Zendesk, None));
    assert!(!accepts_content_type(Source::Zendesk, Some("text/plain")));
    assert!(accepts_content_type(
        Source::Twilio,
        Some("application/x-www-form-urlencoded")
    ));
    assert!(accepts_content_type(
        Source::Salesforce,
        Some("text/xml; charset=utf-8")
    ));
    assert!(!accepts_content_type(
        Source::Salesforce,
        Some("application/json")
    ));
}

fn hubspot_v1(secret: &str, body: &[u8]) -> HeaderMap {
    use sha2::{Digest, Sha256};
    let mut d = Sha256::new();
    d.update(secret.as_bytes());
    d.update(body);
    let mut h = HeaderMap::new();
    h.insert(
        "x-hubspot-signature",
        hex::encode(d.finalize()).parse().unwrap(),
    );
    h.insert("x-hubspot-signature-version", "v1".parse().unwrap());
    h
}

#[test]
fn a_hubspot_request_cannot_choose_a_version_below_the_floor() {
    let body = br#"[{"eventId":1,"portalId":62515}]"#;
    let headers = hubspot_v1("hubspot-secret", body);
    let req = SignedRequest {
        method: "POST",
        url: "https://hooks.example.com/webhooks/hubspot",
        headers: &headers,
        body,
    };
    let secrets = [SecretString::from("hubspot-secret")];
    let now = Utc::now();
    // Correctly signed with v1 (no URL, no time): taken only where the floor allows it.
    assert_eq!(
        verify(Source::Hubspot, &req, &secrets, now, hubspot::Version::V1),
        Ok(())
    );
    assert_eq!(
        verify(Source::Hubspot, &req, &secrets, now, hubspot::Version::V3),
        Err(VerifyError::BelowMinimumVersion("v3"))
    );
}

#[test]
fn an_empty_or_blank_secret_never_verifies() {
    // HMAC takes an empty key: anyone could sign with one. So could `whsec_` (no key).
    let body = br#"{"a":1}"#;
    for blank in ["", "   ", "whsec_", "whsec_=="] {
        let sig = hex::encode(signature::hmac_sha256(blank.trim().as_bytes(), &[body]));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            format!("sha256={sig}").parse().unwrap(),
        );
        let req = SignedRequest {
            method: "POST",
            url: "https://h/webhooks/github",
            headers: &headers,
            body,
        };
        let secrets = [SecretString::from(blank)];
        assert_eq!(
            verify(
                Source::Github,
                &req,
                &secrets,
                Utc::now(),
                hubspot::Version::V3
            ),
            Err(VerifyError::Mismatch),
            "{blank:?}"
        );
    }
    assert!(signature::is_usable(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ));
    assert!(signature::is_usable("k"));
}

#[test]
fn an_unconfigured_source_fails_as_a_wrong_signature_does() {
    let body = br#"{"a":1}"#;
    let mut headers = HeaderMap::new();
    headers.insert("x-hub-signature-256", "sha256=00".parse().unwrap());
    let req = SignedRequest {
        method: "POST",
        url: "https://h/webhooks/github",
        headers: &headers,
        body,
    };
    let none = verify(Source::Github, &req, &[], Utc::now(), hubspot::Version::V3);
    let wrong = verify(
        Source::Github,
        &req,
        &[SecretString::from("x")],
        Utc::now(),
        hubspot::Version::V3,
    );
    assert_eq!(none, wrong);
}

#[test]
fn every_scheme_name_round_trips() {
    for (name, scheme) in Scheme::ALL {
        assert_eq!(Scheme::parse(name), Some(scheme));
    }
    assert_eq!(Scheme::parse("myspace"), None);
}
