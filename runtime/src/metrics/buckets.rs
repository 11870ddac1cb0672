//! Histogram bucket bounds for `function_calls_duration_seconds`: the
//! specification's defaults, and the process-wide defaults a service may
//! set once at start-up.

use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};

pub use telemark_limits::MAX_BUCKETS;
use telemark_limits::{bucket_bounds_nanos, BucketRule, DEFAULT_BUCKET_NANOS};

/// Default upper bounds in seconds, from the Autometrics v1.0.0 specification.
pub const DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket bounds in whole nanoseconds, as the hot path compares them.
/// Aligned so that the low bit of a pointer to it is free for a tag.
#[repr(align(8))]
pub(crate) struct BoundsTable {
    len: usize,
    nanos: [u64; MAX_BUCKETS],
}

impl BoundsTable {
    const fn new(bounds: &[u64]) -> Self {
        let mut nanos = [0u64; MAX_BUCKETS];
        let mut i = 0;
        while i < bounds.len() {
            nanos[i] = bounds[i];
            i += 1;
        }
        BoundsTable {
            len: bounds.len(),
            nanos,
        }
    }

    #[inline(always)]
    fn as_slice(&self) -> &[u64] {
        &self.nanos[..self.len]
    }
}

static SPEC_TABLE: BoundsTable = BoundsTable::new(&DEFAULT_BUCKET_NANOS);

/// Set in the pointer to the table once a call was recorded with it: from
/// then on the table cannot change (counts already in the cells are
/// relative to its bounds).
const RECORDED: usize = 1;

/// The process-wide default bounds. Recording and replacing them race
/// safely: the first recording call tags the table with one
/// compare-and-swap, a replacement is one compare-and-swap from an untagged
/// table, so exactly one of them goes first.
pub(crate) struct DefaultBounds {
    current: AtomicPtr<BoundsTable>,
}

impl DefaultBounds {
    const fn new(table: &'static BoundsTable) -> Self {
        DefaultBounds {
            current: AtomicPtr::new(table as *const BoundsTable as *mut BoundsTable),
        }
    }

    fn table(pointer: *mut BoundsTable) -> &'static BoundsTable {
        // SAFETY: `current` only ever holds (possibly tagged) pointers to
        // SPEC_TABLE or to leaked, never-freed tables.
        unsafe { &*pointer.map_addr(|address| address & !RECORDED) }
    }

    /// The bounds now, for reading (rendering).
    #[inline(always)]
    pub(crate) fn get(&self) -> &'static [u64] {
        Self::table(self.current.load(Ordering::Acquire)).as_slice()
    }

    /// The bounds to record a call with; they can no longer change.
    #[inline(always)]
    pub(crate) fn for_recording(&self) -> &'static [u64] {
        let pointer = self.current.load(Ordering::Acquire);
        if pointer.addr() & RECORDED != 0 {
            return Self::table(pointer).as_slice();
        }
        self.mark_recorded(pointer)
    }

    #[cold]
    #[inline(never)]
    fn mark_recorded(&self, mut pointer: *mut BoundsTable) -> &'static [u64] {
        loop {
            if pointer.addr() & RECORDED != 0 {
                return Self::table(pointer).as_slice();
            }
            let tagged = pointer.map_addr(|address| address | RECORDED);
            match self.current.compare_exchange_weak(
                pointer,
                tagged,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Self::table(pointer).as_slice(),
                Err(actual) => pointer = actual,
            }
        }
    }

    /// Replaces the bounds unless a call was recorded with the current ones
    /// (setting the same bounds again is always fine).
    pub(crate) fn set(&self, nanos: &[u64]) -> Result<(), BucketError> {
        let mut pointer = self.current.load(Ordering::Acquire);
        let replacement = Box::into_raw(Box::new(BoundsTable::new(nanos)));
        loop {
            if Self::table(pointer).as_slice() == nanos {
                // SAFETY: never shared: it was not stored.
                drop(unsafe { Box::from_raw(replacement) });
                return Ok(());
            }
            if pointer.addr() & RECORDED != 0 {
                drop(unsafe { Box::from_raw(replacement) });
                return Err(BucketError::AlreadyRecorded);
            }
            match self.current.compare_exchange(
                pointer,
                replacement,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // The old table is leaked on purpose: a reader may hold it.
                Ok(_) => return Ok(()),
                Err(actual) => pointer = actual,
            }
        }
    }
}

static DEFAULTS: DefaultBounds = DefaultBounds::new(&SPEC_TABLE);

/// The bounds every `#[timed]` function without its own `buckets` uses now.
#[inline(always)]
pub(crate) fn default_bounds() -> &'static [u64] {
    DEFAULTS.get()
}

/// The default bounds, for recording a call: fixed from then on.
#[inline(always)]
pub(crate) fn default_bounds_for_recording() -> &'static [u64] {
    DEFAULTS.for_recording()
}

/// Why a set of histogram buckets was refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BucketError {
    /// No bounds were given.
    Empty,
    /// More than [`MAX_BUCKETS`] bounds.
    TooMany(usize),
    /// A bound is not a finite number of seconds from 1e-9 (one nanosecond)
    /// to 1e9.
    OutOfRange(f64),
    /// A bound is not strictly greater than the one before it (at nanosecond precision).
    NotIncreasing(f64),
    /// `#[timed]` functions using the default buckets have already recorded
    /// calls; changing the bounds now would mislabel those counts.
    AlreadyRecorded,
}

