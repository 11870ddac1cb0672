//! Per-call-site statics: a function's counter and histogram with their
//! cells.
//!
//! Everything here is `#[doc(hidden)]` API for generated code: a call site
//! owns `static` cells and a `static` [`MetricsSite`] naming them, so a call
//! does no lookup, hashing or allocation: it reads the kill switch, picks
//! its thread's cell and does one or two relaxed atomic adds.

#![allow(missing_docs)] // hidden API for generated code

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64};

use super::buckets::{default_bounds, default_bounds_for_recording, MAX_BUCKETS};
use super::exemplar::{Exemplar, ExemplarSlot};
use super::labels::{ComputedLabels, LabeledCounts};
use super::objective::{bounds_contain, Objective};
use super::shard::{shard_index, SHARDS};
use super::value::{Gauge, ValueHistogram};
use crate::active_span::{active, is_active};
use crate::caller::Caller;
use crate::clock::clock;
use crate::site::SiteInfo;
use crate::switch::is_enabled;

#[repr(align(128))]
struct CounterShard {
    ok: AtomicU64,
    error: AtomicU64,
}

/// Zero-initialised cells of one `#[counted]` call site.
pub struct CounterCells {
    shards: [CounterShard; SHARDS],
    /// Counts by caller (the `caller-labels` feature), allocated at the
    /// first call counted (never freed: one per call site).
    callers: AtomicPtr<CallerTable>,
    /// The last sampled call that returned ok, then the last that failed.
    exemplars: [ExemplarSlot; 2],
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
            callers: AtomicPtr::new(std::ptr::null_mut()),
            exemplars: [ExemplarSlot::new(), ExemplarSlot::new()],
        }
    }

    /// The caller table, allocated on first use.
    #[inline(always)]
    fn caller_table(&self) -> &CallerTable {
        match self.caller_table_if_any() {
            Some(table) => table,
            None => self.allocate_caller_table(),
        }
    }

    #[cold]
    #[inline(never)]
    fn allocate_caller_table(&self) -> &CallerTable {
        let fresh = Box::into_raw(Box::new(CallerTable::new()));
        match self
            .callers
            .compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire)
        {
            // SAFETY: `fresh` is a leaked box, now owned by the cells forever.
            Ok(_) => unsafe { &*fresh },
            Err(winner) => {
                // SAFETY: `fresh` was never shared; `winner` is the leaked box
                // another thread installed, never freed.
                unsafe {
                    drop(Box::from_raw(fresh));
                    &*winner
                }
            }
        }
    }

    #[inline(always)]
    fn caller_table_if_any(&self) -> Option<&CallerTable> {
        let table = self.callers.load(Acquire);
        // SAFETY: null, or a leaked box that is never freed.
        (!table.is_null()).then(|| unsafe { &*table })
    }
}

/// Most callers counted apart per function (with the `caller-labels`
/// feature); calls from more are counted under `caller_function="(other)"`.
pub const MAX_CALLERS: usize = 16;

/// Calls by result: `ok` and `error` counts (per caller slot, per
/// computed-labels series).
pub(crate) struct CallCounts {
    ok: AtomicU64,
    error: AtomicU64,
}

impl CallCounts {
    pub(crate) const fn new() -> Self {
        CallCounts {
            ok: AtomicU64::new(0),
            error: AtomicU64::new(0),
        }
    }

    #[inline(always)]
    pub(crate) fn add(&self, is_error: bool) {
        let cell = if is_error { &self.error } else { &self.ok };
        cell.fetch_add(1, Relaxed);
    }

    pub(crate) fn get(&self) -> (u64, u64) {
        (self.ok.load(Relaxed), self.error.load(Relaxed))
    }
}

struct CallerSlot {
    /// The caller's site, claimed once (null: free).
    caller: AtomicPtr<SiteInfo>,
    counts: CallCounts,
}

