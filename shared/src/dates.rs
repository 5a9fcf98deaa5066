//! One lenient parser for every date a vendor sends, always to UTC.
//!
//! Accepted:
//! - RFC 3339 / ISO 8601: `T` or a space between date and time; seconds optional
//!   (`2024-01-15T10:31Z`); 0–9 fraction digits; `Z`/`z`, `±HH:MM`, `±HHMM` or `±HH`.
//! - RFC 2822 (`Tue, 15 Jan 2024 10:31:00 +0000`) and HTTP-date in all three forms (IMF-fixdate,
//!   RFC 850, asctime — the last two are GMT by definition).
//! - Epoch numbers, as JSON numbers or strings, unit decided by the magnitude of the integer part:
//!   below 10^11 seconds (years up to 5138), below 10^14 milliseconds, below 10^17 microseconds;
//!   larger is refused. A fractional part is kept exactly (Slack `ts` `"1700000000.123456"` is
//!   seconds with microseconds, never rounded through a float).
//!
//! A date and time without a timezone is an error: guessing local time is how dates shift by hours.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use thiserror::Error;

/// Why a date could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DateError {
    /// The input is empty or only whitespace.
    #[error("empty date")]
    Empty,
    /// A bare date, or a date and time without a timezone; holds the input.
    #[error("{0:?} has no timezone; refusing to guess one")]
    NoTimezone(String),
    /// An epoch number whose integer part is 10^17 or more; holds the input.
    #[error("epoch number {0:?} is too large for seconds, milliseconds or microseconds")]
    EpochOutOfRange(String),
    /// The input fits no accepted format, or names no representable instant; holds it.
    #[error("{0:?} is not a date switchyard understands (RFC 3339/ISO 8601, RFC 2822, HTTP-date or epoch)")]
    Unrecognized(String),
}

/// Parse any supported date string.
pub fn parse(input: &str) -> Result<DateTime<Utc>, DateError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DateError::Empty);
    }
    if s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'-')
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && !s[1..].contains('-')
    {
        return parse_epoch(s);
    }
    if s.as_bytes().get(4) == Some(&b'-') {
        return parse_iso(s);
    }
    parse_rfc2822_or_http(s)
}

/// Parse a JSON value: a string in any supported form, or an epoch number.
pub(crate) fn parse_json(v: &serde_json::Value) -> Result<DateTime<Utc>, DateError> {
    match v {
        serde_json::Value::String(s) => parse(s),
        // `Number`'s text keeps the digits as sent (no float round trip for integers).
        serde_json::Value::Number(n) => parse_epoch(&n.to_string()),
        other => Err(DateError::Unrecognized(other.to_string())),
    }
}

/// The house format: RFC 3339, UTC, milliseconds.
pub fn format(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn parse_epoch(s: &str) -> Result<DateTime<Utc>, DateError> {
    let unrecognized = || DateError::Unrecognized(s.to_owned());
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int.is_empty() || frac.contains('.') || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unrecognized());
    }
    let whole: i128 = int.parse().map_err(|_| unrecognized())?;
    // Scale of the integer part → nanoseconds per unit.
    let unit_nanos: i128 = match whole {
        w if w < 100_000_000_000 => 1_000_000_000,
        w if w < 100_000_000_000_000 => 1_000_000,
        w if w < 100_000_000_000_000_000 => 1_000,
        _ => return Err(DateError::EpochOutOfRange(s.to_owned())),
    };
    // Fraction digits below a nanosecond are dropped (truncated, not rounded).
    let mut frac_nanos: i128 = 0;
    let mut scale = unit_nanos;
    for d in frac.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        frac_nanos += i128::from(d - b'0') * scale;
    }
    let mut nanos = whole * unit_nanos + frac_nanos;
    if negative {
        nanos = -nanos;
    }
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| unrecognized())?;
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    Utc.timestamp_opt(secs, sub)
        .single()
        .ok_or_else(unrecognized)
}

fn parse_iso(s: &str) -> Result<DateTime<Utc>, DateError> {
    let unrecognized = || DateError::Unrecognized(s.to_owned());
    // Split date-time from the zone designator, which starts at Z or at a sign after the time.
    let t_pos = s.find(['T', 't', ' ']).ok_or_else(|| {
        // A bare date has no time, let alone a zone.
        if s.len() == 10 {
            DateError::NoTimezone(s.to_owned())
        } else {
            unrecognized()
        }
    })?;
    let time_part = &s[t_pos + 1..];
    let zone_at = time_part.find(['Z', 'z', '+', '-']).map(|i| t_pos + 1 + i);
    let Some(zone_at) = zone_at else {
        return Err(DateError::NoTimezone(s.to_owned()));
    };
    let (local, zone) = s.split_at(zone_at);
    let offset = parse_offset(zone).ok_or_else(unrecognized)?;
    let local = local.replacen([' ', 't'], "T", 1);
    let naive = parse_local(&local).ok_or_else(unrecognized)?;
    let fixed = offset
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(unrecognized)?;
    Ok(fixed.with_timezone(&Utc))
}

