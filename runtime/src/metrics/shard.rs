//! Per-thread shard selection for the metric cells.
//!
//! Each call site owns `SHARDS` cache-line-aligned cells. A thread always
//! writes to the same cell, so two threads calling one function do not bounce
//! one cache line between cores; readers add the cells up.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Number of cells per call site (a power of two).
pub const SHARDS: usize = 8;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's shard, assigned round-robin on first use.
#[inline(always)]
pub fn shard_index() -> usize {
    THREAD_SHARD
        .try_with(|cell| {
            let current = cell.get();
            if current < SHARDS {
                current
            } else {
                let assigned = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) & (SHARDS - 1);
                cell.set(assigned);
                assigned
            }
        })
        // During thread-local destruction: any shard is correct, only slower.
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_shard_and_threads_spread_out() {
        let mine = shard_index();
        assert_eq!(mine, shard_index());
        let others: Vec<usize> = (0..SHARDS)
            .map(|_| std::thread::spawn(shard_index).join().unwrap())
            .collect();
        let mut distinct = others.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // Other tests may take shards concurrently, so only require a real spread.
        assert!(
            distinct.len() >= SHARDS / 2,
            "threads share too few shards: {others:?}"
        );
    }
}
