//! Retry with exponential backoff and jitter.
//!
//! The delays are computed here rather than taken from a backoff crate:
//! generated code runs the retry loop inline (so the function's body can
//! keep borrowing its arguments), and only needs "the delay before retry
//! n", a pure function that tests pin exactly.

use std::time::Duration;

use telemark_limits::MAX_ATTEMPTS;

use super::error::RetryPolicyError;

/// How a retry delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential delay.
    None,
    /// Uniform between zero and the exponential delay ("full jitter").
    Full,
    /// Half the exponential delay plus up to the other half at random.
    Equal,
}

/// Up to `attempts` calls in all, waiting between them `min`, `2 × min`,
/// `4 × min`, … but never more than `max`, randomised by the jitter.
///
/// ```
/// use std::time::Duration;
/// use telemark_runtime::breaker::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::new(4, Duration::from_millis(100), Duration::from_millis(250), Jitter::None);
/// let delays: Vec<Duration> = (1..4).map(|retry| policy.ceiling(retry)).collect();
/// assert_eq!(delays, [100, 200, 250].map(Duration::from_millis));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    min_nanos: u64,
    max_nanos: u64,
    jitter: Jitter,
}

impl RetryPolicy {
    /// A policy; see [`RetryPolicy::validate`] for the limits.
    pub const fn new(attempts: u32, min: Duration, max: Duration, jitter: Jitter) -> Self {
        RetryPolicy {
            attempts,
            min_nanos: saturating_nanos(min),
            max_nanos: saturating_nanos(max),
            jitter,
        }
    }

    /// Checks the limits: 1 to [`MAX_ATTEMPTS`] attempts, `min` not longer
    /// than `max`.
    pub const fn validate(&self) -> Result<(), RetryPolicyError> {
        if self.attempts == 0 || self.attempts > MAX_ATTEMPTS {
            return Err(RetryPolicyError::AttemptsOutOfRange {
                attempts: self.attempts,
            });
        }
        if self.min_nanos > self.max_nanos {
            return Err(RetryPolicyError::BackoffInverted {
                min: Duration::from_nanos(self.min_nanos),
                max: Duration::from_nanos(self.max_nanos),
            });
        }
        Ok(())
    }

    /// Calls in all, the first included.
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The delay before retry `retry` (1 for the first retry) before jitter:
    /// `min × 2^(retry-1)`, capped at `max`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(63);
        let grown = self
            .min_nanos
            .checked_shl(doublings)
            .filter(|grown| grown >> doublings == self.min_nanos)
            .unwrap_or(u64::MAX);
        Duration::from_nanos(grown.min(self.max_nanos))
    }

    /// The delay before retry `retry`, with jitter drawn from `random`.
    pub fn delay(&self, retry: u32, random: u64) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        let uniform = |upto: u64| match upto.checked_add(1) {
            Some(range) => random % range,
            None => random,
        };
        Duration::from_nanos(match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => uniform(ceiling),
            Jitter::Equal => ceiling / 2 + uniform(ceiling - ceiling / 2),
        })
    }
}

const fn saturating_nanos(duration: Duration) -> u64 {
    let nanos = duration.as_nanos();
    if nanos > u64::MAX as u128 {
        u64::MAX
    } else {
        nanos as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn delays_double_from_min_and_stop_at_max() {
        let policy = RetryPolicy::new(10, millis(100), millis(2000), Jitter::None);
        let delays: Vec<u64> = (1..10)
            .map(|retry| policy.delay(retry, 12345).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000, 2000, 2000]);
        // Far beyond 64 doublings the cap still holds.
        assert_eq!(policy.ceiling(500), millis(2000));
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_ceiling() {
        let policy = RetryPolicy::new(5, millis(100), millis(1000), Jitter::Full);
        for retry in 1..5 {
            let ceiling = policy.ceiling(retry);
            let mut seen_low = false;
            let mut seen_high = false;
            for random in (0..10_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
                let delay = policy.delay(retry, random);
                assert!(delay <= ceiling);
                seen_low |= delay < ceiling / 4;
                seen_high |= delay > ceiling * 3 / 4;
            }
            assert!(seen_low && seen_high, "jitter should spread over the range");
        }
        assert_eq!(policy.delay(1, 0), Duration::ZERO);
        assert_eq!(policy.delay(1, 100_000_000), millis(100));
    }

    #[test]
    fn equal_jitter_keeps_at_least_half() {
        let policy = RetryPolicy::new(5, millis(100), millis(1000), Jitter::Equal);
        for random in (0..10_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
            let delay = policy.delay(3, random);
            assert!(delay >= millis(200) && delay <= millis(400), "{delay:?}");
        }
    }

    #[test]
    fn limits_are_checked() {
        let bad = [
            RetryPolicy::new(0, millis(1), millis(2), Jitter::Full),
            RetryPolicy::new(101, millis(1), millis(2), Jitter::Full),
            RetryPolicy::new(3, millis(5), millis(2), Jitter::Full),
        ];
        for policy in bad {
            assert!(policy.validate().is_err(), "{policy:?}");
        }
        assert!(RetryPolicy::new(1, millis(0), millis(0), Jitter::None)
            .validate()
            .is_ok());
    }
}