impl fmt::Display for BucketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BucketError::Empty => write!(f, "histogram buckets must not be empty"),
            BucketError::TooMany(n) => write!(
                f,
                "{n} histogram buckets given; at most {MAX_BUCKETS} are supported"
            ),
            BucketError::OutOfRange(b) => write!(
                f,
                "histogram bucket {b} is not a finite number of seconds from 1e-9 to 1e9"
            ),
            BucketError::NotIncreasing(b) => write!(
                f,
                "histogram bucket {b} is not greater than the bucket before it"
            ),
            BucketError::AlreadyRecorded => write!(
                f,
                "default histogram buckets cannot change after #[timed] functions recorded calls"
            ),
        }
    }
}

impl std::error::Error for BucketError {}

/// Checks bucket bounds in seconds and converts them to nanoseconds.
///
/// ```
/// use telemark_runtime::metrics::{validate_buckets, BucketError};
/// assert_eq!(validate_buckets(&[0.001, 0.5]), Ok(vec![1_000_000, 500_000_000]));
/// assert_eq!(validate_buckets(&[0.5, 0.1]), Err(BucketError::NotIncreasing(0.1)));
/// ```
pub fn validate_buckets(seconds: &[f64]) -> Result<Vec<u64>, BucketError> {
    bucket_bounds_nanos(seconds).map_err(|rule| match rule {
        BucketRule::Empty => BucketError::Empty,
        BucketRule::TooMany(n) => BucketError::TooMany(n),
        BucketRule::OutOfRange(i) => BucketError::OutOfRange(seconds[i]),
        BucketRule::NotIncreasing(i) => BucketError::NotIncreasing(seconds[i]),
    })
}

/// Replaces the default buckets of `#[timed]` functions that do not set their own.
///
/// Call it at start-up (the [`TelemetryBuilder`](crate::telemetry::TelemetryBuilder) does, with
/// `duration_buckets`), before instrumented functions run: once one of them has
/// recorded a call, this returns [`BucketError::AlreadyRecorded`].
///
/// ```
/// telemark_runtime::metrics::set_default_buckets(&[0.001, 0.01, 0.1, 1.0]).unwrap();
/// assert!(telemark_runtime::metrics::set_default_buckets(&[]).is_err());
/// ```
pub fn set_default_buckets(seconds: &[f64]) -> Result<(), BucketError> {
    DEFAULTS.set(&validate_buckets(seconds)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn invalid_buckets_are_refused() {
        assert_eq!(validate_buckets(&[]), Err(BucketError::Empty));
        assert_eq!(validate_buckets(&[0.0]), Err(BucketError::OutOfRange(0.0)));
        assert_eq!(
            validate_buckets(&[f64::NAN]).unwrap_err().to_string(),
            "histogram bucket NaN is not a finite number of seconds from 1e-9 to 1e9"
        );
        assert_eq!(
            validate_buckets(&[1.0, 1.0]),
            Err(BucketError::NotIncreasing(1.0))
        );
        assert_eq!(validate_buckets(&[0.1; 30]), Err(BucketError::TooMany(30)));
    }

    #[test]
    fn the_spec_table_matches_the_spec() {
        let expected: Vec<u64> = DEFAULT_BUCKETS
            .iter()
            .map(|s| (s * 1e9).round() as u64)
            .collect();
        assert_eq!(SPEC_TABLE.as_slice(), expected.as_slice());
    }

    #[test]
    fn bounds_freeze_at_the_first_recorded_call() {
        let defaults = DefaultBounds::new(&SPEC_TABLE);
        assert_eq!(defaults.set(&[1, 2]), Ok(()));
        assert_eq!(defaults.for_recording(), [1, 2]);
        assert_eq!(defaults.set(&[1, 2]), Ok(()), "the same bounds again");
        assert_eq!(defaults.set(&[5]), Err(BucketError::AlreadyRecorded));
        assert_eq!(defaults.get(), [1, 2]);
    }

    /// A call recording while the bounds are replaced either goes first
    /// (and the replacement is refused) or records with the new bounds:
    /// never with bounds that a successful replacement then relabels.
    #[test]
    fn a_replacement_racing_a_recording_call_never_mislabels_it() {
        const NEW: [u64; 1] = [7];
        for _ in 0..2_000 {
            let defaults: &'static DefaultBounds =
                Box::leak(Box::new(DefaultBounds::new(&SPEC_TABLE)));
            let start = Barrier::new(2);
            let (recorded_with, replaced) = std::thread::scope(|scope| {
                let recorder = scope.spawn(|| {
                    start.wait();
                    defaults.for_recording()
                });
                start.wait();
                let replaced = defaults.set(&NEW);
                (recorder.join().unwrap(), replaced)
            });
            match replaced {
                Ok(()) => assert_eq!(recorded_with, NEW, "recorded with replaced bounds"),
                Err(error) => {
                    assert_eq!(error, BucketError::AlreadyRecorded);
                    assert_eq!(recorded_with, DEFAULT_BUCKET_NANOS);
                    assert_eq!(defaults.get(), DEFAULT_BUCKET_NANOS);
                }
            }
        }
    }
}
