//! Pacing: one outbound budget per vendor credential, shared by every concurrent worker, and the
//! waits it asks for.
//!
//! - Budgets: per connector defaults from the vendors' documented limits, overridden by
//!   `RATE_LIMITS` (`zendesk=700/minute,hubspot=190/10s`). The budget key is connector + the
//!   credential's secret id, so every automation on one credential shares one budget.
//! - Longer windows on top of the pace (HubSpot's daily cap beside its 100 per 10 s:
//!   `hubspot=190/10s+650000/day`) are ceilings: a burst of up to a 24th of the window at
//!   once, a sustained rate just under it, and never more than the window's count in any
//!   trailing window (see [`Rate::ceiling`]).
//! - Endpoint classes with their own, narrower limit (HubSpot CRM search 5/s; Slack
//!   `chat.postMessage` 1/s **per channel**) take a slot of the class budget first, then one of
//!   the credential's (`hubspot.search=4/s` overrides a class).
//! - Concurrency caps (`salesforce=25/concurrent`): at most N calls in flight per credential
//!   across all workers (`concurrency`).
//! - A retry budget per credential (a tenth of its budget, bursts of 5): a transient failure is
//!   retried in the function only while it lasts; past it the record fails to SQS and the
//!   breaker counts it.
//! - Short waits (up to [`IN_FUNCTION_WAIT`]) are slept in the function: cheaper than a round trip
//!   through SQS, whose delays have whole-second granularity. Longer ones hand the message back
//!   (see `handlers::act`).
//! - A vendor's 429 (or Slack `ratelimited`, Salesforce `REQUEST_LIMIT_EXCEEDED`) pushes the
//!   shared budget back by its `Retry-After` for every worker at once.

pub mod breaker;
pub mod concurrency;
pub(crate) mod gcra;

use std::collections::HashMap;
use std::time::Duration;

use crate::aws::StoreError;
pub(crate) use breaker::breaker_key;
pub use breaker::{Breaker, Gate};
pub(crate) use concurrency::Concurrency;
pub use gcra::{Admission, Limiter, Rate};

/// The longest wait a worker sleeps through instead of handing its message back.
pub const IN_FUNCTION_WAIT: Duration = Duration::from_secs(2);

/// The hold after a 429 that named no wait.
pub(crate) const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);

/// The limits switchyard knows without being told, beneath `RATE_LIMITS`: each vendor's
/// documented budget and a described connector's `[limits]`. The vendor registry provides them
/// (`vendors::DOCUMENTED`); without them every connector gets a conservative 60 a minute.
pub trait Documented: std::fmt::Debug + Send + Sync {
    /// The pace, then any longer windows (ceilings), for one credential of `connector`.
    fn windows(&self, connector: &str) -> Option<Vec<Rate>>;
    /// The rate of an endpoint class the vendor limits more narrowly than the credential.
    fn class_rate(&self, connector: &str, class: &str) -> Option<Rate>;
    /// At most this many calls in flight per credential.
    fn concurrency(&self, connector: &str) -> Option<u32>;
}

/// Budgets by connector (and endpoint class): `RATE_LIMITS` overrides, then what is documented;
/// and concurrency caps (`N/concurrent`).
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// The pace, then any longer windows (ceilings), by connector or `connector.class`.
    overrides: HashMap<String, Vec<Rate>>,
    caps: HashMap<String, u32>,
    documented: Option<&'static dyn Documented>,
}

