//! HMAC primitives shared by the vendor schemes. Comparisons are constant-time.

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::VerifyError;

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<sha1::Sha1>;

/// HMAC-SHA256 of the concatenated parts.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1, for the legacy schemes that still use it (GitHub `X-Hub-Signature`, Twilio).
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality; different lengths are simply unequal.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub(crate) use crate::secrets::is_usable;

/// `Ok` when `matches` holds for any active secret (its raw bytes). Every secret is tried, with
/// no early exit, so timing does not reveal which one matched. A secret that is not
/// [usable](is_usable) never verifies.
pub(crate) fn verify_any(
    secrets: &[SecretString],
    matches: impl Fn(&[u8]) -> bool,
) -> Result<(), VerifyError> {
    let found = secrets.iter().fold(false, |found, s| {
        let s = s.expose_secret();
        (is_usable(s) & matches(s.as_bytes())) | found
    });
    if found {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// `Ok` when any secret's HMAC-SHA256 over `parts` equals `expected`.
pub(crate) fn verify_hmac_sha256(
    secrets: &[SecretString],
    parts: &[&[u8]],
    expected: &[u8],
) -> Result<(), VerifyError> {
    verify_any(secrets, |key| ct_eq(&hmac_sha256(key, parts), expected))
}

/// True when `mac` equals any of the signatures a header carried (all compared).
pub(crate) fn one_of(mac: &[u8], candidates: &[Vec<u8>]) -> bool {
    candidates.iter().fold(false, |hit, c| ct_eq(mac, c) | hit)
}

/// The bytes of a `prefix`+hex signature header value (`sha256=…`, `v0=…`).
pub(crate) fn hex_after(
    value: &str,
    prefix: &str,
    header: &'static str,
) -> Result<Vec<u8>, VerifyError> {
    value
        .trim()
        .strip_prefix(prefix)
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::MalformedHeader(header))
}

/// Freshness of an epoch-seconds timestamp header; without `now`, only its form is checked.
pub(crate) fn check_epoch_secs(
    value: &str,
    header: &'static str,
    now: Option<DateTime<Utc>>,
) -> Result<(), VerifyError> {
    let secs: i64 = value
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedHeader(header))?;
    let signed_at = Utc
        .timestamp_opt(secs, 0)
        .single()
        .ok_or(VerifyError::MalformedHeader(header))?;
    match now {
        Some(now) => check_freshness(signed_at, now, super::DEFAULT_TOLERANCE_SECS),
        None => Ok(()),
    }
}

/// Reject timestamps further than `tolerance_secs` from now, in either direction.
pub(crate) fn check_freshness(
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let skew_secs = (now - signed_at).num_seconds().abs();
    if skew_secs > tolerance_secs {
        return Err(VerifyError::StaleTimestamp {
            skew_secs,
            tolerance_secs,
        });
    }
    Ok(())
}
