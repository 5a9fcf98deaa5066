//! Standard Webhooks (and Svix, the same scheme under `svix-*` headers):
//! `webhook-signature: v1,BASE64 [v1,BASE64 …]`, each `base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))`
//! where the key is the base64 part of the `whsec_…` secret (the prefix is optional). 5-minute window.

use base64::alphabet::STANDARD as ALPHABET;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Base64 with or without its `=` padding: the libraries pad a secret written without it
/// (`whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw` and the same with `==` are one key).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &ALPHABET,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
use chrono::{DateTime, Utc};
use http::HeaderMap;
use secrecy::SecretString;

use crate::webhook::signature::{check_epoch_secs, hmac_sha256, one_of, verify_any};
use crate::webhook::{
    header, opt_header, str_field, Inbound, NormalizeError, Normalized, VerifyError,
};

/// Which header family carries the scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers.
    Standard,
    /// The `svix-id`, `svix-timestamp` and `svix-signature` headers.
    Svix,
}

impl Flavor {
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Flavor::Standard => ("webhook-id", "webhook-timestamp", "webhook-signature"),
            Flavor::Svix => ("svix-id", "svix-timestamp", "svix-signature"),
        }
    }
}

/// Checks each `v1,` signature in the signature header against each of `secrets`; with `now`, a
/// timestamp more than 5 minutes from it is refused.
pub fn verify(
    flavor: Flavor,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
    now: Option<DateTime<Utc>>,
) -> Result<(), VerifyError> {
    let (id_h, ts_h, sig_h) = flavor.names();
    let id = header(headers, id_h)?;
    let ts = header(headers, ts_h)?.trim();
    let candidates: Vec<Vec<u8>> = header(headers, sig_h)?
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b| LENIENT.decode(b).ok())
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::MalformedHeader(sig_h));
    }
    check_epoch_secs(ts, ts_h, now)?;
    verify_any(secrets, |secret| {
        let raw = secret.trim_ascii();
        let Ok(key) = LENIENT.decode(raw.strip_prefix(b"whsec_").unwrap_or(raw)) else {
            return false;
        };
        one_of(
            &hmac_sha256(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]),
            &candidates,
        )
    })
}

/// Reads a `{type, timestamp, data}` body as one event; the delivery id is the `*-id` header.
pub fn normalize(
    flavor: Flavor,
    headers: &HeaderMap,
    raw: serde_json::Value,
) -> Result<Inbound, NormalizeError> {
    let (id_h, _, _) = flavor.names();
    let event_type = str_field(&raw, "/type").ok_or(NormalizeError::MissingField("type"))?;
    let data = raw.get("data");
    Ok(Inbound::event(Normalized {
        event_type,
        delivery_id: opt_header(headers, id_h).map(str::to_owned),
        object_id: data.and_then(|d| str_field(d, "/id")),
        subject: data.and_then(|d| str_field(d, "/subject").or_else(|| str_field(d, "/title"))),
        text: data.and_then(|d| str_field(d, "/text").or_else(|| str_field(d, "/description"))),
        requester: data.and_then(|d| str_field(d, "/email").or_else(|| str_field(d, "/user"))),
        occurred_at: raw
            .get("timestamp")
            .and_then(|v| crate::dates::parse_json(v).ok()),
        links: Vec::new(),
        unknown_fields: crate::webhook::unknown_keys(&raw, &["type", "timestamp", "data"]),
        attachments: Vec::new(),
        raw: raw.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // The Standard Webhooks specification's example.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(flavor: Flavor, sig: &str) -> HeaderMap {
        let (i, t, s) = flavor.names();
        let mut h = HeaderMap::new();
        h.insert(i, ID.parse().unwrap());
        h.insert(t, TS.parse().unwrap());
        h.insert(s, sig.parse().unwrap());
        h
    }

    fn at(s: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(s, 0).single()
    }

    #[test]
    fn spec_example_both_flavors_with_and_without_prefix() {
        for flavor in [Flavor::Standard, Flavor::Svix] {
            for secret in [SECRET, SECRET.trim_start_matches("whsec_")] {
                let secrets = [SecretString::from(secret)];
                assert_eq!(
                    verify(
                        flavor,
                        &headers(flavor, SIG),
                        BODY,
                        &secrets,
                        at(1614265330)
                    ),
                    Ok(()),
                    "{flavor:?}"
                );
            }
        }
    }

    /// A secret written without its base64 padding is the same key (the vendors' libraries pad
    /// it before decoding), and so is a signature sent unpadded.
    #[test]
    fn secrets_and_signatures_without_padding() {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
        let key = b"sixteen byte key";
        let padded = format!("whsec_{}", STANDARD.encode(key));
        assert!(padded.ends_with("=="));
        let unpadded = padded.trim_end_matches('=').to_owned();
        let mac = crate::webhook::signature::hmac_sha256(
            key,
            &[ID.as_bytes(), b".", TS.as_bytes(), b".", BODY],
        );
        for sig in [
            format!("v1,{}", STANDARD.encode(mac)),
            format!("v1,{}", STANDARD_NO_PAD.encode(mac)),
        ] {
            for secret in [&padded, &unpadded] {
                let secrets = [SecretString::from(secret.as_str())];
                assert_eq!(
                    verify(
                        Flavor::Svix,
                        &headers(Flavor::Svix, &sig),
                        BODY,
                        &secrets,
                        at(1614265330)
                    ),
                    Ok(()),
                    "{secret} {sig}"
                );
            }
        }
    }

    #[test]
    fn several_signatures_one_valid() {
        let secrets = [SecretString::from(SECRET)];
        let sigs = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SIG} v1a,ignored");
        assert_eq!(
            verify(
                Flavor::Standard,
                &headers(Flavor::Standard, &sigs),
                BODY,
                &secrets,
                at(1614265330)
            ),
            Ok(())
        );
    }

    #[test]
    fn tampered_wrong_secret_stale() {
        let secrets = [SecretString::from(SECRET)];
        let h = headers(Flavor::Standard, SIG);
        assert_eq!(
            verify(
                Flavor::Standard,
                &h,
                br#"{"test": 2432232315}"#,
                &secrets,
                at(1614265330)
            ),
            Err(VerifyError::Mismatch)
        );
        let wrong = [SecretString::from("whsec_dGhpcyBpcyBub3QgdGhlIGtleQ==")];
        assert_eq!(
            verify(Flavor::Standard, &h, BODY, &wrong, at(1614265330)),
            Err(VerifyError::Mismatch)
        );
        assert!(matches!(
            verify(Flavor::Standard, &h, BODY, &secrets, at(1614265330 + 301)),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            verify(Flavor::Standard, &h, BODY, &secrets, at(1614265330 - 301)),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        // Svix headers do not satisfy the standard flavor.
        assert_eq!(
            verify(
                Flavor::Standard,
                &headers(Flavor::Svix, SIG),
                BODY,
                &secrets,
                None
            ),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
    }
}
