//! Per-thread hand-over of ended spans. A thread that ends sampled spans
//! gets a lane of its own: a ring of span slots that only it writes and only
//! the export thread reads. Ending a span writes the thread's own slot and
//! index, never a cache line another calling thread writes; the export
//! thread polls every lane, so a thread that goes idle has its spans
//! exported within the schedule delay, and a thread that exits has its lane
//! emptied, then retired.
//!
//! A pipeline makes at most a fixed number of lanes (see [`lanes_for`]);
//! threads beyond them, and a thread whose lane is full, use the pipeline's
//! shared queue.

use std::cell::{RefCell, UnsafeCell};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_utils::CachePadded;

use super::pipeline::{Pipeline, SPANS_DROPPED};
use super::span::SpanRecord;

/// Span slots per lane (a power of two): 40 KiB of 80-byte records.
pub(crate) const LANE_SLOTS: usize = 512;

/// The lanes of a pipeline whose shared queue holds `max_queue_size`
/// spans: one per 1,024 (8 for the default 8,192; none below 1,024), so the
/// lanes hold at most half as many spans again.
pub(crate) fn lanes_for(max_queue_size: usize) -> usize {
    max_queue_size / 2 / LANE_SLOTS
}

/// One thread's ring of ended spans.
pub(crate) struct Lane {
    /// Slots written so far (only the owner thread writes it).
    head: CachePadded<AtomicUsize>,
    /// Slots read so far (only a holder of `reading` writes it).
    tail: CachePadded<AtomicUsize>,
    /// The owner thread exited or moved to another pipeline: once empty,
    /// the lane can be retired.
    abandoned: AtomicBool,
    /// Held while reading slots: by the export thread, or by a shutdown
    /// that ran out of time and discards what waits.
    reading: Mutex<()>,
    slots: Box<[UnsafeCell<MaybeUninit<SpanRecord>>; LANE_SLOTS]>,
}

// SAFETY: a slot is written only by the owner thread, before it publishes
// the slot with a release store of `head`, and read only under `reading`
// after an acquire load of `head`; the owner reuses a slot only after an
// acquire load of `tail` shows it was read. `SpanRecord` is `Send`.
unsafe impl Sync for Lane {}

impl Lane {
    fn new() -> Self {
        Lane {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            abandoned: AtomicBool::new(false),
            reading: Mutex::new(()),
            slots: (0..LANE_SLOTS)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect::<Box<[_]>>()
                .try_into()
                .unwrap_or_else(|_| unreachable!("LANE_SLOTS slots")),
        }
    }

    /// Spans waiting in the lane.
    pub(crate) fn waiting(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        self.head.load(Ordering::Acquire).wrapping_sub(tail)
    }

    /// Hands at most `most` waiting spans to `take`, oldest first; returns
    /// how many.
    pub(crate) fn take(&self, most: usize, mut take: impl FnMut(SpanRecord)) -> usize {
        let _reading = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        let tail = self.tail.load(Ordering::Relaxed);
        let ready = self.head.load(Ordering::Acquire).wrapping_sub(tail);
        let count = ready.min(most);
        for index in 0..count {
            let position = tail.wrapping_add(index);
            // SAFETY: slots between tail and head were written and
            // published by the owner (acquire load of head above), and are
            // read once: tail moves past the slot before `take` runs.
            let record = unsafe { (*self.slots[position % LANE_SLOTS].get()).assume_init_read() };
            self.tail.store(position.wrapping_add(1), Ordering::Release);
            take(record);
        }
        count
    }

