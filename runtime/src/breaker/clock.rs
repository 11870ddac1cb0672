//! Where breakers read the time: the process clock, or a clock a test moves.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Where a breaker reads the time.
///
/// The system clock is monotonic; a [`ManualClock`] moves only when a test
/// moves it, which makes every transition deterministic.
#[derive(Clone, Debug, Default)]
pub enum BreakerClock {
    /// The process's monotonic clock.
    #[default]
    System,
    /// A clock under the caller's control.
    Manual(ManualClock),
}

impl BreakerClock {
    /// Nanoseconds since an arbitrary origin.
    pub fn now_nanos(&self) -> u64 {
        match self {
            BreakerClock::System => crate::clock::monotonic_nanos(),
            BreakerClock::Manual(clock) => clock.now_nanos(),
        }
    }
}

/// A clock that stands still until advanced, for deterministic tests of
/// breaker timings.
///
/// ```
/// use std::time::Duration;
/// use telemark_runtime::breaker::ManualClock;
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now_nanos(), 1_500_000_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Relaxed);
    }

    /// The time in nanoseconds since the clock was made.
    pub fn now_nanos(&self) -> u64 {
        self.0.load(Relaxed)
    }
}
