//! A token bucket: the rate limiter behind every per-client limit.

use std::time::Duration;

use tokio::time::Instant;

/// Holds up to `burst` tokens and gains `rate` tokens a second. Taking what is not there
/// fails and takes nothing, so a refused client is not punished further for the attempt.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self { rate: f64::from(rate), burst: f64::from(burst), tokens: f64::from(burst), updated: now }
    }

    /// Takes `cost` tokens if there are that many.
    pub fn try_take(&mut self, cost: u32, now: Instant) -> bool {
        self.refill(now);
        let cost = f64::from(cost);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Returns tokens taken for something that did not happen after all (never above
    /// the burst).
    pub fn give_back(&mut self, cost: u32) {
        self.tokens = (self.tokens + f64::from(cost)).min(self.burst);
    }

    /// How long until `cost` tokens are there (zero if they are now).
    pub fn wait_for(&mut self, cost: u32, now: Instant) -> Duration {
        self.refill(now);
        let missing = f64::from(cost) - self.tokens;
        if missing <= 0.0 || self.rate <= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(missing / self.rate) }
    }

    /// Whether the bucket is full: it then behaves exactly like a new one, so a table of
    /// buckets may forget it.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5, start);
        assert_eq!((0..8).filter(|_| bucket.try_take(1, start)).count(), 5, "the burst");
        assert!(!bucket.try_take(1, start));
        assert_eq!(bucket.wait_for(1, start), Duration::from_millis(100));
        let later = start + Duration::from_millis(350);
        assert_eq!((0..8).filter(|_| bucket.try_take(1, later)).count(), 3, "10 a second for 350 ms");
        let much_later = start + Duration::from_secs(60);
        assert!(bucket.is_full(much_later));
        assert_eq!((0..8).filter(|_| bucket.try_take(1, much_later)).count(), 5, "never above the burst");
    }

    #[test]
    fn a_refused_take_costs_nothing() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, 1000, start);
        assert!(bucket.try_take(600, start));
        assert!(!bucket.try_take(600, start), "400 left");
        assert!(bucket.try_take(400, start), "the refusal took nothing");
        assert!(!bucket.try_take(1001, start + Duration::from_secs(5)), "more than the burst never fits");
    }
}
