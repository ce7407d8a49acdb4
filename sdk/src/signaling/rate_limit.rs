//! Rate limits of the signaling server: a token bucket (messages, joins and bytes
//! per connection) and a leaky counter (how hard a client keeps flooding).

use std::time::Duration;

use tokio::time::Instant;

/// Allows `burst` units at once and `per_second` units per second on average.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(burst: u32, per_second: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            burst,
            per_second: f64::from(per_second),
            last: now,
        }
    }

    /// A full bucket that refills at `per_minute` units per minute.
    pub(crate) fn per_minute(burst: u32, per_minute: u32, now: Instant) -> Self {
        Self {
            per_second: f64::from(per_minute) / 60.0,
            ..Self::new(burst, 0, now)
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed: Duration = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
    }

    /// Take one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Give back a token taken by [`try_take`](Self::try_take).
    pub(crate) fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// Whole tokens available now.
    pub(crate) fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens as u64
    }

    /// Take `n` tokens (call with at most [`available`](Self::available)).
    pub(crate) fn take(&mut self, n: u64) {
        self.tokens = (self.tokens - n as f64).max(0.0);
    }

    /// How long until `n` tokens (at most the burst) are available.
    pub(crate) fn time_until(&self, n: u64) -> Duration {
        let missing = (n as f64).min(self.burst) - self.tokens;
        if missing <= 0.0 {
            return Duration::ZERO;
        }
        if self.per_second <= 0.0 {
            // Never refills: look again in a second rather than spin.
            return Duration::from_secs(1);
        }
        Duration::from_secs_f64(missing / self.per_second)
    }
}

/// A level that rises by one per event and drains at `per_second`: how far a
/// client is over its rate, remembered across the messages that do get through.
#[derive(Debug, Clone)]
pub(crate) struct LeakyCounter {
    level: f64,
    per_second: f64,
    last: Instant,
}

impl LeakyCounter {
    pub(crate) fn new(per_second: u32, now: Instant) -> Self {
        Self {
            level: 0.0,
            per_second: f64::from(per_second),
            last: now,
        }
    }

    /// Count one event; returns the level after it.
    pub(crate) fn add(&mut self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.level = (self.level - elapsed * self.per_second).max(0.0) + 1.0;
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(3, 10, t0);
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0));
        // 10 per second: one token back after 100 ms, never more than the burst.
        assert!(bucket.try_take(t0 + Duration::from_millis(101)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(102)));
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.try_take(later)));
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn bytes_are_taken_in_bulk_and_waited_for() {
        let t0 = Instant::now();
        let mut bytes = TokenBucket::new(1000, 100, t0);
        assert_eq!(bytes.available(t0), 1000);
        bytes.take(1000);
        assert_eq!(bytes.available(t0), 0);
        assert_eq!(bytes.time_until(50), Duration::from_millis(500));
        assert_eq!(bytes.available(t0 + Duration::from_millis(500)), 50);
    }

    #[test]
    fn a_paced_flood_keeps_rising_a_burst_drains() {
        let t0 = Instant::now();
        // 50/s allowed; a flood of 1000/s rises by ~0.95 per message.
        let mut flood = LeakyCounter::new(50, t0);
        let mut level = 0.0;
        for i in 0..1000u64 {
            level = flood.add(t0 + Duration::from_millis(i));
        }
        assert!(level > 900.0, "{level}");
        // A one-off burst of 50 drains within a second.
        let mut burst = LeakyCounter::new(50, t0);
        for _ in 0..50 {
            burst.add(t0);
        }
        assert!(burst.add(t0 + Duration::from_secs(1)) <= 1.0);
    }
}
