//! Per-call-site statics and the guards generated code creates on each call.
//!
//! Everything here is `#[doc(hidden)]` API for generated code: a call site
//! owns a `static` site (names, labels) and a `static` block of zeroed cells,
//! so a call does no lookup, hashing or allocation: it reads the kill switch,
//! picks its thread's cell and does one or two relaxed atomic adds.

#![allow(missing_docs)] // hidden API for generated code

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::buckets::{default_bounds, default_bounds_for_recording, MAX_BUCKETS};
use super::shard::{shard_index, SHARDS};
use crate::clock::clock;
use crate::switch::is_enabled;

/// Where an instrumented function lives and how its series are named.
#[derive(Debug)]
pub struct SiteInfo {
    /// `function` label: `name` or `Type::name`.
    pub function: &'static str,
    /// `module` label: `module_path!()` of the function.
    pub module: &'static str,
    /// Source file of the function.
    pub file: &'static str,
    /// Source line of the function's name.
    pub line: u32,
    /// Metric name (family) the site's main series belong to.
    pub metric: &'static str,
    /// Extra constant labels, validated at compile time.
    pub labels: &'static [(&'static str, &'static str)],
}

#[repr(align(128))]
struct CounterShard {
    ok: AtomicU64,
    error: AtomicU64,
}

/// Zero-initialised cells of one `#[counted]` call site.
pub struct CounterCells {
    shards: [CounterShard; SHARDS],
}

impl CounterCells {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const ZERO: CounterShard = CounterShard {
            ok: AtomicU64::new(0),
            error: AtomicU64::new(0),
        };
        CounterCells {
            shards: [ZERO; SHARDS],
        }
    }
}

/// A `#[counted]` call site.
pub struct CountedSite {
    pub info: SiteInfo,
    cells: &'static CounterCells,
}

impl CountedSite {
    pub const fn new(info: SiteInfo, cells: &'static CounterCells) -> Self {
        CountedSite { info, cells }
    }

    /// Counts one finished call, if instrumentation is switched on.
    #[inline(always)]
    pub fn record(&self, is_error: bool) {
        if !is_enabled() {
            return;
        }
        let shard = &self.cells.shards[shard_index()];
        let cell = if is_error { &shard.error } else { &shard.ok };
        cell.fetch_add(1, Relaxed);
    }

    /// Calls counted so far: `(ok, error)`.
    pub fn counts(&self) -> (u64, u64) {
        self.cells.shards.iter().fold((0, 0), |(ok, error), shard| {
            (
                ok + shard.ok.load(Relaxed),
                error + shard.error.load(Relaxed),
            )
        })
    }
}

/// Counts a call when dropped: as an error unless [`CountedGuard::finish`]
/// classified the returned value first. A panic unwinding through the
/// function, or a cancelled future, therefore counts as `result="error"`.
pub struct CountedGuard {
    site: &'static CountedSite,
}

impl CountedGuard {
    #[inline(always)]
    pub fn new(site: &'static CountedSite) -> Self {
        CountedGuard { site }
    }

    /// Counts the call with the outcome decided from the returned value.
    #[inline(always)]
    pub fn finish(self, is_error: bool) {
        self.site.record(is_error);
        core::mem::forget(self);
    }
}

impl Drop for CountedGuard {
    #[inline]
    fn drop(&mut self) {
        self.site.record(true);
    }
}

/// Slots per timed shard: finite buckets plus `+Inf`.
const BUCKET_SLOTS: usize = MAX_BUCKETS + 1;

#[repr(align(128))]
struct TimedShard {
    in_flight: AtomicI64,
    sum_nanos: AtomicU64,
    // Non-cumulative: slot i counts durations in (bound[i-1], bound[i]].
    buckets: [AtomicU64; BUCKET_SLOTS],
}

/// Zero-initialised cells of one `#[timed]` call site.
pub struct TimedCells {
    shards: [TimedShard; SHARDS],
}

impl TimedCells {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const ZERO_SLOT: AtomicU64 = AtomicU64::new(0);
        #[allow(clippy::declare_interior_mutable_const)]
        const ZERO: TimedShard = TimedShard {
            in_flight: AtomicI64::new(0),
            sum_nanos: AtomicU64::new(0),
            buckets: [ZERO_SLOT; BUCKET_SLOTS],
        };
        TimedCells {
            shards: [ZERO; SHARDS],
        }
    }
}

/// A snapshot of one duration histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Upper bounds in nanoseconds (without `+Inf`).
    pub bounds_nanos: Vec<u64>,
    /// Cumulative counts per bound, then the `+Inf` count (= total count).
    pub cumulative: Vec<u64>,
    /// Sum of all recorded durations in nanoseconds.
    pub sum_nanos: u64,
}

impl HistogramSnapshot {
    /// Number of recorded calls.
    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }
}

/// A `#[timed]` call site.
pub struct TimedSite {
    pub info: SiteInfo,
    cells: &'static TimedCells,
    bounds: Option<&'static [u64]>,
}

impl TimedSite {
    /// `bounds`: this function's own bucket bounds in nanoseconds (validated
    /// by the macro, and checked again here: in a `static`'s initialiser,
    /// bounds the cells cannot hold fail the build), or `None` for the
    /// process-wide defaults.
    pub const fn new(
        info: SiteInfo,
        cells: &'static TimedCells,
        bounds: Option<&'static [u64]>,
    ) -> Self {
        if let Some(bounds) = bounds {
            assert!(
                telemark_limits::bucket_nanos_are_valid(bounds),
                "#[timed] bucket bounds outside telemark's limits"
            );
        }
        TimedSite {
            info,
            cells,
            bounds,
        }
    }

