//! A rate limiter shared by every concurrent worker: GCRA (the generic cell rate algorithm) with
//! its one number of state — the theoretical arrival time (TAT) of the budget's next free slot —
//! in a DynamoDB item, advanced by conditional `UpdateItem`.
//!
//! `acquire` *reserves* a slot: under load one round trip (`SET tat = tat + interval` if
//! `now <= tat <= now + tolerance + max_wait`) tells the worker exactly when its call may go, so
//! workers never poll and never collide. After an idle spell a second write restarts the clock
//! at `now`. TAT only ever moves forward and every admission moves it by one interval, so no
//! interleaving of workers can admit more than the rate (plus the burst). A worker whose clock
//! runs `s` ahead can admit early by at most `s` once; Lambda clocks are NTP-disciplined to
//! milliseconds, and `hold_until` (a vendor's 429) pushes every worker back whatever its clock.

use crate::aws::{Store, StoreError};
use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

/// How much slower than a documented limit workers pace: slots are reserved at the limit's
/// exact spacing, but calls reach the vendor a little early or late (network, a slow worker),
/// and two calls a whole window apart must not land in one vendor window. 2 % of a minute
/// absorbs 1.2 s of such variation; a pace at exactly the limit meets a 429 now and then once
/// the vendor's window wraps.
pub(crate) const PACE_HEADROOM: f64 = 0.02;

/// A budget: `count` calls per `period`, at most `burst` at once (1 = evenly spaced).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed per `period`.
    pub count: u32,
    /// The window `count` calls are spread over.
    pub period: Duration,
    /// Calls that may go at once from an idle budget; 1 spaces every call evenly.
    pub burst: u32,
}

impl Rate {
    /// `count` calls a minute, evenly spaced (a burst of 1).
    pub fn per_minute(count: u32) -> Self {
        Rate {
            count,
            period: Duration::from_secs(60),
            burst: 1,
        }
    }

    /// The same budget stretched by [`PACE_HEADROOM`]: what workers actually pace to.
    pub(crate) fn with_headroom(self) -> Self {
        Rate {
            period: self.period.mul_f64(1.0 + PACE_HEADROOM),
            ..self
        }
    }

    /// A cap of `count` calls in any trailing `period`, allowing bursts: GCRA admits at most
    /// `period / interval + burst` calls in any window of `period`, so a burst of `b` (a 24th
    /// of the count) is paid for by spacing the rest over `count - b`. Sustained, that is
    /// about 96 % of the count; never more than the count in any trailing window.
    pub fn ceiling(count: u32, period: Duration) -> Self {
        if count <= 1 {
            // One call per period: spaced two periods apart, since GCRA's window is closed.
            return Rate {
                count: 1,
                period: period * 2,
                burst: 1,
            };
        }
        let burst = (count / 24).clamp(1, count - 1);
        Rate {
            count: count - burst,
            period,
            burst,
        }
    }

    /// Calls admitted within `window` starting from an idle budget.
    pub(crate) fn admits_within(&self, window: Duration) -> f64 {
        f64::from(self.burst.max(1) - 1) + window.as_micros() as f64 / self.interval_us() as f64
    }

    /// Time between slots, in microseconds, rounded up (rounding down would over-admit).
    pub fn interval_us(&self) -> i64 {
        let period = self.period.as_micros() as i64;
        let count = i64::from(self.count.max(1));
        (period + count - 1) / count
    }

    fn tolerance_us(&self) -> i64 {
        self.interval_us() * i64::from(self.burst.max(1) - 1)
    }
}

/// What the limiter decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The slot is reserved: call at this time (unix µs; may be now).
    Go {
        /// When the call may start, in unix microseconds.
        at_us: i64,
    },
    /// No slot within `max_wait`: try again after this long.
    Wait {
        /// How long to wait before asking again.
        retry_after: Duration,
    },
}

/// The pacing table's error for `message`.
pub(crate) fn pacing_error(message: String) -> StoreError {
    StoreError::new(Store::Pacing, message)
}

