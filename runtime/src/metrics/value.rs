//! Values a function sees, recorded by `#[histogram]` (a histogram of an
//! argument's or the returned value's size, count, …) and `#[gauge]` (the
//! last value seen).
//!
//! As with `#[counted]` and `#[timed]`, each function owns `static` cells:
//! a call converts its value to `f64`, finds its bucket among the bounds
//! the attribute gave and does relaxed atomic adds in its thread's shard;
//! a gauge stores the value. Families are rendered (at zero) before the
//! first call.

#![allow(missing_docs)] // the cells are hidden API for generated code

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};

use super::shard::{shard_index, SHARDS};
use super::site::cumulative;
use crate::switch::is_enabled;
use telemark_limits::MAX_BUCKETS;

/// A number `#[histogram]` and `#[gauge]` can record: the integer types,
/// `f32` and `f64` (and references to them), as an `f64`; an `Option` of
/// one, whose `None` is not recorded.
///
/// ```
/// use telemark_runtime::metrics::MetricValue;
///
/// assert_eq!(3usize.metric_value(), 3.0);
/// assert_eq!((-2i8).metric_value(), -2.0);
/// assert_eq!(0.5f32.metric_value(), 0.5);
/// assert!(None::<u32>.metric_value().is_nan()); // not recorded
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a number #[histogram] or #[gauge] can record",
    label = "a recorded value must be a number",
    note = "give `value =` an integer or a float, e.g. `value = request.len()` or \
            `value = |hits| hits.len()`"
)]
pub trait MetricValue {
    /// The value, as recorded.
    fn metric_value(&self) -> f64;
}

macro_rules! metric_values {
    ($($ty:ty),*) => {$(
        impl MetricValue for $ty {
            #[inline(always)]
            fn metric_value(&self) -> f64 {
                *self as f64
            }
        }
    )*};
}

metric_values!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);

/// `None` is not recorded (a NaN, which neither attribute records): e.g.
/// `value = |result| result.as_ref().ok().copied()` records successes only.
impl<T: MetricValue> MetricValue for Option<T> {
    #[inline(always)]
    fn metric_value(&self) -> f64 {
        match self {
            Some(value) => value.metric_value(),
            None => f64::NAN,
        }
    }
}

impl<T: MetricValue + ?Sized> MetricValue for &T {
    #[inline(always)]
    fn metric_value(&self) -> f64 {
        (**self).metric_value()
    }
}

/// `value` as recorded (generated code calls this on `value = expression`).
#[inline(always)]
pub fn metric_value<T: MetricValue + ?Sized>(value: &T) -> f64 {
    value.metric_value()
}

/// What `value` computes from the returned `returned`, as recorded.
#[inline(always)]
pub fn value_from<'a, T: ?Sized, V: MetricValue>(
    returned: &'a T,
    value: impl FnOnce(&'a T) -> V,
) -> f64 {
    value(returned).metric_value()
}

/// Slots per shard: finite buckets plus `+Inf`.
const SLOTS: usize = MAX_BUCKETS + 1;

#[repr(align(128))]
struct ValueShard {
    /// The sum of the values, as `f64` bits.
    sum: AtomicU64,
    /// Non-cumulative: slot i counts values in (bound[i-1], bound[i]].
    buckets: [AtomicU64; SLOTS],
}

/// Zero-initialised cells of one `#[histogram]` function.
pub struct ValueCells {
    shards: [ValueShard; SHARDS],
}

impl ValueCells {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ValueCells {
            shards: [const {
                ValueShard {
                    sum: AtomicU64::new(0),
                    buckets: [const { AtomicU64::new(0) }; SLOTS],
                }
            }; SHARDS],
        }
    }
}

/// A snapshot of one value histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSnapshot {
    /// Upper bounds (without `+Inf`).
    pub bounds: Vec<f64>,
    /// Cumulative counts per bound, then the `+Inf` count (= total count).
    pub cumulative: Vec<u64>,
    /// The sum of the values recorded.
    pub sum: f64,
}

impl ValueSnapshot {
    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }
}

/// The histogram of one `#[histogram]` function.
pub struct ValueHistogram {
    /// The family's name.
    pub metric: &'static str,
    /// Constant labels, validated at compile time.
    pub labels: &'static [(&'static str, &'static str)],
    /// The unit its name ends with, if the attribute gave one.
    pub unit: Option<&'static str>,
    bounds: &'static [f64],
    cells: &'static ValueCells,
}