struct CallerTable {
    /// Calls with no instrumented caller.
    none: CallCounts,
    slots: [CallerSlot; MAX_CALLERS],
    /// Calls from callers beyond `MAX_CALLERS`.
    other: CallCounts,
}

impl CallerTable {
    fn new() -> Self {
        CallerTable {
            none: CallCounts::new(),
            slots: std::array::from_fn(|_| CallerSlot {
                caller: AtomicPtr::new(std::ptr::null_mut()),
                counts: CallCounts::new(),
            }),
            other: CallCounts::new(),
        }
    }

    /// The counts of calls from `caller`, claiming a slot for a new one.
    #[inline(always)]
    fn counts_for(&self, caller: Option<&'static SiteInfo>) -> &CallCounts {
        let Some(caller) = caller else {
            return &self.none;
        };
        let wanted = caller as *const SiteInfo as *mut SiteInfo;
        for slot in &self.slots {
            let held = slot.caller.load(Acquire);
            if held == wanted {
                return &slot.counts;
            }
            if held.is_null() {
                match slot
                    .caller
                    .compare_exchange(std::ptr::null_mut(), wanted, AcqRel, Acquire)
                {
                    Ok(_) => return &slot.counts,
                    Err(now) if now == wanted => return &slot.counts,
                    Err(_) => {}
                }
            }
        }
        &self.other
    }
}