    /// The owner is gone and everything it wrote was read.
    pub(crate) fn retired(&self) -> bool {
        // Acquire: the owner's last head store happened before.
        self.abandoned.load(Ordering::Acquire) && self.waiting() == 0
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Spans still waiting are freed, not leaked, and counted as
        // dropped. (Pipelines are leaked, so their lanes outlive every
        // span written to them; this keeps a lane's drop honest anyway.)
        let tail = *self.tail.get_mut();
        let waiting = self.head.get_mut().wrapping_sub(tail);
        if waiting > 0 {
            SPANS_DROPPED.fetch_add(waiting as u64, Ordering::Relaxed);
        }
        for index in 0..waiting {
            let position = tail.wrapping_add(index);
            // SAFETY: exclusive access; these slots were written, not read.
            unsafe { (*self.slots[position % LANE_SLOTS].get()).assume_init_drop() };
        }
    }
}

/// This thread's end of its lane.
struct Writer {
    /// The pipeline the lane belongs to (compared, never dereferenced).
    pipeline: *const Pipeline,
    /// `None`: the pipeline had no lane to spare; the thread uses its
    /// shared queue and asks again after `LANE_RETRY` spans.
    lane: Option<Arc<Lane>>,
    /// Mirror of `lane.head` (only this thread writes it).
    head: usize,
    /// `lane.tail` when last read: slots before it are free.
    tail_seen: usize,
    /// Spans sent to the shared queue since the last request for a lane.
    without_lane: u32,
}

/// Spans a thread without a lane sends to the shared queue before it asks
/// its pipeline for a lane again (another thread's may have been retired).
const LANE_RETRY: u32 = 4096;

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(lane) = &self.lane {
            lane.abandoned.store(true, Ordering::Release);
        }
    }
}

thread_local! {
    static WRITER: RefCell<Option<Writer>> = const { RefCell::new(None) };
}

/// Offers an ended span to this thread's lane of `pipeline`, making the
/// lane at the thread's first span. `Some` means the lane took the record
/// (a bitwise copy): the caller must neither use nor drop it. The number is
/// the lane's fill, read every 64 spans (else 0). `None` (no lane, lane
/// full, thread exiting): the record is still the caller's.
#[inline]
pub(crate) fn offer(pipeline: &Pipeline, record: &ManuallyDrop<SpanRecord>) -> Option<usize> {
    WRITER
        .try_with(|writer| {
            let mut writer = writer.try_borrow_mut().ok()?;
            let writer = match &mut *writer {
                Some(writer) if std::ptr::eq(writer.pipeline, pipeline) => writer,
                other => Writer::replace(other, pipeline),
            };
            if writer.lane.is_none() && !writer.ask_again(pipeline) {
                return None;
            }
            // SAFETY: on `Some` the caller gives the record up (see above).
            unsafe { writer.write(record) }
        })
        .ok()
        .flatten()
}

impl Writer {
    /// A writer for a first span, or for one of a new pipeline (the old
    /// lane is abandoned, and retired once emptied).
    #[cold]
    #[inline(never)]
    fn replace<'a>(writer: &'a mut Option<Writer>, pipeline: &Pipeline) -> &'a mut Writer {
        writer.insert(Writer {
            pipeline,
            lane: pipeline.lane(),
            head: 0,
            tail_seen: 0,
            without_lane: 0,
        })
    }

    /// Without a lane: asks the pipeline for one every `LANE_RETRY` spans.
    fn ask_again(&mut self, pipeline: &Pipeline) -> bool {
        self.without_lane += 1;
        if self.without_lane >= LANE_RETRY {
            self.without_lane = 0;
            self.lane = pipeline.lane();
        }
        self.lane.is_some()
    }

    /// Copies `record` into the lane and returns the fill (see [`offer`]);
    /// `None` when there is no lane or it is full.
    ///
    /// # Safety
    /// On `Some`, the lane owns the record: the caller must not use or drop
    /// `record` again.
    #[inline]
    unsafe fn write(&mut self, record: &ManuallyDrop<SpanRecord>) -> Option<usize> {
        let lane = self.lane.as_deref()?;
        // Every 64 spans, or when the lane looks full: see how far the
        // export thread read, and report the fill.
        let look = self.head % 64 == 0 || self.head.wrapping_sub(self.tail_seen) >= LANE_SLOTS;
        if look {
            self.tail_seen = lane.tail.load(Ordering::Acquire);
            if self.head.wrapping_sub(self.tail_seen) >= LANE_SLOTS {
                return None;
            }
        }
        let slot = &lane.slots[self.head % LANE_SLOTS];
        // SAFETY: this thread is the lane's only writer, and the slot is
        // free: the reader moved past it (tail_seen ≤ tail, and head -
        // tail_seen < LANE_SLOTS). The caller gives the record up.
        unsafe { (*slot.get()).write(std::ptr::read(&**record)) };
        self.head = self.head.wrapping_add(1);
        lane.head.store(self.head, Ordering::Release);
        Some(if look {
            self.head.wrapping_sub(self.tail_seen)
        } else {
            0
        })
    }
}