/// Why a rate (`RATE_LIMITS`, a ceiling, a description's `[limits]`) was refused, naming the
/// part at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidRate {
    /// A part of `RATE_LIMITS` has no `=` between its name and its rate.
    #[error("{0:?} is not connector=N/period")]
    NotAssigned(String),
    /// A rate has no `/` between its count and its period.
    #[error("{0:?} is not N/period")]
    NotCountPerPeriod(String),
    /// The count is not a whole number above 0.
    #[error("{0:?} is not a positive count")]
    NotPositive(String),
    /// The period is not a known unit or a whole number of seconds followed by `s`.
    #[error("unknown period {0:?}")]
    UnknownPeriod(String),
    /// A window after `+` is not longer than the first one, the pace.
    #[error("{connector}: a window after '+' must be longer than {pace_secs}s")]
    CeilingNotLonger {
        /// The name the rate was given for (a connector, or `connector.class`).
        connector: String,
        /// The first window (the pace), in seconds.
        pace_secs: u64,
    },
}

fn positive_count(count: &str) -> Result<u32, InvalidRate> {
    count
        .trim()
        .parse()
        .ok()
        .filter(|c| *c > 0)
        .ok_or_else(|| InvalidRate::NotPositive(count.to_owned()))
}

/// `N/period`: a count and its window (`600/minute`, `100/10s`); errors name the bad part.
pub(crate) fn parse_window(rate: &str) -> Result<(u32, Duration), InvalidRate> {
    let (count, period) = rate
        .split_once('/')
        .ok_or_else(|| InvalidRate::NotCountPerPeriod(rate.to_owned()))?;
    let count = positive_count(count)?;
    let secs = match period.trim() {
        "second" | "s" | "sec" => 1,
        "minute" | "min" | "m" => 60,
        "hour" | "h" => 3_600,
        "day" | "d" => 86_400,
        other => other
            .strip_suffix('s')
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| InvalidRate::UnknownPeriod(other.to_owned()))?,
    };
    Ok((count, Duration::from_secs(secs)))
}