/// One caller's counts, as rendered: `None` for calls with no instrumented
/// caller, `Some(None)` for callers beyond [`MAX_CALLERS`].
pub(crate) type CallerCountsSnapshot = Vec<(Option<Option<&'static SiteInfo>>, (u64, u64))>;

/// The call counter of one `#[counted]` function:
/// `function_calls_total{…, result}` (or the attribute's `name`).
pub struct Counter {
    /// Metric name (family).
    pub metric: &'static str,
    /// Constant labels, validated at compile time.
    pub labels: &'static [(&'static str, &'static str)],
    /// The objective whose success-rate target this counter carries.
    pub objective: Option<&'static Objective>,
    cells: &'static CounterCells,
    /// Labels computed on each call, which then counts in their cells
    /// instead of `cells`.
    pub(crate) computed: Option<ComputedLabels>,
}

impl Counter {
    /// `objective`: checked by [`check_counter_objective`] in generated code.
    pub const fn new(
        metric: &'static str,
        labels: &'static [(&'static str, &'static str)],
        objective: Option<&'static Objective>,
        cells: &'static CounterCells,
    ) -> Self {
        Counter {
            metric,
            labels,
            objective,
            cells,
            computed: None,
        }
    }

    /// `Some` counter whose calls count in `computed`'s cells, by the
    /// values of the labels named `names` (generated code records them
    /// through a [`LabeledCall`](super::labels::LabeledCall)).
    pub const fn some_labeled(
        metric: &'static str,
        labels: &'static [(&'static str, &'static str)],
        objective: Option<&'static Objective>,
        cells: &'static CounterCells,
        names: &'static [&'static str],
        computed: &'static dyn LabeledCounts,
    ) -> Option<Self> {
        Some(Counter {
            metric,
            labels,
            objective,
            cells,
            computed: Some(ComputedLabels {
                names,
                cells: computed,
            }),
        })
    }

    /// `Some(Counter::new(..))`, shorter in generated code.
    pub const fn some(
        metric: &'static str,
        labels: &'static [(&'static str, &'static str)],
        objective: Option<&'static Objective>,
        cells: &'static CounterCells,
    ) -> Option<Self> {
        Some(Self::new(metric, labels, objective, cells))
    }

    /// Counts one finished call, if instrumentation is switched on.
    #[inline(always)]
    pub fn record(&self, is_error: bool) {
        self.record_from(Caller::now(), is_error);
    }

    /// Counts one finished call made by `caller`, if instrumentation is
    /// switched on.
    #[inline(always)]
    pub(crate) fn record_from(&self, caller: Caller, is_error: bool) {
        if !is_enabled() {
            return;
        }
        if Caller::TRACKED {
            let table = self.cells.caller_table();
            table.counts_for(caller.caller()).add(is_error);
        } else {
            let shard = &self.cells.shards[shard_index()];
            let cell = if is_error { &shard.error } else { &shard.ok };
            cell.fetch_add(1, Relaxed);
        }
        if is_active() {
            self.keep_exemplar(caller, is_error);
        }
    }

    /// Keeps the call as its result's exemplar (a sampled span is active).
    #[cold]
    #[inline(never)]
    fn keep_exemplar(&self, caller: Caller, is_error: bool) {
        let Some(span) = active() else { return };
        let caller = caller
            .caller()
            .map_or(std::ptr::null(), |info| info as *const SiteInfo);
        self.cells.exemplars[usize::from(is_error)].write(span, 1, clock().raw(), caller);
    }

    /// The last sampled call counted as `ok` (`is_error` false) or as an
    /// error, if any.
    pub(crate) fn exemplar(&self, is_error: bool) -> Option<Exemplar> {
        self.cells.exemplars[usize::from(is_error)].read()
    }

    /// Calls counted so far, whoever the caller and whatever the computed
    /// labels: `(ok, error)`.
    pub fn counts(&self) -> (u64, u64) {
        let (mut ok, mut error) = self
            .counts_by_caller()
            .into_iter()
            .fold((0, 0), |(ok, error), (_, (o, e))| (ok + o, error + e));
        if let Some(computed) = &self.computed {
            let overflow = computed.cells.overflow();
            ok += overflow.0;
            error += overflow.1;
            computed.cells.for_each_series(&mut |_, (o, e)| {
                ok += o;
                error += e;
            });
        }
        (ok, error)
    }

    /// Calls counted so far by caller, `None` first (calls with no
    /// instrumented caller, and every call counted while callers were not
    /// tracked), then each caller in the order first seen, then
    /// `Some(None)` (callers beyond [`MAX_CALLERS`]) if any.
    pub(crate) fn counts_by_caller(&self) -> CallerCountsSnapshot {
        let mut untracked = self.cells.shards.iter().fold((0, 0), |(ok, error), shard| {
            (
                ok + shard.ok.load(Relaxed),
                error + shard.error.load(Relaxed),
            )
        });
        let Some(table) = self.cells.caller_table_if_any() else {
            return vec![(None, untracked)];
        };
        let (ok, error) = table.none.get();
        untracked.0 += ok;
        untracked.1 += error;
        let mut counts = vec![(None, untracked)];
        for slot in &table.slots {
            let caller = slot.caller.load(Acquire);
            if caller.is_null() {
                break;
            }
            // SAFETY: slots hold `&'static SiteInfo`s only.
            let caller: &'static SiteInfo = unsafe { &*caller };
            counts.push((Some(Some(caller)), slot.counts.get()));
        }
        let other = table.other.get();
        if other != (0, 0) {
            counts.push((Some(None), other));
        }
        counts
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
    /// The last sampled call per bucket slot.
    exemplars: [ExemplarSlot; BUCKET_SLOTS],
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
        #[allow(clippy::declare_interior_mutable_const)]
        const NO_EXEMPLAR: ExemplarSlot = ExemplarSlot::new();
        TimedCells {
            shards: [ZERO; SHARDS],
            exemplars: [NO_EXEMPLAR; BUCKET_SLOTS],
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

/// The duration histogram and in-flight gauge of one `#[timed]` function.
pub struct Histogram {
    /// Metric name (family) of the histogram.
    pub metric: &'static str,
    /// Constant labels, validated at compile time.
    pub labels: &'static [(&'static str, &'static str)],
    /// The objective whose latency target this histogram carries.
    pub objective: Option<&'static Objective>,
    cells: &'static TimedCells,
    bounds: Option<&'static [u64]>,
}

impl Histogram {
    /// `bounds`: this function's own bucket bounds in nanoseconds (validated
    /// by the macro, and checked again here: in a `static`'s initialiser,
    /// bounds the cells cannot hold fail the build), or `None` for the
    /// process-wide defaults. `objective`: checked by
    /// [`check_histogram_objective`] in generated code.
    pub const fn new(
        metric: &'static str,
        labels: &'static [(&'static str, &'static str)],
        bounds: Option<&'static [u64]>,
        objective: Option<&'static Objective>,
        cells: &'static TimedCells,
    ) -> Self {
        if let Some(bounds) = bounds {
            assert!(
                telemark_limits::bucket_nanos_are_valid(bounds),
                "#[timed] bucket bounds outside telemark's limits"
            );
        }
        Histogram {
            metric,
            labels,
            objective,
            cells,
            bounds,
        }
    }

    /// `Some(Histogram::new(..))`, shorter in generated code.
    pub const fn some(
        metric: &'static str,
        labels: &'static [(&'static str, &'static str)],
        bounds: Option<&'static [u64]>,
        objective: Option<&'static Objective>,
        cells: &'static TimedCells,
    ) -> Option<Self> {
        Some(Self::new(metric, labels, bounds, objective, cells))
    }

    /// Whether this histogram's bounds come from the process-wide defaults.
    pub(crate) fn uses_default_bounds(&self) -> bool {
        self.bounds.is_none()
    }

    /// The bounds to read the cells with.
    fn bounds(&self) -> &'static [u64] {
        match self.bounds {
            Some(own) => own,
            None => default_bounds(),
        }
    }

    /// A call starts: it is in flight until [`Histogram::end`]. Returns the
    /// start in clock ticks.
    #[inline(always)]
    pub(crate) fn begin(&self) -> u64 {
        self.cells.shards[shard_index()]
            .in_flight
            .fetch_add(1, Relaxed);
        clock().raw()
    }

    /// The call that began at `start` ends.
    #[inline(always)]
    pub(crate) fn end(&self, start: u64) {
        let clock = clock();
        let now = clock.raw();
        let nanos = clock.delta_as_nanos(start, now);
        self.observe(nanos, now);
    }

    #[inline(always)]
    fn observe(&self, nanos: u64, now: u64) {
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
        if is_active() {
            self.keep_exemplar(slot, nanos, now);
        }
    }

    /// Keeps the call as its bucket's exemplar (a sampled span is active).
    #[cold]
    #[inline(never)]
    fn keep_exemplar(&self, slot: usize, nanos: u64, now: u64) {
        if let Some(span) = active() {
            self.cells.exemplars[slot].write(span, nanos, now, std::ptr::null());
        }
    }

    /// The exemplars kept, one per bucket slot at most (each carries its
    /// duration, which places it in whatever bounds are rendered).
    pub(crate) fn exemplars(&self) -> impl Iterator<Item = Exemplar> + '_ {
        self.cells.exemplars.iter().filter_map(ExemplarSlot::read)
    }

    /// Records one finished call of `nanos`, as a guard would.
    #[cfg(test)]
    pub(crate) fn record_for_test(&self, nanos: u64) {
        self.cells.shards[shard_index()]
            .in_flight
            .fetch_add(1, Relaxed);
        self.observe(nanos, clock().raw());
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
        HistogramSnapshot {
            bounds_nanos: bounds.to_vec(),
            cumulative: cumulative(per_slot),
            sum_nanos,
        }
    }
}

/// Per-bucket counts made cumulative (each bound counts everything at or
/// below it), as Prometheus's `le` buckets are.
pub(crate) fn cumulative(per_slot: Vec<u64>) -> Vec<u64> {
    let mut running = 0;
    per_slot
        .into_iter()
        .map(|n| {
            running += n;
            running
        })
        .collect()
}

/// Fails the build (called in a `const` that generated code spans on the
/// attribute's `objective = ..`) when the objective has no success-rate
/// target for `#[counted]` to export.
pub const fn check_counter_objective(objective: &Objective) {
    assert!(
        objective.success_rate_target().is_some(),
        "#[counted] exports an objective's success-rate target, and this objective \
         has none: add `.success_rate(..)` to it, or attach it to #[timed] only"
    );
}

/// Fails the build (as [`check_counter_objective`]) when the objective has
/// no latency target for `#[timed]` to export, or when its threshold is not
/// one of `bounds` (the function's own, or the spec's defaults for `None`).
pub const fn check_histogram_objective(objective: &Objective, bounds: Option<&[u64]>) {
    let Some(latency) = objective.latency_target() else {
        panic!(
            "#[timed] exports an objective's latency target, and this objective has \
             none: add `.latency(..)` to it, or attach it to #[counted] only"
        );
    };
    let bounds: &[u64] = match bounds {
        Some(bounds) => bounds,
        None => &telemark_limits::DEFAULT_BUCKET_NANOS,
    };
    assert!(
        bounds_contain(bounds, latency.threshold_nanos),
        "the objective's latency threshold is not one of this function's bucket \
         bounds: Prometheus can only count the calls under a threshold that is a \
         bucket bound (add it to `buckets = [..]`)"
    );
}

/// The metrics of one instrumented function: its catalog entry.
pub struct MetricsSite {
    pub info: SiteInfo,
    pub counter: Option<Counter>,
    pub histogram: Option<Histogram>,
    /// `#[histogram]`'s.
    pub value_histogram: Option<&'static ValueHistogram>,
    /// `#[gauge]`'s.
    pub gauge: Option<&'static Gauge>,
}

/// Wraps a returned value so that method resolution tells `Result`s from
/// everything else, with no trait to import: `Classify(&value)` has an
/// inherent `telemark_is_error` for a `Result` (an `Err` is an error);
/// any other type reaches `NotAResult`'s through `Deref` (never an error).
pub struct Classify<'a, T>(pub &'a T);