/// The lanes of a pipeline: those made and how many more may be.
pub(crate) struct Lanes {
    made: Mutex<Vec<Arc<Lane>>>,
    spare: AtomicUsize,
}

impl Lanes {
    pub(crate) fn new(count: usize) -> Self {
        Lanes {
            made: Mutex::new(Vec::new()),
            spare: AtomicUsize::new(count),
        }
    }

    /// A new lane, if one may still be made.
    pub(crate) fn make(&self) -> Option<Arc<Lane>> {
        self.spare
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |spare| {
                spare.checked_sub(1)
            })
            .ok()?;
        let lane = Arc::new(Lane::new());
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&lane));
        Some(lane)
    }

    /// Copies the lanes into `into` (to read them without holding the
    /// list, which new threads lock), dropping retired ones from the list.
    pub(crate) fn snapshot(&self, into: &mut Vec<Arc<Lane>>) {
        into.clear();
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        let before = made.len();
        made.retain(|lane| !lane.retired());
        self.spare.fetch_add(before - made.len(), Ordering::AcqRel);
        into.extend(made.iter().cloned());
    }

    /// Discards every waiting span (a shutdown out of time); returns how
    /// many.
    pub(crate) fn discard(&self) -> u64 {
        let made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.iter()
            .map(|lane| lane.take(usize::MAX, drop) as u64)
            .sum()
    }

    /// Spans waiting in all lanes.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        let made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.iter().map(|lane| lane.waiting()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::active_span::SpanIds;
    use crate::site::SiteInfo;
    use crate::trace::span::{Kind, SpanExtra, TraceSite};
    use opentelemetry::{KeyValue, Value};

    static INFO: SiteInfo = SiteInfo::new("step", "lanes", "src/lanes.rs", 1);
    static SITE: TraceSite = TraceSite {
        name: "step",
        kind: Kind::Internal,
        info: &INFO,
    };

    fn record(span_id: u64) -> SpanRecord {
        SpanRecord {
            ids: SpanIds {
                trace_id: 1,
                span_id,
            },
            site: &SITE,
            parent_span_id: 0,
            start_ticks: 0,
            end_ticks: 0,
            parent_is_remote: false,
            extra: None,
        }
    }

    impl Writer {
        /// `write` for owned records: the record back when refused.
        fn push(&mut self, record: SpanRecord) -> Result<usize, SpanRecord> {
            let record = ManuallyDrop::new(record);
            // SAFETY: on `Some` the record is given up (never used again).
            match unsafe { self.write(&record) } {
                Some(fill) => Ok(fill),
                None => Err(ManuallyDrop::into_inner(record)),
            }
        }
    }

    fn writer(lane: &Arc<Lane>) -> Writer {
        Writer {
            pipeline: std::ptr::null(),
            lane: Some(Arc::clone(lane)),
            head: 0,
            tail_seen: 0,
            without_lane: 0,
        }
    }

    #[test]
    fn spans_come_out_in_order_across_many_turns_of_the_ring() {
        let lane = Arc::new(Lane::new());
        let mut writer = writer(&lane);
        let (mut next_in, mut next_out) = (0u64, 0u64);
        // Uneven chunks, so the ring's ends meet at every offset.
        for chunk in [300, 211, 512, 1, 499, 64, 333, 512] {
            for _ in 0..chunk {
                assert!(writer.push(record(next_in)).is_ok());
                next_in += 1;
            }
            assert_eq!(lane.waiting(), chunk);
            // Read in two takes: a partial one, then the rest.
            let mut check = |record: SpanRecord| {
                assert_eq!(record.ids.span_id, next_out);
                next_out += 1;
            };
            assert_eq!(lane.take(chunk / 2, &mut check), chunk / 2);
            assert_eq!(lane.take(usize::MAX, &mut check), chunk - chunk / 2);
        }
        assert_eq!((next_out, lane.waiting()), (next_in, 0));
    }

    #[test]
    fn a_full_lane_refuses_a_span_until_the_export_thread_reads() {
        let lane = Arc::new(Lane::new());
        let mut writer = writer(&lane);
        for span_id in 0..LANE_SLOTS as u64 {
            assert!(writer.push(record(span_id)).is_ok());
        }
        let refused = writer.push(record(9_999)).map(|_| ()).unwrap_err();
        assert_eq!(refused.ids.span_id, 9_999);
        assert_eq!(lane.take(1, drop), 1);
        assert!(writer.push(record(10_000)).is_ok());
        assert_eq!(lane.waiting(), LANE_SLOTS);
    }

    #[test]
    fn the_fill_is_reported_every_64_spans() {
        let lane = Arc::new(Lane::new());
        let mut writer = writer(&lane);
        let fills: Vec<usize> = (0..130)
            .map(|span_id| writer.push(record(span_id)).ok().unwrap())
            .collect();
        assert_eq!((fills[0], fills[64], fills[128]), (1, 65, 129));
        assert!(fills
            .iter()
            .enumerate()
            .all(|(index, fill)| index % 64 == 0 || *fill == 0));
    }

    #[test]
    fn a_retired_lane_makes_room_for_another_thread() {
        let lanes = Lanes::new(1);
        let first = lanes.make().expect("one lane to spare");
        assert!(lanes.make().is_none(), "no second lane");
        let mut seen = Vec::new();
        let mut writer = writer(&first);
        assert!(writer.push(record(1)).is_ok());
        drop(writer); // the thread exits with a span in its lane
        lanes.snapshot(&mut seen);
        assert_eq!(seen.len(), 1, "kept until its span is read");
        assert!(lanes.make().is_none());
        assert_eq!(first.take(usize::MAX, drop), 1);
        lanes.snapshot(&mut seen);
        assert!(seen.is_empty(), "retired once empty");
        assert!(lanes.make().is_some(), "its place is free again");
    }

    #[test]
    fn discarding_and_dropping_a_lane_free_its_spans() {
        let text: Arc<str> = Arc::from("held by a waiting span");
        let with_attribute = |span_id| {
            let mut record = record(span_id);
            let mut extra = SpanExtra::default();
            extra.attributes.push(KeyValue::new(
                "note",
                Value::String(Arc::clone(&text).into()),
            ));
            record.extra = Some(Box::new(extra));
            record
        };
        let lanes = Lanes::new(2);
        let lane = lanes.make().unwrap();
        let mut writer = writer(&lane);
        for span_id in 0..3 {
            assert!(writer.push(with_attribute(span_id)).is_ok());
        }
        assert_eq!((lanes.waiting(), Arc::strong_count(&text)), (3, 4));
        assert_eq!(lanes.discard(), 3);
        assert_eq!((lanes.waiting(), Arc::strong_count(&text)), (0, 1));

        let lone = Arc::new(Lane::new());
        let mut writer = super::tests::writer(&lone);
        assert!(writer.push(with_attribute(7)).is_ok());
        assert_eq!(Arc::strong_count(&text), 2);
        drop(writer);
        drop(lone);
        assert_eq!(Arc::strong_count(&text), 1, "the lane's drop freed it");
    }
}
