//! A vendor's rate limit as the sandbox plays it: at most `limit` requests in any trailing
//! window (stricter than the fixed per-minute windows vendors usually count in, so a client that
//! passes here passes there), and switchable 429 storms.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Window {
    pub limit: u32,
    pub per: Duration,
    log: VecDeque<Instant>,
}

/// What the limiter says about one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed {
        remaining: u32,
    },
    /// Refused: the window frees a slot after this long.
    Limited {
        retry_after: Duration,
    },
}

impl Window {
    pub fn new(limit: u32, per: Duration) -> Self {
        Self {
            limit,
            per,
            log: VecDeque::new(),
        }
    }

    /// When the oldest request in the window leaves it (a slot frees).
    pub fn reset_after(&self, now: Instant) -> Duration {
        self.log
            .front()
            .map(|t| self.per.saturating_sub(now.duration_since(*t)))
            .unwrap_or_default()
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        while self
            .log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.per)
        {
            self.log.pop_front();
        }
        if self.log.len() < self.limit as usize {
            self.log.push_back(now);
            return Verdict::Allowed {
                remaining: self.limit - self.log.len() as u32,
            };
        }
        let oldest = *self.log.front().expect("full window is not empty");
        Verdict::Limited {
            retry_after: self.per.saturating_sub(now.duration_since(oldest)),
        }
    }
}

/// Per-vendor rate state: an optional limit, an optional storm, and what was refused.
#[derive(Debug, Default)]
pub struct Limits {
    pub window: Option<Window>,
    pub storm_until: Option<Instant>,
    pub refused: u64,
    pub allowed: u64,
}

impl Limits {
    pub fn check(&mut self, now: Instant) -> Verdict {
        let verdict = if self.storm_until.is_some_and(|until| now < until) {
            Verdict::Limited {
                retry_after: Duration::from_secs(1),
            }
        } else {
            match &mut self.window {
                Some(w) => w.check(now),
                None => Verdict::Allowed {
                    remaining: u32::MAX,
                },
            }
        };
        match verdict {
            Verdict::Allowed { .. } => self.allowed += 1,
            Verdict::Limited { .. } => self.refused += 1,
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_window_refuses_the_extra_request_and_says_when() {
        let t0 = Instant::now();
        let mut w = Window::new(2, Duration::from_secs(60));
        assert_eq!(w.check(t0), Verdict::Allowed { remaining: 1 });
        assert_eq!(
            w.check(t0 + Duration::from_secs(10)),
            Verdict::Allowed { remaining: 0 }
        );
        assert_eq!(
            w.check(t0 + Duration::from_secs(20)),
            Verdict::Limited {
                retry_after: Duration::from_secs(40)
            }
        );
        assert_eq!(
            w.check(t0 + Duration::from_secs(60)),
            Verdict::Allowed { remaining: 0 }
        );
    }
}