/// The shared budgets: GCRA state, one DynamoDB item per budget key, in the pacing table.
#[derive(Clone, Debug)]
pub struct Limiter {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    /// The last `tat` seen per budget key, shared by clones: which write to try first.
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

impl Limiter {
    /// A limiter whose budgets are items in `table` (the pacing table).
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
            seen: Default::default(),
        }
    }

    /// Concurrency caps kept in the same table.
    pub fn concurrency(&self) -> super::Concurrency {
        super::Concurrency::new(self.ddb.clone(), &self.table)
    }

    /// Reserve the next slot of `key`'s budget if it comes within `max_wait` of `now_us`.
    ///
    /// Two conditional writes can take a slot: the busy one (`tat` advances by an interval) and
    /// the idle one (the clock restarts at now). DynamoDB bills a write whose condition fails, so
    /// the one tried first is the one this process last saw fit: after an idle spell, the idle
    /// write first — one write instead of two for traffic slower than the budget's pace. A wrong
    /// guess costs one extra write; both writes stay conditional, so the guess never changes who
    /// gets a slot.
    pub async fn acquire(
        &self,
        key: &str,
        rate: Rate,
        now_us: i64,
        max_wait: Duration,
    ) -> Result<Admission, StoreError> {
        let interval = rate.interval_us();
        let tolerance = rate.tolerance_us();
        let hi = now_us + tolerance + max_wait.as_micros() as i64;
        let mut try_idle = self.seen_before(key, now_us);
        for _ in 0..8 {
            if try_idle {
                let idle = self
                    .ddb
                    .update_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(key.to_owned()))
                    .update_expression("SET tat = :next, expiration = :exp")
                    .condition_expression("attribute_not_exists(tat) OR tat < :now")
                    .expression_attribute_values(":next", n(now_us + interval))
                    .expression_attribute_values(":now", n(now_us))
                    .expression_attribute_values(":exp", n(expiry(now_us, rate)))
                    .send()
                    .await;
                match idle {
                    Ok(_) => {
                        self.remember(key, now_us + interval);
                        return Ok(Admission::Go { at_us: now_us });
                    }
                    // Busy after all (or another worker restarted it first): take the next slot.
                    Err(e) if conditional(&e) => try_idle = false,
                    Err(e) => return Err(pacing_error(crate::aws::error_message(&e))),
                }
            }
            // Busy budget: take the next slot.
            let busy = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .key("id", AttributeValue::S(key.to_owned()))
                .update_expression("SET tat = tat + :i, expiration = :exp")
                .condition_expression("tat BETWEEN :now AND :hi")
                .expression_attribute_values(":i", n(interval))
                .expression_attribute_values(":now", n(now_us))
                .expression_attribute_values(":hi", n(hi))
                .expression_attribute_values(":exp", n(expiry(now_us, rate)))
                .return_values(ReturnValue::UpdatedNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old_tat = match busy {
                Ok(out) => {
                    let new_tat = out
                        .attributes
                        .as_ref()
                        .and_then(|a| a.get("tat"))
                        .and_then(num)
                        .ok_or_else(|| pacing_error("update returned no tat".into()))?;
                    self.remember(key, new_tat);
                    let old = new_tat - interval;
                    return Ok(Admission::Go {
                        at_us: (old - tolerance).max(now_us),
                    });
                }
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                        match c.item.as_ref().and_then(|i| i.get("tat")).and_then(num) {
                            Some(t) => Some(t),
                            None if c.item.is_some() => None,
                            // Emulators that do not return the old item: read it.
                            None => self.tat(key).await?,
                        }
                    }
                    _ => return Err(pacing_error(crate::aws::error_message(&e))),
                },
            };
            if let Some(t) = old_tat {
                self.remember(key, t);
            }
            match old_tat {
                Some(t) if t > hi => {
                    return Ok(Admission::Wait {
                        retry_after: Duration::from_micros((t - tolerance - now_us).max(0) as u64),
                    })
                }
                // Another worker moved TAT between our reads; go round again.
                Some(t) if t >= now_us => continue,
                // Idle budget (or a new one): restart the clock at now.
                _ => try_idle = true,
            }
        }
        // Heavy contention: let the caller come back shortly rather than spin.
        Ok(Admission::Wait {
            retry_after: Duration::from_micros(interval as u64),
        })
    }

    /// Whether this process last saw `key`'s budget idle by `now_us` (its next free slot passed).
    fn seen_before(&self, key: &str, now_us: i64) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(key).is_some_and(|tat| *tat < now_us)
    }

    fn remember(&self, key: &str, tat: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Budget keys are few (connector, credential, endpoint class); a bound keeps it so.
        if seen.len() >= 4_096 {
            seen.clear();
        }
        seen.insert(key.to_owned(), tat);
    }

    /// Nobody gets a slot before `until_us` (a vendor's 429 or `Retry-After`, remaining = 0).
    pub async fn hold_until(&self, key: &str, until_us: i64) -> Result<(), StoreError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .update_expression("SET tat = :until, expiration = :exp")
            .condition_expression("attribute_not_exists(tat) OR tat < :until")
            .expression_attribute_values(":until", n(until_us))
            .expression_attribute_values(":exp", n(until_us / 1_000_000 + 3_600))
            .send()
            .await;
        match out {
            // A conditional failure means it is already held as long or longer.
            Ok(_) => Ok(()),
            Err(e) if conditional(&e) => Ok(()),
            Err(e) => Err(pacing_error(crate::aws::error_message(&e))),
        }
    }

    /// The budget's next free slot (unix µs), if it has been used.
    pub async fn tat(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| pacing_error(crate::aws::error_message(&e)))?;
        Ok(out.item.as_ref().and_then(|i| i.get("tat")).and_then(num))
    }
}

