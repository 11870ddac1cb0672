//! Histogram bucket boundaries for `function_calls_duration_seconds`.

use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Default upper bounds in seconds, from the Autometrics v1.0.0 specification.
pub const DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Most finite bucket bounds one histogram may have (the `+Inf` bucket is extra).
pub const MAX_BUCKETS: usize = 29;

/// Bucket bounds in whole nanoseconds, as the hot path compares them.
#[doc(hidden)]
pub struct BoundsTable {
    len: usize,
    nanos: [u64; MAX_BUCKETS],
}

impl BoundsTable {
    #[inline(always)]
    pub fn as_slice(&self) -> &[u64] {
        &self.nanos[..self.len]
    }
}

static DEFAULT_TABLE: BoundsTable = {
    let mut nanos = [0u64; MAX_BUCKETS];
    let spec_nanos: [u64; 14] = [
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        75_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        750_000_000,
        1_000_000_000,
        2_500_000_000,
        5_000_000_000,
        7_500_000_000,
        10_000_000_000,
    ];
    let mut i = 0;
    while i < spec_nanos.len() {
        nanos[i] = spec_nanos[i];
        i += 1;
    }
    BoundsTable {
        len: spec_nanos.len(),
        nanos,
    }
};

static CURRENT: AtomicPtr<BoundsTable> =
    AtomicPtr::new(&DEFAULT_TABLE as *const BoundsTable as *mut BoundsTable);

/// The bounds used by every `#[timed]` function without its own `buckets`.
#[doc(hidden)]
#[inline(always)]
pub fn default_bounds() -> &'static [u64] {
    // SAFETY: CURRENT only ever points at DEFAULT_TABLE or at a leaked,
    // never-freed table, so the reference is valid for 'static.
    unsafe { (*CURRENT.load(Ordering::Acquire)).as_slice() }
}

/// Why a set of histogram buckets was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketError {
    /// No bounds were given.
    Empty,
    /// More than [`MAX_BUCKETS`] bounds.
    TooMany(usize),
    /// A bound is not a finite number of at least one nanosecond.
    NotPositive(f64),
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
            BucketError::TooMany(n) => {
                write!(
                    f,
                    "{n} histogram buckets given; at most {MAX_BUCKETS} are supported"
                )
            }
            BucketError::NotPositive(b) => {
                write!(
                    f,
                    "histogram bucket {b} is not a finite number of seconds >= 1e-9"
                )
            }
            BucketError::NotIncreasing(b) => {
                write!(
                    f,
                    "histogram bucket {b} is not greater than the bucket before it"
                )
            }
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
/// use telemark_runtime::{validate_buckets, BucketError};
/// assert_eq!(validate_buckets(&[0.001, 0.5]), Ok(vec![1_000_000, 500_000_000]));
/// assert_eq!(validate_buckets(&[0.5, 0.1]), Err(BucketError::NotIncreasing(0.1)));
/// ```
pub fn validate_buckets(seconds: &[f64]) -> Result<Vec<u64>, BucketError> {
    if seconds.is_empty() {
        return Err(BucketError::Empty);
    }
    if seconds.len() > MAX_BUCKETS {
        return Err(BucketError::TooMany(seconds.len()));
    }
    let mut nanos = Vec::with_capacity(seconds.len());
    for &bound in seconds {
        if !bound.is_finite() || bound < 1e-9 || bound > (u64::MAX / 2) as f64 / 1e9 {
            return Err(BucketError::NotPositive(bound));
        }
        let n = (bound * 1e9).round() as u64;
        if nanos.last().is_some_and(|&prev| n <= prev) {
            return Err(BucketError::NotIncreasing(bound));
        }
        nanos.push(n);
    }
    Ok(nanos)
}

/// Replaces the default buckets of `#[timed]` functions that do not set their own.
///
/// Call it at start-up (the [`crate::TelemetryBuilder`] does, with
/// `duration_buckets`), before instrumented functions run: once one of them has
/// recorded a call, this returns [`BucketError::AlreadyRecorded`].
///
/// ```
/// telemark_runtime::set_default_buckets(&[0.001, 0.01, 0.1, 1.0]).unwrap();
/// assert!(telemark_runtime::set_default_buckets(&[]).is_err());
/// ```
pub fn set_default_buckets(seconds: &[f64]) -> Result<(), BucketError> {
    let validated = validate_buckets(seconds)?;
    let current = default_bounds();
    if current == validated.as_slice() {
        return Ok(());
    }
    if crate::catalog::default_bucket_sites_have_recorded() {
        return Err(BucketError::AlreadyRecorded);
    }
    let mut table = BoundsTable {
        len: validated.len(),
        nanos: [0; MAX_BUCKETS],
    };
    table.nanos[..validated.len()].copy_from_slice(&validated);
    // Leaked on purpose: a concurrent reader may still hold the old table.
    CURRENT.store(Box::into_raw(Box::new(table)), Ordering::Release);
    Ok(())
}

/// Formats a bound in nanoseconds as an exact decimal number of seconds.
pub(crate) fn format_seconds(nanos: u64) -> String {
    let whole = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_format_exactly() {
        assert_eq!(format_seconds(5_000_000), "0.005");
        assert_eq!(format_seconds(10_000_000_000), "10");
        assert_eq!(format_seconds(2_500_000_000), "2.5");
        assert_eq!(format_seconds(1), "0.000000001");
    }

    #[test]
    fn invalid_buckets_are_refused() {
        assert_eq!(validate_buckets(&[]), Err(BucketError::Empty));
        assert_eq!(validate_buckets(&[0.0]), Err(BucketError::NotPositive(0.0)));
        assert_eq!(
            validate_buckets(&[f64::NAN]).unwrap_err().to_string(),
            "histogram bucket NaN is not a finite number of seconds >= 1e-9"
        );
        assert_eq!(
            validate_buckets(&[1.0, 1.0]),
            Err(BucketError::NotIncreasing(1.0))
        );
        assert_eq!(validate_buckets(&[0.1; 30]), Err(BucketError::TooMany(30)));
    }

    #[test]
    fn default_table_matches_the_spec() {
        let expected: Vec<u64> = DEFAULT_BUCKETS
            .iter()
            .map(|s| (s * 1e9).round() as u64)
            .collect();
        assert_eq!(DEFAULT_TABLE.as_slice(), expected.as_slice());
    }
}
