//! How long a vendor asked us to wait, from whatever it sent: `Retry-After` as delta seconds
//! (fractional too) or an HTTP-date, `retry-after-ms`, and reset headers as an ISO time (Jira's
//! `X-RateLimit-Reset: 2024-06-18T13:00Z`), epoch seconds or milliseconds (GitHub-style), or
//! delta seconds (IETF `RateLimit-Reset`).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Response headers as (name, value) pairs; names compare case-insensitively.
pub type Headers = [(String, String)];

/// A response's headers as pairs (values that are not text are left out).
pub(crate) fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// The first header named `name` (case-insensitively), its value trimmed; `None` when absent.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Below this a bare number is a delay; above it, a point in time (1e9 s is September 2001,
/// and no vendor asks for a 31-year wait).
const EPOCH_FLOOR: f64 = 1e9;

/// The wait the headers ask for, most specific first. `None` when nothing usable was sent.
pub(crate) fn wait_hint(headers: &Headers, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    if let Some(d) = header(headers, "retry-after").and_then(|v| parse_wait(v, now)) {
        return Some(d);
    }
    ["x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset"]
        .iter()
        .find_map(|name| header(headers, name).and_then(|v| parse_wait(v, now)))
}

/// The spacing a successful answer asks for: what is left of the vendor's window
/// (`remaining`) spread evenly until its reset — the whole wait when nothing is left. It lets
/// every worker slow down before a 429 when something else (another integration on the account)
/// spends the same budget. Reads `X-Rate-Limit-Remaining`/`RateLimit-Remaining` (Zendesk, Jira,
/// IETF) with the reset headers, and HubSpot's `X-HubSpot-RateLimit-Remaining: 0` with its
/// interval (HubSpot names no reset time, so only an empty window says anything).
pub(crate) fn budget_hint(headers: &Headers, now: DateTime<Utc>) -> Option<Duration> {
    let count = |name: &str| header(headers, name).and_then(|v| v.parse::<u32>().ok());
    if count("x-hubspot-ratelimit-remaining") == Some(0) {
        let ms = header(headers, "x-hubspot-ratelimit-interval-milliseconds")?
            .parse()
            .ok()?;
        return Some(Duration::from_millis(ms));
    }
    let remaining = [
        "x-rate-limit-remaining",
        "ratelimit-remaining",
        "x-ratelimit-remaining",
    ]
    .iter()
    .find_map(|n| count(n))?;
    let reset = ["ratelimit-reset", "x-ratelimit-reset", "x-rate-limit-reset"]
        .iter()
        .find_map(|name| header(headers, name).and_then(|v| parse_wait(v, now)))?;
    Some(reset / remaining.saturating_add(1))
}

/// One header value: delta seconds, epoch seconds/milliseconds, or a date, relative to `now`.
/// Times in the past mean "no wait".
pub(crate) fn parse_wait(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(n) = value.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        if n < EPOCH_FLOOR {
            return Some(Duration::from_secs_f64(n));
        }
        // Epoch: seconds below 1e11, milliseconds above (the shared date rule).
        let at = crate::dates::parse(value).ok()?;
        return Some(until(at, now));
    }
    let at = crate::dates::parse(value).ok()?;
    Some(until(at, now))
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

/// Whole milliseconds, rounded up so a wait is never shortened.
pub fn as_millis_ceil(d: Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn ms(pairs: &[(&str, &str)]) -> Option<u64> {
        wait_hint(&h(pairs), now()).map(as_millis_ceil)
    }

    #[test]
    fn every_form_a_vendor_sends() {
        assert_eq!(ms(&[("Retry-After", "30")]), Some(30_000));
        assert_eq!(ms(&[("retry-after", "1.5")]), Some(1_500));
        assert_eq!(ms(&[("Retry-After", "0.0001")]), Some(1));
        assert_eq!(
            ms(&[("Retry-After", "Sat, 28 Nov 2026 12:00:45 GMT")]),
            Some(45_000)
        );
        // Jira: minutes only, ISO.
        assert_eq!(
            ms(&[("X-RateLimit-Reset", "2026-11-28T12:02Z")]),
            Some(120_000)
        );
        // Epoch seconds and milliseconds.
        let epoch = now().timestamp() + 9;
        assert_eq!(
            ms(&[("X-RateLimit-Reset", &epoch.to_string())]),
            Some(9_000)
        );
        assert_eq!(
            ms(&[("x-ratelimit-reset", &(epoch * 1000 + 500).to_string())]),
            Some(9_500)
        );
        assert_eq!(ms(&[("RateLimit-Reset", "12")]), Some(12_000));
        assert_eq!(ms(&[("retry-after-ms", "250")]), Some(250));
    }

    #[test]
    fn retry_after_wins_over_reset_and_past_means_now() {
        assert_eq!(
            ms(&[
                ("X-RateLimit-Reset", "2026-11-28T12:10Z"),
                ("Retry-After", "5")
            ]),
            Some(5_000)
        );
        assert_eq!(
            ms(&[("Retry-After", "Sat, 28 Nov 2026 11:00:00 GMT")]),
            Some(0)
        );
    }

    #[test]
    fn a_spent_budget_on_a_success_says_how_long_to_hold() {
        let spent = |pairs: &[(&str, &str)]| budget_hint(&h(pairs), now()).map(as_millis_ceil);
        assert_eq!(
            spent(&[("x-rate-limit-remaining", "0"), ("ratelimit-reset", "41")]),
            Some(41_000)
        );
        assert_eq!(
            spent(&[
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", "2026-11-28T12:01Z")
            ]),
            Some(60_000)
        );
        assert_eq!(
            spent(&[
                ("X-HubSpot-RateLimit-Remaining", "0"),
                ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
            ]),
            Some(10_000)
        );
        // Twelve left for 39 s: one call every 3 s keeps inside it.
        assert_eq!(
            spent(&[("x-rate-limit-remaining", "12"), ("ratelimit-reset", "39")]),
            Some(3_000)
        );
        assert_eq!(spent(&[("x-rate-limit-remaining", "0")]), None);
        assert_eq!(
            spent(&[("x-rate-limit-remaining", "lots"), ("ratelimit-reset", "9")]),
            None
        );
        // HubSpot's remaining count has no reset time: only an empty window holds.
        assert_eq!(
            spent(&[
                ("X-HubSpot-RateLimit-Remaining", "40"),
                ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
            ]),
            None
        );
    }

    #[test]
    fn junk_is_no_hint() {
        assert_eq!(ms(&[("Retry-After", "soon")]), None);
        assert_eq!(ms(&[("Retry-After", "-3")]), None);
        assert_eq!(ms(&[("Retry-After", "NaN")]), None);
        assert_eq!(ms(&[]), None);
        // A junk Retry-After falls back to a usable reset header.
        assert_eq!(
            ms(&[("Retry-After", "later"), ("X-RateLimit-Reset", "3")]),
            Some(3_000)
        );
    }
}
