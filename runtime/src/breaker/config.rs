//! A breaker's trip rules and timings, validated.

use std::time::Duration;

use telemark_limits::{MAX_HALF_OPEN_CALLS, MAX_WINDOW};

use super::error::BreakerConfigError;

/// How a circuit breaker decides to open and when it tries again.
///
/// The defaults open after 5 failures in a row, stay open for 30 seconds,
/// then admit one trial call. Rate rules look at a sliding window of the
/// last `window` calls once at least `min_calls` of them are recorded.
///
/// ```
/// use std::time::Duration;
/// use telemark_runtime::breaker::BreakerConfig;
///
/// let config = BreakerConfig::new()
///     .consecutive_failures(0) // only the rate rule below
///     .failure_rate(50)
///     .window(100)
///     .min_calls(20)
///     .open_for(Duration::from_secs(10))
///     .open_for_max(Duration::from_secs(160))
///     .half_open_calls(3);
/// assert!(config.validate().is_ok());
/// assert!(BreakerConfig::new().failure_rate(101).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub(crate) consecutive_failures: u32,
    pub(crate) failure_rate: u8,
    pub(crate) slow_call_nanos: u64,
    pub(crate) slow_call_rate: u8,
    pub(crate) window: u32,
    pub(crate) min_calls: u32,
    pub(crate) open_nanos: u64,
    pub(crate) open_max_nanos: u64,
    pub(crate) half_open_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::new()
    }
}

const fn nanos(duration: Duration) -> u64 {
    let nanos = duration.as_nanos();
    if nanos > u64::MAX as u128 {
        u64::MAX
    } else {
        nanos as u64
    }
}