impl ValueHistogram {
    /// `bounds`: sorted, finite, at most `MAX_BUCKETS` (validated by the
    /// macro; the count checked again here, failing the build).
    pub const fn new(
        metric: &'static str,
        labels: &'static [(&'static str, &'static str)],
        unit: Option<&'static str>,
        bounds: &'static [f64],
        cells: &'static ValueCells,
    ) -> Self {
        assert!(
            !bounds.is_empty() && bounds.len() <= MAX_BUCKETS,
            "#[histogram] takes 1 to MAX_BUCKETS bucket bounds"
        );
        ValueHistogram {
            metric,
            labels,
            unit,
            bounds,
            cells,
        }
    }

    /// Records one value, if instrumentation is switched on (a NaN or an
    /// infinity is not recorded: it would make the sum NaN or infinite for
    /// good).
    #[inline(always)]
    pub fn record(&self, value: f64) {
        if !is_enabled() || !value.is_finite() {
            return;
        }
        let slot = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        let shard = &self.cells.shards[shard_index()];
        shard.buckets[slot].fetch_add(1, Relaxed);
        // The thread's own shard: the exchange rarely retries.
        let _ = shard.sum.fetch_update(Relaxed, Relaxed, |bits| {
            Some((f64::from_bits(bits) + value).to_bits())
        });
    }

    /// The histogram as it stands now.
    pub fn snapshot(&self) -> ValueSnapshot {
        let mut per_slot = vec![0u64; self.bounds.len() + 1];
        let mut sum = 0.0;
        for shard in &self.cells.shards {
            sum += f64::from_bits(shard.sum.load(Relaxed));
            for (total, slot) in per_slot.iter_mut().zip(&shard.buckets) {
                *total += slot.load(Relaxed);
            }
        }
        ValueSnapshot {
            bounds: self.bounds.to_vec(),
            cumulative: cumulative(per_slot),
            sum,
        }
    }
}

/// The cell of one `#[gauge]` function: the last value, as `f64` bits,
/// and whether it was ever set.
pub struct GaugeCell {
    bits: AtomicU64,
    set: AtomicBool,
}

impl GaugeCell {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        GaugeCell {
            bits: AtomicU64::new(0),
            set: AtomicBool::new(false),
        }
    }
}

/// The gauge of one `#[gauge]` function: the last value seen.
pub struct Gauge {
    /// The family's name.
    pub metric: &'static str,
    /// Constant labels, validated at compile time.
    pub labels: &'static [(&'static str, &'static str)],
    /// The unit its name ends with, if the attribute gave one.
    pub unit: Option<&'static str>,
    cell: &'static GaugeCell,
}

impl Gauge {
    pub const fn new(
        metric: &'static str,
        labels: &'static [(&'static str, &'static str)],
        unit: Option<&'static str>,
        cell: &'static GaugeCell,
    ) -> Self {
        Gauge {
            metric,
            labels,
            unit,
            cell,
        }
    }

    /// Sets the gauge, if instrumentation is switched on (not to a NaN).
    #[inline(always)]
    pub fn record(&self, value: f64) {
        if is_enabled() && !value.is_nan() {
            self.cell.bits.store(value.to_bits(), Relaxed);
            if !self.cell.set.load(Relaxed) {
                self.cell.set.store(true, Relaxed);
            }
        }
    }

    /// The last value set, if any (rendered as 0 before the first).
    pub fn value(&self) -> Option<f64> {
        self.cell
            .set
            .load(Relaxed)
            .then(|| f64::from_bits(self.cell.bits.load(Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CELLS: ValueCells = ValueCells::new();
    static BOUNDS: [f64; 3] = [-1.0, 10.0, 100.0];
    static HISTOGRAM: ValueHistogram = ValueHistogram::new("sizes", &[], None, &BOUNDS, &CELLS);

    #[test]
    fn values_land_in_their_bucket_and_nan_is_not_recorded() {
        for value in [-5.0, -1.0, 0.0, 10.0, 10.5, 1e9, f64::NAN, f64::INFINITY] {
            HISTOGRAM.record(value);
        }
        let snapshot = HISTOGRAM.snapshot();
        assert_eq!(snapshot.cumulative, vec![2, 4, 5, 6]);
        assert_eq!(snapshot.sum, -5.0 - 1.0 + 10.0 + 10.5 + 1e9);
    }

    #[test]
    fn a_gauge_keeps_the_last_value() {
        static CELL: GaugeCell = GaugeCell::new();
        static GAUGE: Gauge = Gauge::new("depth", &[], None, &CELL);
        assert_eq!(GAUGE.value(), None);
        GAUGE.record(3.0);
        GAUGE.record(f64::NAN);
        GAUGE.record(-7.5);
        assert_eq!(GAUGE.value(), Some(-7.5));
    }
}
