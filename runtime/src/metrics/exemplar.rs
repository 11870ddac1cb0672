//! Exemplars: the last sampled call kept beside a counter or a histogram
//! bucket, so `/metrics` (in OpenMetrics) can link a series to a trace.
//!
//! A slot holds one exemplar behind a sequence number (a seqlock): a writer
//! that finds another one writing skips its exemplar (a newer one is being
//! kept), and a reader that sees the number move retries, so an exemplar is
//! never read half-written. Only calls made while a sampled span is active
//! write here.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicPtr, AtomicU64};

use crate::active_span::SpanIds;
use crate::clock::clock;
use crate::site::SiteInfo;

/// One exemplar as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exemplar {
    pub ids: SpanIds,
    /// The observed value: a duration in nanoseconds, or 1 for a count.
    pub value: u64,
    /// When it was recorded, in raw clock ticks.
    pub ticks: u64,
    /// Who made the call (caller labels only; null otherwise).
    pub caller: *const SiteInfo,
}

/// Storage for one exemplar.
pub(crate) struct ExemplarSlot {
    /// Even: stable; odd: a writer is at work. 0: never written.
    sequence: AtomicU64,
    trace_high: AtomicU64,
    trace_low: AtomicU64,
    span_id: AtomicU64,
    value: AtomicU64,
    ticks: AtomicU64,
    caller: AtomicPtr<SiteInfo>,
}

impl ExemplarSlot {
    pub(crate) const fn new() -> Self {
        ExemplarSlot {
            sequence: AtomicU64::new(0),
            trace_high: AtomicU64::new(0),
            trace_low: AtomicU64::new(0),
            span_id: AtomicU64::new(0),
            value: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            caller: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Keeps an exemplar, unless another thread is writing this slot.
    #[inline]
    pub(crate) fn write(&self, ids: SpanIds, value: u64, ticks: u64, caller: *const SiteInfo) {
        let sequence = self.sequence.load(Relaxed);
        if sequence & 1 == 1
            || self
                .sequence
                .compare_exchange(sequence, sequence + 1, Acquire, Relaxed)
                .is_err()
        {
            return;
        }
        // The odd number is visible before any field changes.
        fence(Release);
        self.trace_high.store((ids.trace_id >> 64) as u64, Relaxed);
        self.trace_low.store(ids.trace_id as u64, Relaxed);
        self.span_id.store(ids.span_id, Relaxed);
        self.value.store(value, Relaxed);
        self.ticks.store(ticks, Relaxed);
        self.caller.store(caller.cast_mut(), Relaxed);
        self.sequence.store(sequence + 2, Release);
    }

    /// The exemplar kept, if any (`None` also if writers kept it moving
    /// through a few attempts: rendering never waits).
    pub(crate) fn read(&self) -> Option<Exemplar> {
        for _ in 0..8 {
            let before = self.sequence.load(Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let exemplar = Exemplar {
                ids: SpanIds {
                    trace_id: (u128::from(self.trace_high.load(Relaxed)) << 64)
                        | u128::from(self.trace_low.load(Relaxed)),
                    span_id: self.span_id.load(Relaxed),
                },
                value: self.value.load(Relaxed),
                ticks: self.ticks.load(Relaxed),
                caller: self.caller.load(Relaxed),
            };
            fence(Acquire);
            if self.sequence.load(Relaxed) == before {
                return Some(exemplar);
            }
        }
        None
    }
}

/// Reads exemplars' clock ticks as wall-clock time, from one reading of
/// both clocks.
pub(crate) struct WallClock {
    ticks: u64,
    unix_nanos: u128,
}

impl WallClock {
    pub(crate) fn now() -> Self {
        let unix_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        WallClock {
            ticks: clock().raw(),
            unix_nanos,
        }
    }

    /// When `exemplar` was recorded, in nanoseconds since the Unix epoch
    /// (never after this reading).
    pub(crate) fn unix_nanos(&self, exemplar: &Exemplar) -> u128 {
        let ago = if exemplar.ticks < self.ticks {
            clock().delta_as_nanos(exemplar.ticks, self.ticks)
        } else {
            0
        };
        self.unix_nanos.saturating_sub(u128::from(ago))
    }
}

/// The most recent of two exemplars.
pub(crate) fn latest(a: Option<Exemplar>, b: Option<Exemplar>) -> Option<Exemplar> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.ticks > a.ticks { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> SpanIds {
        SpanIds {
            trace_id: (u128::from(n) << 64) | u128::from(n),
            span_id: n,
        }
    }

    #[test]
    fn an_empty_slot_reads_nothing_and_a_written_one_reads_back() {
        let slot = ExemplarSlot::new();
        assert_eq!(slot.read(), None);
        slot.write(ids(3), 1_500, 99, std::ptr::null());
        let read = slot.read().unwrap();
        assert_eq!((read.ids, read.value, read.ticks), (ids(3), 1_500, 99));
        slot.write(ids(4), 7, 100, std::ptr::null());
        assert_eq!(slot.read().unwrap().ids, ids(4));
    }

    /// Writers on several threads, each writing exemplars whose fields all
    /// derive from one number: a reader never sees fields of two writes.
    #[test]
    fn concurrent_writers_never_leave_a_torn_exemplar() {
        let slot = ExemplarSlot::new();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for thread in 0..3u64 {
                let (slot, stop) = (&slot, &stop);
                scope.spawn(move || {
                    let mut n = thread * 1_000_000_000 + 1;
                    while !stop.load(Relaxed) {
                        slot.write(ids(n), n, n, std::ptr::null());
                        n += 1;
                    }
                });
            }
            let mut seen = 0;
            while seen < 20_000 {
                if let Some(read) = slot.read() {
                    let n = read.value;
                    assert_eq!((read.ids, read.ticks), (ids(n), n), "torn exemplar");
                    seen += 1;
                }
            }
            stop.store(true, Relaxed);
        });
    }

    #[test]
    fn the_latest_exemplar_is_the_one_recorded_last() {
        let older = Exemplar {
            ids: ids(1),
            value: 1,
            ticks: 10,
            caller: std::ptr::null(),
        };
        let newer = Exemplar { ticks: 20, ..older };
        assert_eq!(latest(Some(older), Some(newer)), Some(newer));
        assert_eq!(latest(Some(newer), Some(older)), Some(newer));
        assert_eq!(latest(None, Some(older)), Some(older));
        assert_eq!(latest(None, None), None);
    }
}