impl BreakerConfig {
    /// The defaults (see the type's documentation).
    pub const fn new() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            failure_rate: 0,
            slow_call_nanos: 0,
            slow_call_rate: 0,
            window: 100,
            min_calls: 10,
            open_nanos: 30_000_000_000,
            open_max_nanos: 30_000_000_000,
            half_open_calls: 1,
        }
    }

    /// Opens after this many failures in a row; 0 turns the rule off.
    pub const fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = failures;
        self
    }

    /// Opens when at least this percentage of the window's calls failed;
    /// 0 (the default) turns the rule off.
    pub const fn failure_rate(mut self, percent: u8) -> Self {
        self.failure_rate = percent;
        self
    }

    /// Calls taking at least `threshold` are slow.
    pub const fn slow_call(mut self, threshold: Duration) -> Self {
        self.slow_call_nanos = nanos(threshold);
        self
    }

    /// Opens when at least this percentage of the window's calls were slow;
    /// needs [`BreakerConfig::slow_call`]. 0 (the default) turns it off.
    pub const fn slow_call_rate(mut self, percent: u8) -> Self {
        self.slow_call_rate = percent;
        self
    }

    /// The number of most recent calls the rate rules look at (default 100).
    pub const fn window(mut self, calls: u32) -> Self {
        self.window = calls;
        self
    }

    /// Rate rules wait for this many calls in the window (default 10).
    pub const fn min_calls(mut self, calls: u32) -> Self {
        self.min_calls = calls;
        self
    }

    /// How long the breaker stays open before admitting trials (default 30 s).
    /// Also the time half-open trials have to report before they are
    /// abandoned and new trials admitted.
    pub const fn open_for(mut self, duration: Duration) -> Self {
        let was_growing = self.open_max_nanos > self.open_nanos;
        self.open_nanos = nanos(duration);
        if !was_growing || self.open_max_nanos < self.open_nanos {
            self.open_max_nanos = self.open_nanos;
        }
        self
    }

    /// Lets the open duration double each time a half-open trial fails, up
    /// to `max`; it starts again from `open_for` once the breaker closes.
    pub const fn open_for_max(mut self, max: Duration) -> Self {
        self.open_max_nanos = nanos(max);
        self
    }

    /// How many trial calls half-open admits; all must succeed to close
    /// (default 1, at most 1000).
    pub const fn half_open_calls(mut self, calls: u32) -> Self {
        self.half_open_calls = calls;
        self
    }

    /// Checks that the rules make sense together.
    pub const fn validate(&self) -> Result<(), BreakerConfigError> {
        if self.failure_rate > 100 {
            return Err(BreakerConfigError::RateOutOfRange {
                rule: "failure_rate",
                percent: self.failure_rate,
            });
        }
        if self.slow_call_rate > 100 {
            return Err(BreakerConfigError::RateOutOfRange {
                rule: "slow_call_rate",
                percent: self.slow_call_rate,
            });
        }
        if self.slow_call_rate > 0 && self.slow_call_nanos == 0 {
            return Err(BreakerConfigError::SlowCallRateWithoutThreshold);
        }
        if self.consecutive_failures == 0 && self.failure_rate == 0 && self.slow_call_rate == 0 {
            return Err(BreakerConfigError::NoTripRule);
        }
        if self.uses_window() {
            if self.window == 0 || self.window > MAX_WINDOW {
                return Err(BreakerConfigError::WindowOutOfRange {
                    window: self.window,
                });
            }
            if self.min_calls == 0 || self.min_calls > self.window {
                return Err(BreakerConfigError::MinCallsOutOfRange {
                    min_calls: self.min_calls,
                    window: self.window,
                });
            }
        }
        if self.open_nanos == 0 {
            return Err(BreakerConfigError::ZeroOpenDuration);
        }
        if self.open_max_nanos < self.open_nanos {
            return Err(BreakerConfigError::OpenForMaxShorter);
        }
        if self.half_open_calls == 0 || self.half_open_calls > MAX_HALF_OPEN_CALLS {
            return Err(BreakerConfigError::HalfOpenCallsOutOfRange {
                calls: self.half_open_calls,
            });
        }
        Ok(())
    }

    /// [`validate`](Self::validate) for `const` contexts, where the error
    /// cannot be dropped: whether the configuration is valid.
    pub(crate) const fn is_valid(&self) -> bool {
        self.validate().is_ok()
    }

    /// The open duration.
    pub const fn open_duration(&self) -> Duration {
        Duration::from_nanos(self.open_nanos)
    }

    /// The slow-call threshold, if slow calls are tracked.
    pub const fn slow_call_threshold(&self) -> Option<Duration> {
        if self.slow_call_nanos == 0 {
            None
        } else {
            Some(Duration::from_nanos(self.slow_call_nanos))
        }
    }

    pub(crate) const fn uses_window(&self) -> bool {
        self.failure_rate > 0 || self.slow_call_rate > 0
    }

    pub(crate) const fn open_nanos(&self) -> u64 {
        self.open_nanos
    }

    /// The open duration after `reopens` failed half-open rounds.
    pub(crate) fn open_nanos_after(&self, reopens: u32) -> u64 {
        let grown = self
            .open_nanos
            .checked_shl(reopens.min(63))
            .filter(|grown| grown >> reopens.min(63) == self.open_nanos)
            .unwrap_or(u64::MAX);
        grown.min(self.open_max_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_duration_doubles_up_to_the_cap() {
        let config = BreakerConfig::new()
            .open_for(Duration::from_secs(1))
            .open_for_max(Duration::from_secs(5));
        let seconds: Vec<u64> = (0..5)
            .map(|reopens| config.open_nanos_after(reopens) / 1_000_000_000)
            .collect();
        assert_eq!(seconds, [1, 2, 4, 5, 5]);
        assert_eq!(config.open_nanos_after(200), 5_000_000_000);
        let fixed = BreakerConfig::new().open_for(Duration::from_secs(2));
        assert_eq!(fixed.open_nanos_after(3), 2_000_000_000);
    }

    #[test]
    fn setting_open_for_after_the_cap_keeps_the_cap() {
        let config = BreakerConfig::new()
            .open_for_max(Duration::from_secs(60))
            .open_for(Duration::from_secs(1));
        assert_eq!(config.open_max_nanos, 60_000_000_000);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn bad_combinations_are_refused_with_a_reason() {
        let cases = [
            (BreakerConfig::new().consecutive_failures(0), "no trip rule"),
            (BreakerConfig::new().slow_call_rate(50), "needs a slow_call"),
            (
                BreakerConfig::new().failure_rate(50).window(0),
                "window must be",
            ),
            (
                BreakerConfig::new().failure_rate(50).window(20_000),
                "window must be",
            ),
            (
                BreakerConfig::new()
                    .failure_rate(50)
                    .window(10)
                    .min_calls(11),
                "min_calls must be",
            ),
            (BreakerConfig::new().half_open_calls(0), "half_open_calls"),
            (
                BreakerConfig::new().half_open_calls(1001),
                "half_open_calls",
            ),
            (
                BreakerConfig::new().open_for(Duration::ZERO),
                "open_for must",
            ),
        ];
        for (config, reason) in cases {
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(reason), "{error:?} should say {reason:?}");
        }
        assert!(BreakerConfig::new().validate().is_ok());
    }
}