fn conditional<R>(e: &aws_sdk_dynamodb::error::SdkError<UpdateItemError, R>) -> bool {
    matches!(
        e.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn num(v: &AttributeValue) -> Option<i64> {
    v.as_n().ok()?.parse().ok()
}

/// Budgets idle for a day vanish (TTL); state older than a period is meaningless anyway.
fn expiry(now_us: i64, rate: Rate) -> i64 {
    now_us / 1_000_000 + rate.period.as_secs().max(86_400) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up() {
        assert_eq!(Rate::per_minute(600).interval_us(), 100_000);
        assert_eq!(Rate::per_minute(7).interval_us(), 8_571_429);
        let burst = Rate {
            count: 10,
            period: Duration::from_secs(1),
            burst: 5,
        };
        assert_eq!(burst.tolerance_us(), 400_000);
    }

    /// Admission times when calls come as fast as GCRA lets them (the densest schedule).
    fn greediest(rate: Rate, calls: usize) -> Vec<i64> {
        let (interval, tolerance) = (rate.interval_us(), rate.tolerance_us());
        let mut tat = 0_i64;
        (0..calls)
            .map(|_| {
                let at = (tat - tolerance).max(0);
                tat = tat.max(at) + interval;
                at
            })
            .collect()
    }

    #[test]
    fn a_ceiling_never_admits_more_than_its_count_in_any_trailing_window() {
        let day = Duration::from_secs(86_400);
        for count in [1, 2, 3, 23, 24, 25, 100, 1_000, 250_000] {
            let rate = Rate::ceiling(count, day);
            let at = greediest(rate, 3 * count as usize + 3);
            // The most calls in any closed window [a, a + day].
            let period = day.as_micros() as i64;
            let mut most = 0;
            let mut j = 0;
            for i in 0..at.len() {
                while j < at.len() && at[j] <= at[i] + period {
                    j += 1;
                }
                most = most.max(j - i);
            }
            assert!(most <= count as usize, "{count}: {most} in one window");
            // And it is a useful ceiling: most of the count, with a burst up front.
            if count >= 24 {
                assert!(most as f64 >= 0.95 * f64::from(count), "{count}: {most}");
                assert!(at[(count / 24) as usize - 1] == 0, "{count}: no burst");
            }
        }
    }
}
