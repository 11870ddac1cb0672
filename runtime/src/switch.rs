//! The run-time kill switch.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns every telemark attribute on or off at run time.
///
/// When off, an instrumented call costs one relaxed atomic load (with the
/// `caller-labels` feature, plus keeping the thread's current function): nothing is
/// counted, timed, traced or tracked as in flight. `#[timed]` calls already
/// running when the switch flips finish the way they started, so in-flight
/// gauges stay exact; `#[counted]` reads the switch when a call finishes.
///
/// ```
/// telemark_runtime::set_enabled(false);
/// assert!(!telemark_runtime::is_enabled());
/// telemark_runtime::set_enabled(true);
/// ```
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether instrumentation is currently switched on (see [`set_enabled`]).
///
/// ```
/// assert!(telemark_runtime::is_enabled());
/// ```
#[inline(always)]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
