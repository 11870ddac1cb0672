//! Labels whose values are computed on each call: from the function's
//! arguments (`#[counted(labels(mode = mode))]`) or from its returned value
//! (`labels(reason = |result| ...)`).
//!
//! A value is a [`LabelKey`]: a `&'static str`, a `bool`, an integer, or a
//! variant of a field-less enum that derives [`LabelValue`]. Nothing is
//! formatted or allocated on a call: the key is compared with the keys of
//! the series already seen, in a fixed table of cells per call site.
//!
//! Each call site has a cardinality limit (100 series unless
//! `cardinality_limit = N` says otherwise). Calls whose label values would
//! make a series beyond it are counted in one overflow series, labelled
//! `otel_metric_overflow="true"` without the computed labels (as the
//! OpenTelemetry SDK marks its overflow), so nothing is lost and the number
//! of series stays bounded whatever values the program sees.

#![allow(missing_docs)] // the cells and the guard are hidden API for generated code

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU8, AtomicUsize};

use super::shard::{shard_index, SHARDS};
use super::site::CallCounts;
use crate::switch::is_enabled;

/// A value a label can take on a call: turned into a [`LabelKey`] without
/// formatting or allocating.
///
/// Implemented for `&'static str`, `bool`, the integer types and `Option`s
/// of them (`None` is an empty value, which Prometheus reads as no label);
/// derive it
/// for a field-less enum (`#[derive(telemark::LabelValue)]`), whose
/// variants are its values, in `snake_case` unless renamed with
/// `#[label_value(rename = "...")]`. A label's values should be few and
/// known in advance: an identifier, a free-form text or a timestamp would
/// make one series per call (and so has no implementation).
///
/// With the `telemark` crate, `#[derive(telemark::LabelValue)]` writes
/// this for an enum, and `#[telemark::counted(labels(mode = mode))]`
/// counts each call by its `mode`:
///
/// ```
/// use telemark_runtime::metrics::{LabelKey, LabelValue};
///
/// #[derive(Clone, Copy)]
/// enum Mode {
///     Real,
///     Fallback,
/// }
///
/// impl LabelValue for Mode {
///     fn label_key(&self) -> LabelKey {
///         static NAMES: [&str; 2] = ["real", "fallback"];
///         LabelKey::variant(*self as u32, &NAMES)
///     }
/// }
///
/// assert_eq!(Mode::Fallback.label_key().to_string(), "fallback");
/// assert_eq!(Mode::Real.label_key(), LabelKey::variant(0, &["real", "fallback"]));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a label value",
    label = "a label computed on each call needs a `telemark::LabelValue`",
    note = "labels take `&'static str`, `bool`, integers, or a field-less enum with \
            `#[derive(telemark::LabelValue)]`: a label's values must be few and known, \
            or every call could make a new series"
)]
pub trait LabelValue {
    /// This value as a label's key.
    fn label_key(&self) -> LabelKey;
}

/// One label's value on one call, as the cells compare and store it.
#[derive(Clone, Copy, Debug)]
pub struct LabelKey(Key);

#[derive(Clone, Copy, Debug)]
enum Key {
    /// No value: `None`, or a label computed from a returned value when
    /// the call panicked or was cancelled (rendered as an empty value,
    /// which Prometheus reads as no label).
    Missing,
    Text(&'static str),
    Signed(i64),
    Unsigned(u64),
    Bool(bool),
    /// The `index`th of an enum's `names`.
    Variant {
        index: u32,
        names: &'static [&'static str],
    },
}

impl LabelKey {
    /// No value (see the module's documentation).
    pub const MISSING: LabelKey = LabelKey(Key::Missing);