impl Limits {
    /// `zendesk=700/minute,hubspot=190/10s+650000/day,salesforce=25/concurrent` (units:
    /// second|s, minute|min|m, hour|h, day|d, or a number of seconds followed by `s`; windows
    /// after `+` must be longer than the first, the pace).
    pub fn parse(spec: &str) -> Result<Self, InvalidRate> {
        let mut overrides = HashMap::new();
        let mut caps = HashMap::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rate) = part
                .split_once('=')
                .ok_or_else(|| InvalidRate::NotAssigned(part.to_owned()))?;
            let name = name.trim().to_owned();
            if let Some(count) = rate.trim().strip_suffix("/concurrent") {
                caps.insert(name, positive_count(count)?);
                continue;
            }
            let mut windows = rate.split('+').map(parse_window);
            let (count, period) = windows.next().expect("split yields one")?;
            let mut rates = vec![Rate {
                count,
                period,
                burst: 1,
            }];
            for w in windows {
                let (count, longer) = w?;
                if longer <= period {
                    return Err(InvalidRate::CeilingNotLonger {
                        connector: name,
                        pace_secs: period.as_secs(),
                    });
                }
                rates.push(Rate::ceiling(count, longer));
            }
            overrides.insert(name, rates);
        }
        Ok(Limits {
            overrides,
            caps,
            documented: None,
        })
    }

    /// The budget of an endpoint class (`class` may carry a scope after `#`, e.g. a channel).
    pub(crate) fn class_rate(&self, connector: &str, class: &str) -> Option<Rate> {
        let name = class.split('#').next().unwrap_or(class);
        self.overrides
            .get(&format!("{connector}.{name}"))
            .map(|r| r[0])
            .or_else(|| self.documented?.class_rate(connector, name))
    }

    /// These limits over what is documented (the vendor registry's).
    pub fn with_documented(mut self, documented: &'static dyn Documented) -> Self {
        self.documented = Some(documented);
        self
    }

    /// What `RATE_LIMITS` (or a description's `[limits]`) set for `connector`: its windows.
    pub fn configured(&self, connector: &str) -> Option<&[Rate]> {
        self.overrides.get(connector).map(Vec::as_slice)
    }

    /// What `RATE_LIMITS` (or a description's `[limits]`) capped `connector`'s calls in flight at.
    pub(crate) fn configured_cap(&self, connector: &str) -> Option<u32> {
        self.caps.get(connector).copied()
    }

    /// The retry budget: a tenth of the credential's budget, up to 5 at once (`connector.retry`
    /// overrides it), so retries of a failing API cannot crowd out or hammer it.
    pub fn retry_rate(&self, connector: &str) -> Rate {
        if let Some(r) = self.overrides.get(&format!("{connector}.retry")) {
            return r[0];
        }
        let base = self.rate(connector);
        Rate {
            count: (base.count / 10).max(1),
            period: base.period,
            burst: 5,
        }
    }

    /// These limits with a concurrency cap for `connector`.
    pub(crate) fn with_cap(mut self, connector: &str, cap: u32) -> Self {
        self.caps.insert(connector.to_owned(), cap);
        self
    }

    /// At most this many calls in flight per credential (none unless configured).
    pub fn concurrency(&self, connector: &str) -> Option<u32> {
        self.configured_cap(connector)
            .or_else(|| self.documented?.concurrency(connector))
    }

    /// The windows for `connector`: `RATE_LIMITS`, then what is documented.
    fn windows(&self, connector: &str) -> Option<Vec<Rate>> {
        self.configured(connector)
            .map(<[Rate]>::to_vec)
            .or_else(|| self.documented?.windows(connector))
    }

    /// The credential's pace: evenly spaced calls.
    pub fn rate(&self, connector: &str) -> Rate {
        self.windows(connector)
            .map_or(Rate::per_minute(60), |r| r[0])
    }

    /// The credential's longer windows (a daily cap), each checked after the pace. An override
    /// of the connector replaces what is documented, ceilings included.
    pub(crate) fn ceilings(&self, connector: &str) -> Vec<Rate> {
        self.windows(connector)
            .map(|r| r[1..].to_vec())
            .unwrap_or_default()
    }

    /// The spacing workers keep: the credential's rate with [`PACE_HEADROOM`].
    pub fn pace(&self, connector: &str) -> Rate {
        self.rate(connector).with_headroom()
    }

    /// How many calls every window of the credential admits within `window` from idle.
    pub(crate) fn capacity(&self, connector: &str, window: Duration) -> f64 {
        std::iter::once(self.pace(connector))
            .chain(self.ceilings(connector))
            .map(|r| r.admits_within(window))
            .fold(f64::INFINITY, f64::min)
    }
}

/// What a worker should do before calling a vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Its slot has come: call now.
    Go,
    /// No slot soon: hand the work back for this long.
    Defer(Duration),
    /// A slot is reserved, later than an in-function wait but within the horizon asked for: hand
    /// the work back until then, and call at that time without asking for another.
    Reserved {
        /// When the reserved slot is, in unix microseconds.
        at_us: i64,
    },
}

/// How far ahead act reserves a slot when the budget is busy, so handed-back work comes back
/// once, at its slot, instead of competing again (past it, the work is handed back to ask later).
pub(crate) const RESERVE_HORIZON: Duration = Duration::from_secs(3_600);

/// What a worker asks before calling a vendor: the budgets, their limits and the breakers.
#[derive(Clone, Debug)]
pub struct Pacer {
    /// The shared budgets, kept in the pacing table (`PACING_TABLE`).
    pub limiter: Limiter,
    /// The rates and concurrency caps: `RATE_LIMITS` over the documented ones.
    pub limits: Limits,
    /// The circuit breakers, one per connector and credential.
    pub breaker: Breaker,
}