    /// The bounds to read the cells with.
    fn bounds(&self) -> &'static [u64] {
        match self.bounds {
            Some(own) => own,
            None => default_bounds(),
        }
    }

    #[inline(always)]
    fn observe(&self, nanos: u64) {
        let bounds = match self.bounds {
            Some(own) => own,
            None => default_bounds_for_recording(),
        };
        let slot = bounds
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(bounds.len());
        let shard = &self.cells.shards[shard_index()];
        shard.in_flight.fetch_sub(1, Relaxed);
        shard.sum_nanos.fetch_add(nanos, Relaxed);
        shard.buckets[slot].fetch_add(1, Relaxed);
    }

    /// Records one finished call of `nanos`, as a guard would.
    #[cfg(test)]
    pub(crate) fn record_for_test(&self, nanos: u64) {
        self.cells.shards[shard_index()]
            .in_flight
            .fetch_add(1, Relaxed);
        self.observe(nanos);
    }

    /// Calls currently running.
    pub fn in_flight(&self) -> i64 {
        self.cells
            .shards
            .iter()
            .map(|shard| shard.in_flight.load(Relaxed))
            .sum()
    }

    /// The histogram as it stands now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = self.bounds();
        let mut per_slot = vec![0u64; bounds.len() + 1];
        let mut sum_nanos = 0u64;
        for shard in &self.cells.shards {
            sum_nanos = sum_nanos.wrapping_add(shard.sum_nanos.load(Relaxed));
            for (total, slot) in per_slot.iter_mut().zip(&shard.buckets) {
                *total += slot.load(Relaxed);
            }
        }
        let mut running = 0;
        let cumulative = per_slot
            .into_iter()
            .map(|n| {
                running += n;
                running
            })
            .collect();
        HistogramSnapshot {
            bounds_nanos: bounds.to_vec(),
            cumulative,
            sum_nanos,
        }
    }
}

/// Times a call from creation to drop and tracks it as in flight meanwhile.
/// Dropping is the only way to finish it, so returns, `?`, panics and
/// cancelled futures are all timed and all leave the in-flight gauge.
pub struct TimedGuard {
    /// The site and start ticks of a recorded call; `None` (one null word)
    /// when instrumentation was off as the call started.
    active: Option<(&'static TimedSite, u64)>,
}

impl TimedGuard {
    #[inline(always)]
    pub fn new(site: &'static TimedSite) -> Self {
        if !is_enabled() {
            return TimedGuard { active: None };
        }
        site.cells.shards[shard_index()]
            .in_flight
            .fetch_add(1, Relaxed);
        TimedGuard {
            active: Some((site, clock().raw())),
        }
    }
}

impl Drop for TimedGuard {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some((site, start)) = self.active {
            let clock = clock();
            let nanos = clock.delta_as_nanos(start, clock.raw());
            site.observe(nanos);
        }
    }
}

/// Wraps a returned value so that method resolution can tell `Result`s from
/// everything else (see [`ClassifyResult`] and [`ClassifyOther`]).
pub struct Classify<'a, T>(pub &'a T);

/// Chosen for `Result<T, E>`: an `Err` is an error.
pub trait ClassifyResult {
    fn telemark_is_error(&self) -> bool;
}

impl<T, E> ClassifyResult for Classify<'_, Result<T, E>> {
    #[inline(always)]
    fn telemark_is_error(&self) -> bool {
        self.0.is_err()
    }
}

/// Chosen for every other type (one auto-ref further away): never an error.
pub trait ClassifyOther {
    fn telemark_is_error(&self) -> bool;
}

impl<T> ClassifyOther for &Classify<'_, T> {
    #[inline(always)]
    fn telemark_is_error(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The explicit borrow is what selects the impl (auto-ref specialisation).
    #[allow(clippy::needless_borrow)]
    fn results_are_classified_by_type() {
        let ok: Result<u8, ()> = Ok(1);
        let err: Result<u8, ()> = Err(());
        assert!(!(&Classify(&ok)).telemark_is_error());
        assert!((&Classify(&err)).telemark_is_error());
        assert!(!(&Classify(&42u32)).telemark_is_error());
        assert!(!(&Classify(&Some(()))).telemark_is_error());
    }

    static TEST_CELLS: TimedCells = TimedCells::new();
    static TEST_BOUNDS: [u64; 2] = [1_000, 1_000_000];
    static TEST_SITE: TimedSite = TimedSite::new(
        SiteInfo {
            function: "f",
            module: "m",
            file: "f.rs",
            line: 1,
            metric: "function_calls_duration_seconds",
            labels: &[],
        },
        &TEST_CELLS,
        Some(&TEST_BOUNDS),
    );

    #[test]
    fn observations_land_in_the_right_bucket() {
        for nanos in [0, 1_000, 1_001, 1_000_000, 5_000_000] {
            TEST_SITE.record_for_test(nanos);
        }
        let snap = TEST_SITE.snapshot();
        assert_eq!(snap.cumulative, vec![2, 4, 5]);
        assert_eq!(snap.sum_nanos, 1_000 + 1_001 + 1_000_000 + 5_000_000);
        assert_eq!(TEST_SITE.in_flight(), 0);
    }
}