impl<T, E> Classify<'_, Result<T, E>> {
    #[inline(always)]
    pub fn telemark_is_error(&self) -> bool {
        self.0.is_err()
    }
}

/// What a [`Classify`] of anything but a `Result` dereferences to.
pub struct NotAResult;

impl NotAResult {
    #[inline(always)]
    pub fn telemark_is_error(&self) -> bool {
        false
    }
}

impl<T> std::ops::Deref for Classify<'_, T> {
    type Target = NotAResult;

    #[inline(always)]
    fn deref(&self) -> &NotAResult {
        &NotAResult
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_classified_by_type() {
        let ok: Result<u8, ()> = Ok(1);
        let err: Result<u8, ()> = Err(());
        assert!(!Classify(&ok).telemark_is_error());
        assert!(Classify(&err).telemark_is_error());
        assert!(!Classify(&42u32).telemark_is_error());
        assert!(!Classify(&Some(())).telemark_is_error());
    }

    static TEST_CELLS: TimedCells = TimedCells::new();
    static TEST_BOUNDS: [u64; 2] = [1_000, 1_000_000];
    static TEST_HISTOGRAM: Histogram = Histogram::new(
        "function_calls_duration_seconds",
        &[],
        Some(&TEST_BOUNDS),
        None,
        &TEST_CELLS,
    );

    #[test]
    fn observations_land_in_the_right_bucket() {
        for nanos in [0, 1_000, 1_001, 1_000_000, 5_000_000] {
            TEST_HISTOGRAM.record_for_test(nanos);
        }
        let snap = TEST_HISTOGRAM.snapshot();
        assert_eq!(snap.cumulative, vec![2, 4, 5]);
        assert_eq!(snap.sum_nanos, 1_000 + 1_001 + 1_000_000 + 5_000_000);
        assert_eq!(TEST_HISTOGRAM.in_flight(), 0);
    }
}
