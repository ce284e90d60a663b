//! What one client may send: messages and bytes per second (token buckets), and how many
//! refusals it may earn before the gateway stops talking to it. A local of the
//! connection's read loop, so checking it takes no lock.

use std::time::Duration;

use tokio::time::Instant;

use super::TokenBucket;
use crate::config::LimitsConfig;

/// Which per-connection rate a message exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Messages,
    Bytes,
}

impl Limit {
    pub fn label(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::Bytes => "bytes",
        }
    }
}

/// What to do with a message a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Drop it and answer `rate_limited`.
    Refuse(Limit),
    /// Drop it, answer `rate_limited`, and close the connection (1008): the client kept
    /// sending although refused.
    Close(Limit),
}

pub struct InboundLimiter {
    messages: TokenBucket,
    bytes: TokenBucket,
    refusals_before_close: u32,
    refusal_window: Duration,
    /// Refusals in the current window, and when it ends.
    refusals: u32,
    window_ends: Instant,
}

impl InboundLimiter {
    pub fn new(config: &LimitsConfig, now: Instant) -> Self {
        Self {
            messages: TokenBucket::new(config.messages_per_second, config.message_burst, now),
            bytes: TokenBucket::new(config.bytes_per_second, config.byte_burst, now),
            refusals_before_close: config.refusals_before_close,
            refusal_window: config.refusal_window,
            refusals: 0,
            window_ends: now,
        }
    }

    /// Counts a message of `bytes` bytes against both rates. A refused message costs
    /// nothing, so a client that slows down is served again at once.
    pub fn check(&mut self, bytes: usize, now: Instant) -> Verdict {
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let exceeded = if !self.messages.try_take(1, now) {
            Limit::Messages
        } else if !self.bytes.try_take(bytes, now) {
            self.messages.give_back(1);
            Limit::Bytes
        } else {
            return Verdict::Accept;
        };
        if now >= self.window_ends {
            self.refusals = 0;
            self.window_ends = now + self.refusal_window;
        }
        self.refusals += 1;
        if self.refusals >= self.refusals_before_close { Verdict::Close(exceeded) } else { Verdict::Refuse(exceeded) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsConfig {
        LimitsConfig {
            messages_per_second: 10,
            message_burst: 20,
            bytes_per_second: 1000,
            byte_burst: 2000,
            refusals_before_close: 5,
            refusal_window: Duration::from_secs(10),
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn the_burst_passes_then_refusals_then_the_close() {
        let now = Instant::now();
        let mut limiter = InboundLimiter::new(&limits(), now);
        for _ in 0..20 {
            assert_eq!(limiter.check(10, now), Verdict::Accept);
        }
        for _ in 0..4 {
            assert_eq!(limiter.check(10, now), Verdict::Refuse(Limit::Messages));
        }
        assert_eq!(limiter.check(10, now), Verdict::Close(Limit::Messages), "the fifth refusal");
    }

    #[test]
    fn bytes_are_limited_apart_from_messages() {
        let now = Instant::now();
        let mut limiter = InboundLimiter::new(&limits(), now);
        assert_eq!(limiter.check(1500, now), Verdict::Accept);
        assert_eq!(limiter.check(1000, now), Verdict::Refuse(Limit::Bytes));
        assert_eq!(limiter.check(500, now), Verdict::Accept, "the refused message cost nothing");
        assert_eq!(limiter.check(1, now + Duration::from_millis(1)), Verdict::Accept, "1 byte a millisecond");
    }

    #[test]
    fn refusals_spread_over_windows_do_not_close() {
        let start = Instant::now();
        let mut limiter = InboundLimiter::new(&limits(), start);
        for _ in 0..20 {
            limiter.check(1, start);
        }
        for window in 0..5 {
            let now = start + Duration::from_secs(10 * window);
            // Drain what refilled since, then be refused four times: one short of closing.
            while limiter.check(1, now) == Verdict::Accept {}
            for _ in 0..3 {
                assert!(matches!(limiter.check(1, now), Verdict::Refuse(_)), "window {window}");
            }
        }
    }
}
