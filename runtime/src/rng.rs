//! Random numbers for span ids, trace ids and retry jitter (a shared leaf).
//!
//! `fastrand`'s per-thread wyrand generator: fast and well distributed, not
//! for secrets. Nothing here needs to be unpredictable to an attacker.

/// A random 64-bit number from the calling thread's generator.
#[inline]
pub(crate) fn random_u64() -> u64 {
    fastrand::u64(..)
}

/// A random 64-bit number that is not zero (zero is an invalid span id).
#[inline]
pub(crate) fn nonzero_random_u64() -> u64 {
    loop {
        let value = random_u64();
        if value != 0 {
            return value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_vary_and_nonzero_ones_are_never_zero() {
        let draws: Vec<u64> = (0..64).map(|_| random_u64()).collect();
        let mut distinct = draws.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 60, "{draws:?}");
        assert!((0..10_000).all(|_| nonzero_random_u64() != 0));
    }
}
