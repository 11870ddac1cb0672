//! The process clock every subsystem reads (a shared leaf: imports nothing
//! from the rest of the crate).
//!
//! Durations on the hot path are differences of raw TSC ticks from a
//! calibrated [`quanta::Clock`], converted to nanoseconds only when recorded.

use std::sync::OnceLock;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

/// The process's calibrated TSC clock (falls back to the OS monotonic clock
/// where the CPU has no usable TSC).
#[inline(always)]
pub fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Nanoseconds since the first call of this function in the process:
/// monotonic, for deadlines and elapsed times.
pub(crate) fn monotonic_nanos() -> u64 {
    static ORIGIN: OnceLock<quanta::Instant> = OnceLock::new();
    let now = clock().now();
    let origin = *ORIGIN.get_or_init(|| now);
    u64::try_from(now.duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds since the Unix epoch (0 before it, saturating far after).
pub(crate) fn unix_nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// Wall-clock times of raw clock ticks: the wall clock read once beside the
/// tick counter, and ticks converted from there (anchored afresh now and
/// then, so the two clocks drift apart by little).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    /// Nanoseconds since the Unix epoch at the anchor.
    wall_nanos: u64,
    ticks: u64,
}

impl WallClock {
    /// Anchored now.
    pub(crate) fn now() -> Self {
        WallClock {
            wall_nanos: unix_nanos(std::time::SystemTime::now()),
            ticks: clock().raw(),
        }
    }

    /// Nanoseconds since the Unix epoch at `ticks`: a difference of ticks
    /// scaled, with no calendar arithmetic.
    #[inline]
    pub(crate) fn unix_nanos(&self, ticks: u64) -> u64 {
        self.unix_nanos_with(clock(), ticks)
    }

    /// [`WallClock::unix_nanos`] of two tick counts (a span's start and
    /// end), with one look for the clock.
    #[cfg(feature = "otlp")]
    #[inline]
    pub(crate) fn unix_nanos_pair(&self, first: u64, second: u64) -> (u64, u64) {
        let clock = clock();
        (
            self.unix_nanos_with(clock, first),
            self.unix_nanos_with(clock, second),
        )
    }

    #[inline]
    fn unix_nanos_with(&self, clock: &quanta::Clock, ticks: u64) -> u64 {
        if ticks >= self.ticks {
            self.wall_nanos
                .saturating_add(clock.delta_as_nanos(self.ticks, ticks))
        } else {
            self.wall_nanos
                .saturating_sub(clock.delta_as_nanos(ticks, self.ticks))
        }
    }

    /// The wall-clock time at `ticks`.
    pub(crate) fn time(&self, ticks: u64) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.unix_nanos(ticks))
    }
}