    /// The variant `index` of an enum whose variants are named `names`
    /// (what `#[derive(LabelValue)]` generates).
    ///
    /// ```
    /// use telemark_runtime::metrics::LabelKey;
    /// static NAMES: [&str; 2] = ["real", "fallback"];
    /// assert_eq!(LabelKey::variant(1, &NAMES).to_string(), "fallback");
    /// ```
    pub const fn variant(index: u32, names: &'static [&'static str]) -> LabelKey {
        LabelKey(Key::Variant { index, names })
    }

    /// Its number among its type's values, and how many values the type
    /// has, for a type whose values are all known (an enum, `bool`).
    #[inline(always)]
    fn position(&self) -> Option<(u64, u64)> {
        match self.0 {
            Key::Variant { index, names } => Some((u64::from(index), names.len() as u64)),
            Key::Bool(value) => Some((u64::from(value), 2)),
            _ => None,
        }
    }

    /// A word mixed into a series' hash.
    #[inline(always)]
    fn hash_word(&self) -> u64 {
        match self.0 {
            Key::Missing => 0x6d69_7373,
            Key::Text(text) => {
                // The length and the first and last bytes (up to 16): no
                // loop over a long text; equal hashes are compared in full.
                let bytes = text.as_bytes();
                let n = bytes.len();
                let (first, last) = if n >= 8 {
                    (read_u64(&bytes[..8]), read_u64(&bytes[n - 8..]))
                } else if n >= 4 {
                    (read_u32(&bytes[..4]), read_u32(&bytes[n - 4..]))
                } else if n > 0 {
                    let spread = u64::from(bytes[0]) << 16
                        | u64::from(bytes[n / 2]) << 8
                        | u64::from(bytes[n - 1]);
                    (spread, 0)
                } else {
                    (0, 0)
                };
                mix(mix(n as u64, first), last)
            }
            Key::Signed(value) => value as u64,
            Key::Unsigned(value) => value ^ (1 << 63),
            Key::Bool(value) => u64::from(value) + 2,
            Key::Variant { index, .. } => u64::from(index) + 7,
        }
    }
}

impl PartialEq for LabelKey {
    #[inline(always)]
    fn eq(&self, other: &LabelKey) -> bool {
        match (self.0, other.0) {
            (Key::Missing, Key::Missing) => true,
            (Key::Text(a), Key::Text(b)) => std::ptr::eq(a, b) || a == b,
            (Key::Signed(a), Key::Signed(b)) => a == b,
            (Key::Unsigned(a), Key::Unsigned(b)) => a == b,
            (Key::Bool(a), Key::Bool(b)) => a == b,
            (
                Key::Variant { index, names },
                Key::Variant {
                    index: other,
                    names: other_names,
                },
            ) => index == other && (std::ptr::eq(names, other_names) || names == other_names),
            _ => false,
        }
    }
}

impl Eq for LabelKey {}

impl std::fmt::Display for LabelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Key::Missing => Ok(()),
            Key::Text(text) => f.write_str(text),
            Key::Signed(value) => write!(f, "{value}"),
            Key::Unsigned(value) => write!(f, "{value}"),
            Key::Bool(value) => write!(f, "{value}"),
            Key::Variant { index, names } => {
                f.write_str(names.get(index as usize).copied().unwrap_or_default())
            }
        }
    }
}

#[inline(always)]
fn read_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

#[inline(always)]
fn read_u32(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u64::from(u32::from_le_bytes(word))
}