pub(crate) fn budget_key(connector: &str, credential: &str) -> String {
    format!("budget#{connector}#{credential}")
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Pacer {
    /// The limiter, budgets and breaker a function's settings name (`PACING_TABLE`,
    /// `RATE_LIMITS`).
    /// `documented`: the limits beneath `RATE_LIMITS` (`vendors::DOCUMENTED`).
    pub fn from_settings(
        ddb: &aws_sdk_dynamodb::Client,
        s: &crate::settings::Settings,
        documented: &'static dyn Documented,
    ) -> Result<Self, crate::settings::SettingError> {
        let table = s.pacing_table()?;
        let limits = Limits::parse(s.optional("RATE_LIMITS").unwrap_or("")).map_err(|e| {
            crate::settings::SettingError::Invalid {
                name: "RATE_LIMITS",
                reason: e.to_string(),
            }
        })?;
        Ok(Pacer {
            limiter: Limiter::new(ddb.clone(), table),
            limits: limits.with_documented(documented),
            breaker: Breaker::new(ddb.clone(), table),
        })
    }

    /// Wait (in the function) for a slot of the credential's budget, or say how long to defer.
    pub async fn wait_turn(&self, connector: &str, credential: &str) -> Result<Pace, StoreError> {
        self.wait_turn_in(connector, credential, None, IN_FUNCTION_WAIT)
            .await
    }

    /// Reserve a slot of the endpoint class's budget (when it has one), then of the credential's;
    /// no sleeping: `Go { at_us }` is when the call may start.
    pub async fn reserve(
        &self,
        connector: &str,
        credential: &str,
        class: Option<&str>,
        now: i64,
        horizon: Duration,
    ) -> Result<Admission, StoreError> {
        let mut start = now;
        if let Some((class, rate)) =
            class.and_then(|c| Some((c, self.limits.class_rate(connector, c)?.with_headroom())))
        {
            let key = format!("{}#{class}", budget_key(connector, credential));
            match self.limiter.acquire(&key, rate, now, horizon).await? {
                Admission::Go { at_us } => start = at_us,
                wait => return Ok(wait),
            }
        }
        // The waits run side by side (the call starts at the latest slot), so each may take up
        // to the in-function wait from now. A slot used later than reserved never over-admits.
        // The pace comes before the ceilings: a refusal there wastes a pace slot, not a day's.
        let key = budget_key(connector, credential);
        let windows = std::iter::once((key.clone(), self.limits.pace(connector))).chain(
            self.limits
                .ceilings(connector)
                .into_iter()
                .map(|r| (format!("{key}@{}s", r.period.as_secs()), r)),
        );
        for (key, rate) in windows {
            match self.limiter.acquire(&key, rate, now, horizon).await? {
                Admission::Go { at_us } => start = start.max(at_us),
                wait => return Ok(wait),
            }
        }
        Ok(Admission::Go { at_us: start })
    }

    /// Whether the credential's retry budget has a retry for now (takes it if so).
    pub async fn retry_allowed(
        &self,
        connector: &str,
        credential: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let key = format!("{}#retry", budget_key(connector, credential));
        let admission = self
            .limiter
            .acquire(&key, self.limits.retry_rate(connector), now, Duration::ZERO)
            .await?;
        Ok(matches!(admission, Admission::Go { .. }))
    }

    /// [`Pacer::wait_turn`] for a call in an endpoint class (`None`: the credential's only). A
    /// slot further away than the in-function wait but within `horizon` is reserved and returned
    /// as [`Pace::Reserved`] (one write either way).
    pub(crate) async fn wait_turn_in(
        &self,
        connector: &str,
        credential: &str,
        class: Option<&str>,
        horizon: Duration,
    ) -> Result<Pace, StoreError> {
        let now = now_us();
        let horizon = horizon.max(IN_FUNCTION_WAIT);
        match self
            .reserve(connector, credential, class, now, horizon)
            .await?
        {
            Admission::Go { at_us } if at_us > now + IN_FUNCTION_WAIT.as_micros() as i64 => {
                Ok(Pace::Reserved { at_us })
            }
            Admission::Go { at_us } => {
                if at_us > now {
                    tokio::time::sleep(Duration::from_micros((at_us - now) as u64)).await;
                }
                Ok(Pace::Go)
            }
            Admission::Wait { retry_after } => Ok(Pace::Defer(retry_after)),
        }
    }

    /// A successful answer's rate headers asked for calls `spacing` apart
    /// ([`crate::connectors::wait::budget_hint`]). Slower than the configured pace (spent until
    /// its reset, or shared with another integration), it holds every worker for that long; at
    /// or under the pace it changes nothing and costs no write.
    pub async fn learn(
        &self,
        connector: &str,
        credential: &str,
        spacing: Option<Duration>,
    ) -> Result<(), StoreError> {
        let pace_us = self.limits.pace(connector).interval_us();
        if let Some(hold) = spacing.filter(|s| s.as_micros() as i64 > pace_us) {
            self.rate_limited(connector, credential, Some(hold)).await?;
        }
        Ok(())
    }

    /// The vendor said "slow down": hold the whole budget for its wait (or the default).
    pub async fn rate_limited(
        &self,
        connector: &str,
        credential: &str,
        retry_after: Option<Duration>,
    ) -> Result<Duration, StoreError> {
        let wait = retry_after.unwrap_or(DEFAULT_COOLDOWN);
        let until = now_us() + wait.as_micros() as i64;
        self.limiter
            .hold_until(&budget_key(connector, credential), until)
            .await?;
        Ok(wait)
    }
}

/// Delays between the in-function retries of a transient failure: exponential (200 ms, 400 ms,
/// capped at 2 s; two retries) with **full jitter** — each delay uniform in [0, step] — so
/// workers that failed together do not retry together. `random` yields numbers in [0, 1).
pub(crate) fn transient_backoff(mut random: impl FnMut() -> f64) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(2)
        .build()
        // Whole milliseconds: backon's float factor leaves a few nanoseconds of noise.
        .map(move |step| {
            Duration::from_millis(step.as_millis() as u64).mul_f64(random().clamp(0.0, 1.0))
        })
}

