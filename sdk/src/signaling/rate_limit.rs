//! A token bucket: the per-connection message rate limit of the signaling server.

use std::time::Duration;

use tokio::time::Instant;

/// Allows `burst` messages at once and `per_second` messages per second on average.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f32,
    burst: f32,
    per_second: f32,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(burst: u32, per_second: u32, now: Instant) -> Self {
        let burst = burst.max(1) as f32;
        Self {
            tokens: burst,
            burst,
            per_second: per_second as f32,
            last: now,
        }
    }

    /// Take one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed: Duration = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f32() * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
}
