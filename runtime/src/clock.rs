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