/// A uniform number in [0, 1) from the OS's randomness (via a v4 UUID).
pub(crate) fn unit_random() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Up to 10 % extra (at most 1 s), so deferred work does not come back in one wave.
pub(crate) fn with_jitter(wait: Duration) -> Duration {
    let spread = (wait / 10).min(Duration::from_secs(1)).as_micros() as u64;
    if spread == 0 {
        return wait;
    }
    let r = (uuid::Uuid::new_v4().as_u128() % u128::from(spread)) as u64;
    wait + Duration::from_micros(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documented limits as the vendor registry gives them: Jira's pace, HubSpot's daily cap.
    #[derive(Debug)]
    struct Docs;

    impl Documented for Docs {
        fn windows(&self, connector: &str) -> Option<Vec<Rate>> {
            let day = Duration::from_secs(86_400);
            match connector {
                "jira" => Some(vec![Rate::per_minute(100)]),
                "hubspot" => Some(vec![
                    Rate {
                        count: 100,
                        period: Duration::from_secs(10),
                        burst: 1,
                    },
                    Rate::ceiling(250_000, day),
                ]),
                _ => None,
            }
        }
        fn class_rate(&self, _: &str, _: &str) -> Option<Rate> {
            None
        }
        fn concurrency(&self, _: &str) -> Option<u32> {
            None
        }
    }

    static DOCS: Docs = Docs;

    #[test]
    fn limits_parse_and_name_their_errors() {
        let l = Limits::parse("zendesk=700/minute, hubspot=190/10s,slack=1/s")
            .unwrap()
            .with_documented(&DOCS);
        assert_eq!(l.rate("zendesk"), Rate::per_minute(700));
        assert_eq!(l.rate("hubspot").period, Duration::from_secs(10));
        assert_eq!(l.rate("slack").count, 1);
        assert_eq!(l.rate("jira"), Rate::per_minute(100));
        // Each refusal names the part at fault.
        assert_eq!(
            Limits::parse("zendesk=fast").unwrap_err(),
            InvalidRate::NotCountPerPeriod("fast".into())
        );
        assert_eq!(
            Limits::parse("zendesk=0/min").unwrap_err(),
            InvalidRate::NotPositive("0".into())
        );
        assert_eq!(
            Limits::parse("zendesk=5/fortnight").unwrap_err(),
            InvalidRate::UnknownPeriod("fortnight".into())
        );
        assert_eq!(
            Limits::parse("zendesk").unwrap_err().to_string(),
            "\"zendesk\" is not connector=N/period"
        );
    }

    #[test]
    fn longer_windows_are_ceilings_beside_the_pace() {
        let day = Duration::from_secs(86_400);
        // HubSpot's documented daily cap comes by default; Zendesk has none; nothing
        // documented is a conservative 60 a minute.
        let defaults = Limits::default().with_documented(&DOCS);
        assert_eq!(defaults.rate("zendesk"), Rate::per_minute(60));
        assert_eq!(Limits::default().rate("hubspot"), Rate::per_minute(60));
        assert_eq!(defaults.ceilings("hubspot"), [Rate::ceiling(250_000, day)]);
        assert!(defaults.ceilings("zendesk").is_empty());
        // An override replaces pace and ceilings alike.
        let l = Limits::parse("hubspot=190/10s+650000/day,jira=100/min+5000/h+60000/d").unwrap();
        assert_eq!(l.rate("hubspot").count, 190);
        assert_eq!(l.ceilings("hubspot"), [Rate::ceiling(650_000, day)]);
        assert_eq!(l.ceilings("jira").len(), 2);
        assert!(Limits::parse("hubspot=100/10s")
            .unwrap()
            .ceilings("hubspot")
            .is_empty());
        // In one minute HubSpot's pace binds (with its headroom); over a day its cap does.
        let minute = defaults.capacity("hubspot", Duration::from_secs(60));
        assert!(
            (minute - 600.0 / (1.0 + gcra::PACE_HEADROOM)).abs() < 1.0,
            "{minute}"
        );
        let whole_day = defaults.capacity("hubspot", day);
        assert!((240_000.0..=250_000.0).contains(&whole_day), "{whole_day}");
        let e = Limits::parse("zendesk=700/min+10/s").unwrap_err();
        assert_eq!(
            e.to_string(),
            "zendesk: a window after '+' must be longer than 60s"
        );
        assert_eq!(
            Limits::parse("zendesk=700/min+/day").unwrap_err(),
            InvalidRate::NotPositive("".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn transient_retries_wait_within_their_full_jitter_bounds() {
        // The extremes of the jitter: no wait at all, and the whole step.
        let none: Vec<Duration> = transient_backoff(|| 0.0).collect();
        assert_eq!(none, [Duration::ZERO, Duration::ZERO]);
        let full: Vec<Duration> = transient_backoff(|| 1.0).collect();
        assert_eq!(
            full,
            [Duration::from_millis(200), Duration::from_millis(400)]
        );
        // With paused time the retries of one action take exactly their delays.
        let mut values = [0.5, 0.25].into_iter();
        let delays: Vec<Duration> = transient_backoff(|| values.next().unwrap()).collect();
        let started = tokio::time::Instant::now();
        for d in &delays {
            tokio::time::sleep(*d).await;
        }
        assert_eq!(started.elapsed(), Duration::from_millis(100 + 100));
        for _ in 0..1000 {
            let r = unit_random();
            assert!((0.0..1.0).contains(&r), "{r}");
        }
    }

    #[test]
    fn jitter_adds_at_most_a_tenth() {
        for _ in 0..100 {
            let j = with_jitter(Duration::from_secs(5));
            assert!(j >= Duration::from_secs(5) && j <= Duration::from_millis(5_500));
        }
        assert_eq!(with_jitter(Duration::ZERO), Duration::ZERO);
    }
}