/// `YYYY-MM-DDTHH:MM[:SS[.f{1,9}]]` by position: the common case, without format interpretation.
fn fast_local(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b.get(from..to)?.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (year, month, day, hour, minute) = (
        num(0, 4)?,
        num(5, 7)?,
        num(8, 10)?,
        num(11, 13)?,
        num(14, 16)?,
    );
    let (second, rest) = match b.get(16) {
        None => (0, &b[16..]),
        Some(b':') => (num(17, 19)?, b.get(19..)?),
        Some(_) => return None,
    };
    let nanos = match rest {
        [] => 0,
        [b'.', digits @ ..]
            if (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) =>
        {
            let v = digits
                .iter()
                .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
            v * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)
}

fn parse_local(s: &str) -> Option<NaiveDateTime> {
    if let Some(t) = fast_local(s) {
        return Some(t);
    }
    // More than nine fraction digits is not an instant chrono (or anyone) can hold.
    if let Some((_, frac)) = s.split_once('.') {
        if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

fn parse_offset(zone: &str) -> Option<FixedOffset> {
    if zone.eq_ignore_ascii_case("z") {
        return FixedOffset::east_opt(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

fn parse_rfc2822_or_http(s: &str) -> Result<DateTime<Utc>, DateError> {
    // RFC 2822 covers IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) too.
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`): GMT.
    let rfc850 = s.strip_suffix(" GMT").and_then(|rest| {
        let (_, date) = rest.split_once(", ")?;
        NaiveDateTime::parse_from_str(date, "%d-%b-%y %H:%M:%S").ok()
    });
    let asctime = || {
        let squeezed = s.split_whitespace().collect::<Vec<_>>().join(" ");
        NaiveDateTime::parse_from_str(&squeezed, "%a %b %e %H:%M:%S %Y").ok()
    };
    match rfc850.or_else(asctime) {
        Some(naive) => Ok(Utc.from_utc_datetime(&naive)),
        None => Err(DateError::Unrecognized(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        format(&parse(input).unwrap_or_else(|e| panic!("{input}: {e}")))
    }

    #[test]
    fn iso_variants() {
        for (input, want) in [
            ("2024-01-15T10:31:00Z", "2024-01-15T10:31:00.000Z"),
            ("2024-01-15T10:31Z", "2024-01-15T10:31:00.000Z"),
            ("2024-01-15t10:31:00z", "2024-01-15T10:31:00.000Z"),
            ("2024-01-15 10:31:00+00:00", "2024-01-15T10:31:00.000Z"),
            ("2024-01-15T16:01:00+05:30", "2024-01-15T10:31:00.000Z"),
            ("2024-01-15T16:01:00+0530", "2024-01-15T10:31:00.000Z"),
            ("2024-01-15T05:31:00-05", "2024-01-15T10:31:00.000Z"),
            ("2024-01-15T10:31:00.1Z", "2024-01-15T10:31:00.100Z"),
            (
                "2024-01-15T10:31:00.123456789+0000",
                "2024-01-15T10:31:00.123Z",
            ),
            ("2024-01-15T10:31:00.000-0800", "2024-01-15T18:31:00.000Z"),
        ] {
            assert_eq!(ok(input), want, "{input}");
        }
        // Jira's format, from its REST API.
        assert_eq!(
            ok("2024-01-15T10:31:00.000+0000"),
            "2024-01-15T10:31:00.000Z"
        );
    }

    #[test]
    fn no_timezone_is_refused_not_guessed() {
        for input in ["2024-01-15T10:31:00", "2024-01-15 10:31", "2024-01-15"] {
            assert_eq!(
                parse(input),
                Err(DateError::NoTimezone(input.into())),
                "{input}"
            );
        }
    }

    #[test]
    fn epochs_by_magnitude() {
        assert_eq!(ok("1705314660"), "2024-01-15T10:31:00.000Z");
        assert_eq!(ok("1705314660123"), "2024-01-15T10:31:00.123Z");
        assert_eq!(ok("1705314660123456"), "2024-01-15T10:31:00.123Z");
        assert_eq!(
            parse_json(&serde_json::json!(1705314660)).map(|t| format(&t)),
            Ok("2024-01-15T10:31:00.000Z".into())
        );
        assert_eq!(
            parse_json(&serde_json::json!(1705314660123i64)).map(|t| t.timestamp_millis()),
            Ok(1705314660123)
        );
        assert!(matches!(
            parse("100000000000000000"),
            Err(DateError::EpochOutOfRange(_))
        ));
    }

    #[test]
    fn slack_ts_keeps_every_microsecond() {
        let t = parse("1700000000.123456").unwrap();
        assert_eq!(
            (t.timestamp(), t.timestamp_subsec_micros()),
            (1_700_000_000, 123_456)
        );
        let t = parse("1700000000.000001").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 1_000);
    }

    #[test]
    fn rfc2822_and_http_dates() {
        assert_eq!(
            ok("Mon, 15 Jan 2024 10:31:00 +0000"),
            "2024-01-15T10:31:00.000Z"
        );
        assert_eq!(
            ok("Sun, 06 Nov 1994 08:49:37 GMT"),
            "1994-11-06T08:49:37.000Z"
        );
        assert_eq!(
            ok("Sunday, 06-Nov-94 08:49:37 GMT"),
            "1994-11-06T08:49:37.000Z"
        );
        assert_eq!(ok("Sun Nov  6 08:49:37 1994"), "1994-11-06T08:49:37.000Z");
    }

    #[test]
    fn junk_is_a_clear_error() {
        for input in [
            "yesterday",
            "2024-13-45T10:31:00Z",
            "2024-01-15T10:31:00.1234567890Z",
            "12.34.56",
            "2024-01-15T10:31:00+25:00",
        ] {
            let err = parse(input).unwrap_err();
            assert!(
                matches!(err, DateError::Unrecognized(_)),
                "{input}: {err:?}"
            );
        }
        assert_eq!(parse("  "), Err(DateError::Empty));
    }
}