/// Whether two series' keys are equal (inlined: the slice comparison
/// `==` calls is not).
#[inline(always)]
fn same_keys<const N: usize>(a: &[LabelKey; N], b: &[LabelKey; N]) -> bool {
    let mut i = 0;
    while i < N {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[inline(always)]
fn mix(hash: u64, word: u64) -> u64 {
    (hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

impl LabelValue for &'static str {
    #[inline(always)]
    fn label_key(&self) -> LabelKey {
        LabelKey(Key::Text(self))
    }
}

impl LabelValue for bool {
    #[inline(always)]
    fn label_key(&self) -> LabelKey {
        LabelKey(Key::Bool(*self))
    }
}

impl<T: LabelValue + ?Sized> LabelValue for &T {
    #[inline(always)]
    fn label_key(&self) -> LabelKey {
        (**self).label_key()
    }
}

/// `None` is no value: an empty label, which Prometheus reads as no label.
impl<T: LabelValue> LabelValue for Option<T> {
    #[inline(always)]
    fn label_key(&self) -> LabelKey {
        match self {
            Some(value) => value.label_key(),
            None => LabelKey::MISSING,
        }
    }
}

macro_rules! integer_labels {
    ($variant:ident, $wide:ty: $($ty:ty),*) => {$(
        impl LabelValue for $ty {
            #[inline(always)]
            fn label_key(&self) -> LabelKey {
                LabelKey(Key::$variant(*self as $wide))
            }
        }
    )*};
}

integer_labels!(Signed, i64: i8, i16, i32, i64, isize);
integer_labels!(Unsigned, u64: u8, u16, u32, u64, usize);

/// `value`'s key (generated code calls this on a label's expression).
#[inline(always)]
pub fn label_key<T: LabelValue + ?Sized>(value: &T) -> LabelKey {
    value.label_key()
}

/// The key of what `label` computes from the returned `value` (generated
/// code passes the attribute's closure, whose argument's type comes from
/// here).
#[inline(always)]
pub fn label_from<'a, T: ?Sized, V: LabelValue>(
    value: &'a T,
    label: impl FnOnce(&'a T) -> V,
) -> LabelKey {
    label(value).label_key()
}

/// The cardinality limit of a call site whose attribute does not set one.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 100;

/// Cells for a site with this limit: twice as many as series, rounded up to
/// a power of two, so a lookup rarely probes more than one cell.
pub const fn series_cells(limit: usize) -> usize {
    (limit * 2).next_power_of_two()
}

const EMPTY: u8 = 0;
const CLAIMING: u8 = 1;
const READY: u8 = 2;

/// One series' label values, written once, before `state` is `READY`;
/// read-only afterwards, so every core keeps its cache line.
struct SeriesKeys<const N: usize> {
    state: AtomicU8,
    keys: UnsafeCell<MaybeUninit<[LabelKey; N]>>,
}

impl<const N: usize> SeriesKeys<N> {
    const fn new() -> Self {
        SeriesKeys {
            state: AtomicU8::new(EMPTY),
            keys: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The keys of a series seen `READY` (with `Acquire`).
    #[inline(always)]
    fn keys(&self) -> &[LabelKey; N] {
        // SAFETY: written once by the thread that claimed the cell, before
        // its `Release` store of `READY`, which the caller saw; never again.
        unsafe { (*self.keys.get()).assume_init_ref() }
    }
}

/// One thread shard's counts of every series, then of the overflow series.
#[repr(align(128))]
struct CountShard<const CELLS: usize> {
    series: [CallCounts; CELLS],
    overflow: CallCounts,
}

impl<const CELLS: usize> CountShard<CELLS> {
    const fn new() -> Self {
        CountShard {
            series: [const { CallCounts::new() }; CELLS],
            overflow: CallCounts::new(),
        }
    }
}

/// Where a call is counted: a series' cell, or the overflow series.
#[derive(Clone, Copy)]
enum Slot {
    Series(usize),
    Overflow,
}

/// The counter cells of one `#[counted]` call site with `N` labels computed
/// on each call: a fixed table of `CELLS` series, of which at most `limit`
/// are used, and the overflow series. Their keys are shared; their counts
/// are kept per thread shard (as a plain counter's), so threads counting
/// the same series do not write one cache line.
pub struct LabeledCounterCells<const N: usize, const CELLS: usize, const LIMIT: usize> {
    series: [SeriesKeys<N>; CELLS],
    /// Series claimed so far.
    claimed: AtomicUsize,
    counts: [CountShard<CELLS>; SHARDS],
}

// SAFETY: a series' keys are written once, by the one thread that moved its
// state from EMPTY to CLAIMING, and read only after it is READY.
unsafe impl<const N: usize, const CELLS: usize, const LIMIT: usize> Sync
    for LabeledCounterCells<N, CELLS, LIMIT>
{
}

/// Rounds of waiting for another thread to finish claiming a cell (it was
/// preempted, say) before the lookup goes on past it.
const CLAIM_WAIT_ROUNDS: u32 = 1 << 10;

impl<const N: usize, const CELLS: usize, const LIMIT: usize> LabeledCounterCells<N, CELLS, LIMIT> {
    /// Empty cells for at most `LIMIT` series (checked when the static is
    /// built: `CELLS` must be a power of two above `LIMIT`). All zeros, so
    /// the static takes no room in the binary.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        assert!(
            CELLS.is_power_of_two() && LIMIT > 0 && LIMIT < CELLS,
            "labeled counter cells need a power of two above the limit"
        );
        LabeledCounterCells {
            series: [const { SeriesKeys::new() }; CELLS],
            claimed: AtomicUsize::new(0),
            counts: [const { CountShard::new() }; SHARDS],
        }
    }

    /// Counts one call with these label values, if instrumentation is
    /// switched on.
    #[inline(always)]
    pub fn record(&self, keys: &[LabelKey; N], is_error: bool) {
        if !is_enabled() {
            return;
        }
        let shard = &self.counts[shard_index()];
        let counts = match self.slot_for(keys) {
            Slot::Series(cell) => &shard.series[cell],
            Slot::Overflow => &shard.overflow,
        };
        counts.add(is_error);
    }

    /// Where to start looking for a series: for values all from enums and
    /// `bool`s, the series' own number among every combination (a fixed
    /// index, so each has its own cell while they fit); else a hash.
    #[inline(always)]
    fn first_cell(keys: &[LabelKey; N]) -> usize {
        let mut index = 0u64;
        for key in keys {
            match key.position() {
                Some((position, count)) => index = index * count + position,
                None => {
                    let hash = keys.iter().fold(0, |hash, key| mix(hash, key.hash_word()));
                    return (hash >> 32) as usize;
                }
            }
        }
        index as usize
    }

    #[inline(always)]
    fn slot_for(&self, keys: &[LabelKey; N]) -> Slot {
        let mut cell = Self::first_cell(keys) & (CELLS - 1);
        for _ in 0..CELLS {
            let series = &self.series[cell];
            let state = series.state.load(Acquire);
            if state == READY && same_keys(series.keys(), keys) {
                return Slot::Series(cell);
            }
            if state != READY {
                if let Some(slot) = self.claim_or_wait(cell, keys) {
                    return slot;
                }
            }
            cell = (cell + 1) & (CELLS - 1);
        }
        Slot::Overflow
    }

    /// At a cell not yet `READY`: claims it for `keys` (while under the
    /// limit), or waits for the thread claiming it. `None` when the cell
    /// holds another series: the lookup goes on at the next.
    #[cold]
    #[inline(never)]
    fn claim_or_wait(&self, cell: usize, keys: &[LabelKey; N]) -> Option<Slot> {
        let series = &self.series[cell];
        let mut rounds = 0;
        loop {
            match series.state.load(Acquire) {
                READY => return same_keys(series.keys(), keys).then_some(Slot::Series(cell)),
                EMPTY => {
                    if self.claimed.load(Relaxed) >= LIMIT {
                        return Some(Slot::Overflow);
                    }
                    if series
                        .state
                        .compare_exchange(EMPTY, CLAIMING, Acquire, Acquire)
                        .is_err()
                    {
                        continue;
                    }
                    if self.claimed.fetch_add(1, Relaxed) >= LIMIT {
                        self.claimed.fetch_sub(1, Relaxed);
                        series.state.store(EMPTY, Release);
                        return Some(Slot::Overflow);
                    }
                    // SAFETY: this thread moved the cell to CLAIMING: no other
                    // reads or writes its keys until it is READY.
                    unsafe { (*series.keys.get()).write(*keys) };
                    series.state.store(READY, Release);
                    return Some(Slot::Series(cell));
                }
                _ => {
                    // Another thread is writing the cell's keys: a few
                    // stores, unless it was preempted. Not waited for
                    // forever: the lookup goes on, and may claim a further
                    // cell for the same values (series with the same labels
                    // are added up when rendered).
                    rounds += 1;
                    if rounds > CLAIM_WAIT_ROUNDS {
                        return None;
                    }
                    if rounds % 64 == 0 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
    }

    /// A series' counts over every shard.
    fn total(&self, counts: impl Fn(&CountShard<CELLS>) -> &CallCounts) -> (u64, u64) {
        self.counts.iter().fold((0, 0), |(ok, error), shard| {
            let (o, e) = counts(shard).get();
            (ok + o, error + e)
        })
    }
}

/// What reads a labeled counter's series: its label values and its
/// `(ok, error)` counts.
pub type SeriesVisitor<'a> = dyn FnMut(&[LabelKey], (u64, u64)) + 'a;

/// A labeled counter's cells, as `/metrics` and `/status` read them.
pub trait LabeledCounts: Sync {
    /// Calls `each` with every series' label values and `(ok, error)`
    /// counts, in no particular order.
    fn for_each_series(&self, each: &mut SeriesVisitor<'_>);
    /// Calls counted in the overflow series: `(ok, error)`.
    fn overflow(&self) -> (u64, u64);
    /// Series in use.
    fn series(&self) -> usize;
    /// The most series this call site makes.
    fn limit(&self) -> usize;
}

impl<const N: usize, const CELLS: usize, const LIMIT: usize> LabeledCounts
    for LabeledCounterCells<N, CELLS, LIMIT>
{
    fn for_each_series(&self, each: &mut SeriesVisitor<'_>) {
        for (cell, series) in self.series.iter().enumerate() {
            if series.state.load(Acquire) == READY {
                each(series.keys(), self.total(|shard| &shard.series[cell]));
            }
        }
    }

    fn overflow(&self) -> (u64, u64) {
        self.total(|shard| &shard.overflow)
    }

    fn series(&self) -> usize {
        self.claimed.load(Relaxed).min(LIMIT)
    }

    fn limit(&self) -> usize {
        LIMIT
    }
}

/// The labels a `#[counted]` site computes on each call: their names, in
/// the order of each call's keys, and the site's cells.
pub struct ComputedLabels {
    pub names: &'static [&'static str],
    pub cells: &'static dyn LabeledCounts,
}

/// Counts one call of a site with computed labels: the values computed from
/// the arguments when the call starts, then those computed from its
/// returned value. Dropped before [`LabeledCall::finish`] (a panic, a
/// cancelled future), the call counts as an error, its labels from the
/// returned value empty.
pub struct LabeledCall<const N: usize, const CELLS: usize, const LIMIT: usize> {
    cells: &'static LabeledCounterCells<N, CELLS, LIMIT>,
    keys: [LabelKey; N],
}

impl<const N: usize, const CELLS: usize, const LIMIT: usize> LabeledCall<N, CELLS, LIMIT> {
    #[inline(always)]
    pub fn new(cells: &'static LabeledCounterCells<N, CELLS, LIMIT>, keys: [LabelKey; N]) -> Self {
        LabeledCall { cells, keys }
    }

    /// Sets the value of the label at `index` (computed from the returned
    /// value).
    #[inline(always)]
    pub fn set(&mut self, index: usize, key: LabelKey) {
        if let Some(slot) = self.keys.get_mut(index) {
            *slot = key;
        }
    }

    /// The call returned: counts it as an error or not.
    #[inline(always)]
    pub fn finish(self, is_error: bool) {
        // Not dropped: the drop counts a call that did not return.
        let this = std::mem::ManuallyDrop::new(self);
        this.cells.record(&this.keys, is_error);
    }
}

impl<const N: usize, const CELLS: usize, const LIMIT: usize> Drop for LabeledCall<N, CELLS, LIMIT> {
    #[inline(always)]
    fn drop(&mut self) {
        self.cells.record(&self.keys, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series_of(cells: &dyn LabeledCounts) -> Vec<(Vec<String>, (u64, u64))> {
        let mut all = Vec::new();
        cells.for_each_series(&mut |keys, counts| {
            all.push((keys.iter().map(ToString::to_string).collect(), counts));
        });
        all.sort();
        all
    }

    #[test]
    fn equal_texts_at_different_addresses_are_one_series() {
        static CELLS: LabeledCounterCells<1, 8, 3> = LabeledCounterCells::new();
        let owned = String::from("fallback");
        let leaked: &'static str = Box::leak(owned.into_boxed_str());
        CELLS.record(&[label_key(&"fallback")], false);
        CELLS.record(&[label_key(&leaked)], true);
        assert_eq!(
            series_of(&CELLS),
            vec![(vec!["fallback".to_owned()], (1, 1))]
        );
    }

    #[test]
    fn texts_of_every_length_are_told_apart_and_matched_by_content() {
        static CELLS: LabeledCounterCells<1, 64, 30> = LabeledCounterCells::new();
        let alphabet = "abcdefghijklmnopqrstuvwxyz";
        for length in 0..=20 {
            let literal: &'static str = &alphabet[..length];
            let copy: &'static str = Box::leak(literal.to_owned().into_boxed_str());
            CELLS.record(&[label_key(&literal)], false);
            CELLS.record(&[label_key(&copy)], true);
        }
        let all = series_of(&CELLS);
        assert_eq!(all.len(), 21);
        assert!(all.iter().all(|(_, counts)| *counts == (1, 1)), "{all:?}");
    }

    #[test]
    fn values_beyond_the_limit_go_to_the_overflow_series() {
        static CELLS: LabeledCounterCells<2, 8, 3> = LabeledCounterCells::new();
        for code in [200u16, 404, 500, 503, 200, 418] {
            CELLS.record(&[label_key(&code), label_key(&(code >= 500))], code >= 500);
        }
        assert_eq!(
            series_of(&CELLS),
            vec![
                (vec!["200".to_owned(), "false".to_owned()], (2, 0)),
                (vec!["404".to_owned(), "false".to_owned()], (1, 0)),
                (vec!["500".to_owned(), "true".to_owned()], (0, 1)),
            ]
        );
        assert_eq!(CELLS.overflow(), (1, 1));
        assert_eq!((CELLS.series(), CELLS.limit()), (3, 3));
    }

    #[test]
    fn enum_values_each_have_their_own_cell() {
        static NAMES: [&str; 3] = ["a", "b", "c"];
        static CELLS: LabeledCounterCells<2, 16, 6> = LabeledCounterCells::new();
        for index in 0..3 {
            for flag in [false, true] {
                let keys = [LabelKey::variant(index, &NAMES), label_key(&flag)];
                assert_eq!(
                    LabeledCounterCells::<2, 16, 6>::first_cell(&keys),
                    index as usize * 2 + usize::from(flag)
                );
                CELLS.record(&keys, false);
            }
        }
        assert_eq!(CELLS.series(), 6);
        assert_eq!(CELLS.overflow(), (0, 0));
    }

    #[test]
    fn threads_racing_for_new_series_lose_no_call() {
        static CELLS: LabeledCounterCells<1, 64, 20> = LabeledCounterCells::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for round in 0..1_000u32 {
                        CELLS.record(&[label_key(&(round % 30))], false);
                    }
                });
            }
        });
        let mut total = CELLS.overflow().0;
        CELLS.for_each_series(&mut |_, (ok, _)| total += ok);
        assert_eq!(total, 4_000);
        assert_eq!(CELLS.series(), 20);
    }
}
