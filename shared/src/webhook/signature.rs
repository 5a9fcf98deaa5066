//! HMAC primitives shared by the vendor schemes. Comparisons are constant-time.

use chrono::{DateTime, Utc};
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
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// True when any secret's MAC over `parts` equals `expected`.
pub fn any_secret_matches(secrets: &[SecretString], parts: &[&[u8]], expected: &[u8]) -> bool {
    // Check every secret (no early exit) so timing does not reveal which one matched.
    secrets.iter().fold(false, |found, s| {
        let mac = hmac_sha256(s.expose_secret().as_bytes(), parts);
        ct_eq(&mac, expected) | found
    })
}

/// Reject timestamps further than `tolerance_secs` from now, in either direction.
pub fn check_freshness(
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
