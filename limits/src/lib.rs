//! The limits and shared rules of [telemark](https://docs.rs/telemark),
//! written once and used by both `telemark-macros` (to refuse bad arguments
//! at compile time) and `telemark-runtime` (to size its cells and check
//! values given at run time). Dependency-free.
//!
//! The runtime's constructors that generated code calls in `static`
//! initialisers check these limits in `const` context too, so a macro and a
//! runtime that disagreed would fail to build rather than index out of
//! bounds at run time.
//!
//! ```
//! use telemark_limits::{bucket_bounds_nanos, BucketRule, MAX_BUCKETS};
//!
//! assert_eq!(bucket_bounds_nanos(&[0.005, 0.25, 1.0]), Ok(vec![5_000_000, 250_000_000, 1_000_000_000]));
//! assert_eq!(bucket_bounds_nanos(&[0.5, 0.1]), Err(BucketRule::NotIncreasing(1)));
//! assert_eq!(bucket_bounds_nanos(&[1.0; MAX_BUCKETS + 1]), Err(BucketRule::TooMany(MAX_BUCKETS + 1)));
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::vec::Vec;

/// Most finite bucket bounds one histogram may have (the `+Inf` bucket is extra).
pub const MAX_BUCKETS: usize = 29;

/// Smallest bucket bound, in seconds (one nanosecond).
pub const MIN_BUCKET_SECONDS: f64 = 1e-9;

/// Largest bucket bound, in seconds (about 31.7 years).
pub const MAX_BUCKET_SECONDS: f64 = 1e9;

/// The default duration bucket bounds of the Autometrics v1.0.0
/// specification, in nanoseconds (0.005 s … 10 s).
pub const DEFAULT_BUCKET_NANOS: [u64; 14] = [
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

/// The largest sliding window of a circuit breaker's rate rules, in calls.
pub const MAX_WINDOW: u32 = 10_000;

/// The most trial calls a half-open circuit breaker may admit at once.
pub const MAX_HALF_OPEN_CALLS: u32 = 1_000;

/// The most attempts (the first call included) a retry policy may make.
pub const MAX_ATTEMPTS: u32 = 100;

/// Why a list of histogram bucket bounds was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketRule {
    /// No bounds were given.
    Empty,
    /// More than [`MAX_BUCKETS`] bounds were given (how many).
    TooMany(usize),
    /// The bound at this index is not a finite number of seconds from
    /// [`MIN_BUCKET_SECONDS`] to [`MAX_BUCKET_SECONDS`].
    OutOfRange(usize),
    /// The bound at this index is not greater than the one before it
    /// (at nanosecond precision).
    NotIncreasing(usize),
}

/// One bucket bound in seconds as whole nanoseconds, if it is in range.
///
/// ```
/// assert_eq!(telemark_limits::bucket_bound_nanos(0.25), Some(250_000_000));
/// assert_eq!(telemark_limits::bucket_bound_nanos(-1.0), None);
/// ```
pub fn bucket_bound_nanos(seconds: f64) -> Option<u64> {
    // `contains` is false for NaN; infinities are out of range.
    if !(MIN_BUCKET_SECONDS..=MAX_BUCKET_SECONDS).contains(&seconds) {
        return None;
    }
    // In range, so the product fits a u64 (at most 1e18).
    Some((seconds * 1e9 + 0.5) as u64)
}

/// Checks bucket bounds in seconds and converts them to nanoseconds: at
/// least one, at most [`MAX_BUCKETS`], each in range, strictly increasing.
pub fn bucket_bounds_nanos(seconds: &[f64]) -> Result<Vec<u64>, BucketRule> {
    if seconds.is_empty() {
        return Err(BucketRule::Empty);
    }
    if seconds.len() > MAX_BUCKETS {
        return Err(BucketRule::TooMany(seconds.len()));
    }
    let mut nanos: Vec<u64> = Vec::with_capacity(seconds.len());
    for (index, &bound) in seconds.iter().enumerate() {
        let bound = bucket_bound_nanos(bound).ok_or(BucketRule::OutOfRange(index))?;
        if nanos.last().is_some_and(|&previous| bound <= previous) {
            return Err(BucketRule::NotIncreasing(index));
        }
        nanos.push(bound);
    }
    Ok(nanos)
}

/// Whether `nanos` is a list of bounds [`bucket_bounds_nanos`] could have
/// made: usable in `const` context, where the runtime checks the bounds
/// generated code passes it.
pub const fn bucket_nanos_are_valid(nanos: &[u64]) -> bool {
    if nanos.is_empty() || nanos.len() > MAX_BUCKETS || nanos[0] == 0 {
        return false;
    }
    let mut i = 1;
    while i < nanos.len() {
        if nanos[i] <= nanos[i - 1] || nanos[i] > 1_000_000_000_000_000_000 {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bounds_are_valid_and_in_seconds_match_the_spec() {
        assert!(bucket_nanos_are_valid(&DEFAULT_BUCKET_NANOS));
        let seconds = [
            0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        ];
        assert_eq!(bucket_bounds_nanos(&seconds).unwrap(), DEFAULT_BUCKET_NANOS);
    }

    #[test]
    fn bounds_out_of_range_or_order_are_refused_at_their_index() {
        assert_eq!(bucket_bounds_nanos(&[]), Err(BucketRule::Empty));
        assert_eq!(bucket_bounds_nanos(&[0.0]), Err(BucketRule::OutOfRange(0)));
        assert_eq!(
            bucket_bounds_nanos(&[1.0, f64::NAN]),
            Err(BucketRule::OutOfRange(1))
        );
        assert_eq!(
            bucket_bounds_nanos(&[1.0, 2e9]),
            Err(BucketRule::OutOfRange(1))
        );
        assert_eq!(
            bucket_bounds_nanos(&[1.0, 1.0]),
            Err(BucketRule::NotIncreasing(1))
        );
        assert!(!bucket_nanos_are_valid(&[]));
        assert!(!bucket_nanos_are_valid(&[5, 5]));
        assert!(!bucket_nanos_are_valid(&[1; MAX_BUCKETS + 1]));
    }
}
