//! Per-connection rate limiting. Pure: every call takes the current `Instant`, so tests can
//! walk time forward without sleeping.

use std::time::{Duration, Instant};

/// A classic token bucket: holds up to `burst` tokens, refills at `per_sec` tokens a second,
/// and every message costs one. Bursts are allowed because joining a call sends a volley of
/// ICE candidates at once; the sustained rate is what stops a client from turning the server
/// into an amplifier.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket: a new connection may send its first burst straight away.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            capacity,
            per_sec: f64::from(per_sec),
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token if there is one. A refused message costs nothing, so a client that
    /// backs off recovers at the full refill rate.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, now: Instant) {
        // `saturating_duration_since` because Instants from different clocks reads can arrive
        // out of order; time never runs backwards for the bucket.
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if now > self.last {
            self.last = now;
        }
    }
}

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Drop the message. `tell` is true for at most one dropped message per
    /// [`RateLimiter::COMPLAINT_INTERVAL`], so a flood cannot make us flood errors back.
    Drop {
        tell: bool,
    },
}

/// A token bucket plus a throttle on the errors we send about it.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    bucket: TokenBucket,
    last_complaint: Option<Instant>,
}

impl RateLimiter {
    pub const COMPLAINT_INTERVAL: Duration = Duration::from_secs(1);

    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(per_sec, burst, now),
            last_complaint: None,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.bucket.try_take(now) {
            return Verdict::Allow;
        }
        let tell = self
            .last_complaint
            .is_none_or(|at| now.saturating_duration_since(at) >= Self::COMPLAINT_INTERVAL);
        if tell {
            self.last_complaint = Some(now);
        }
        Verdict::Drop { tell }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn allows_a_full_burst_then_refuses() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5, 10, t0);
        for i in 0..10 {
            assert!(bucket.try_take(t0), "token {i} of the burst was refused");
        }
        assert!(!bucket.try_take(t0));
    }

    #[test]
    fn refills_at_the_configured_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5, 10, t0);
        while bucket.try_take(t0) {}
        // 5 per second: one token every 200 ms.
        assert!(!bucket.try_take(t0 + ms(150)));
        assert!(bucket.try_take(t0 + ms(200)));
        assert!(!bucket.try_take(t0 + ms(210)));
        assert!(bucket.try_take(t0 + ms(400)));
    }

    #[test]
    fn never_holds_more_than_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5, 10, t0);
        let later = t0 + Duration::from_secs(3600);
        let taken = (0..100).filter(|_| bucket.try_take(later)).count();
        assert_eq!(taken, 10);
    }

    #[test]
    fn refused_messages_cost_nothing() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5, 10, t0);
        while bucket.try_take(t0) {}
        for _ in 0..1000 {
            assert!(!bucket.try_take(t0 + ms(100)));
        }
        assert!(bucket.try_take(t0 + ms(200)));
    }

    #[test]
    fn a_clock_reading_from_the_past_does_not_mint_tokens() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(5, 1, t0);
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0 - Duration::from_secs(5)));
        assert!(!bucket.try_take(t0 + ms(100)));
    }

    #[test]
    fn complains_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(1, 2, t0);
        assert_eq!(limiter.check(t0), Verdict::Allow);
        assert_eq!(limiter.check(t0), Verdict::Allow);
        assert_eq!(limiter.check(t0), Verdict::Drop { tell: true });
        assert_eq!(limiter.check(t0 + ms(100)), Verdict::Drop { tell: false });
        assert_eq!(limiter.check(t0 + ms(900)), Verdict::Drop { tell: false });
        // A token has come back by now; an allowed message does not use up the complaint.
        assert_eq!(limiter.check(t0 + ms(1100)), Verdict::Allow);
        assert_eq!(limiter.check(t0 + ms(1100)), Verdict::Drop { tell: true });
        assert_eq!(limiter.check(t0 + ms(1200)), Verdict::Drop { tell: false });
    }

    #[test]
    fn a_long_flood_gets_one_complaint_per_second() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(5, 10, t0);
        let mut allowed = 0;
        let mut told = 0;
        // 3 s of a message every millisecond.
        for step in 0..3000u64 {
            match limiter.check(t0 + ms(step)) {
                Verdict::Allow => allowed += 1,
                Verdict::Drop { tell: true } => told += 1,
                Verdict::Drop { tell: false } => {}
            }
        }
        // The burst of 10 plus about 5 a second refilled.
        assert!((24..=26).contains(&allowed), "allowed {allowed}");
        assert_eq!(told, 3);
    }
}
