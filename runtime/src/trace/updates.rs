//! What code adds to a running span it does not hold: user code, through
//! [`current_span`](super::current_span) or OpenTelemetry's
//! `Context::current().span()`, and circuit breakers inside `#[traced]`
//! functions.
//!
//! On the span's own thread while it is active, an update goes straight into
//! its record. Elsewhere (a context moved to another thread or task), it
//! waits here, keyed by span id, and the span takes its own when it ends.
//! Bounded in number ([`MAX_PENDING_UPDATES`]: past it, the updates of the
//! span that has waited longest go first) and in time ([`MAX_WAIT_NANOS`]:
//! updates for a span that ended, or never ends, go then); every update
//! dropped is counted in [`UPDATES_DROPPED`]. A span end takes the lock only
//! if updates wait for a span id like its own (one bit of 64).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex};

use opentelemetry::trace::{Link, Status};
use opentelemetry::KeyValue;

use super::span::{with_active_record, RecordedEvent, SpanRecord};
use crate::clock::monotonic_nanos;

/// One thing added to a running span.
pub(crate) enum Update {
    Attribute(KeyValue),
    Event(RecordedEvent),
    Link(Link),
    Status(Status),
    Name(Cow<'static, str>),
}

/// Most updates waiting for spans running elsewhere.
pub(crate) const MAX_PENDING_UPDATES: usize = 1024;
/// Longest updates wait for their span: 60 s.
pub(crate) const MAX_WAIT_NANOS: u64 = 60_000_000_000;

/// Updates dropped: too many waiting, or waiting too long.
pub(crate) static UPDATES_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Bit `span_id % 64` is set while updates wait for such a span id.
static WAITING_MASK: AtomicU64 = AtomicU64::new(0);

struct Waiting {
    /// When the first of them came (monotonic nanoseconds).
    since: u64,
    updates: Vec<Update>,
}

#[derive(Default)]
struct Pending {
    by_span: HashMap<u64, Waiting>,
    /// Span ids with when their updates began to wait, oldest first (an
    /// entry whose `since` no longer matches is gone).
    order: VecDeque<(u64, u64)>,
    /// Updates in `by_span`.
    len: usize,
}

impl Pending {
    /// Drops the oldest waiting updates while `drop_oldest` says so.
    fn drop_oldest(&mut self, mut drop_oldest: impl FnMut(&Pending, u64) -> bool) {
        while let Some(&(span_id, since)) = self.order.front() {
            if !drop_oldest(self, since) {
                break;
            }
            self.order.pop_front();
            if self.by_span.get(&span_id).is_some_and(|w| w.since == since) {
                if let Some(dropped) = self.by_span.remove(&span_id) {
                    self.len -= dropped.updates.len();
                    UPDATES_DROPPED.fetch_add(dropped.updates.len() as u64, Relaxed);
                }
            }
        }
    }

    fn expire(&mut self, now: u64) {
        self.drop_oldest(|_, since| now.saturating_sub(since) > MAX_WAIT_NANOS);
    }

    fn publish_mask(&self) {
        let mask = self
            .by_span
            .keys()
            .fold(0u64, |mask, span_id| mask | bit(*span_id));
        WAITING_MASK.store(mask, Relaxed);
    }
}

#[inline(always)]
fn bit(span_id: u64) -> u64 {
    1 << (span_id & 63)
}

static PENDING: LazyLock<Mutex<Pending>> = LazyLock::new(Mutex::default);

/// Adds `update` to the sampled span `span_id`: into its record if it is
/// the span active on this thread, else to wait for it.
pub(crate) fn update_span(span_id: u64, update: Update) {
    let mut update = Some(update);
    with_active_record(|record| {
        if record.ids.span_id == span_id {
            if let Some(update) = update.take() {
                record.apply(update);
            }
        }
    });
    if let Some(update) = update {
        wait_for_span(span_id, update);
    }
}

#[cold]
fn wait_for_span(span_id: u64, update: Update) {
    let now = monotonic_nanos();
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    pending.expire(now);
    pending.drop_oldest(|pending, _| pending.len >= MAX_PENDING_UPDATES);
    let Pending {
        by_span,
        order,
        len,
    } = &mut *pending;
    by_span
        .entry(span_id)
        .or_insert_with(|| {
            order.push_back((span_id, now));
            Waiting {
                since: now,
                updates: Vec::new(),
            }
        })
        .updates
        .push(update);
    *len += 1;
    if order.len() > 2 * MAX_PENDING_UPDATES {
        order.retain(|(id, since)| by_span.get(id).is_some_and(|w| w.since == *since));
    }
    pending.publish_mask();
}

/// Whether updates may wait for the span `span_id` (checked at its end).
#[inline(always)]
pub(crate) fn may_wait_for(span_id: u64) -> bool {
    WAITING_MASK.load(Relaxed) & bit(span_id) != 0
}

/// Applies the updates waiting for `record`'s span to it, and drops those
/// that waited too long for others.
#[cold]
pub(crate) fn take_pending_updates(record: &mut SpanRecord) {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    pending.expire(monotonic_nanos());
    let mine = pending.by_span.remove(&record.ids.span_id);
    if let Some(mine) = &mine {
        pending.len -= mine.updates.len();
    }
    pending.publish_mask();
    drop(pending);
    for update in mine.into_iter().flat_map(|waiting| waiting.updates) {
        record.apply(update);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bookkeeping, on a private `Pending` (the global one is shared
    /// with the other tests).
    #[test]
    fn the_oldest_spans_updates_go_first_and_a_new_wait_for_an_old_id_is_kept() {
        let mut pending = Pending::default();
        let add = |pending: &mut Pending, span_id: u64, since: u64| {
            let waiting = pending.by_span.entry(span_id).or_insert_with(|| Waiting {
                since,
                updates: Vec::new(),
            });
            if waiting.updates.is_empty() {
                pending.order.push_back((span_id, since));
            }
            waiting.updates.push(Update::Name(Cow::Borrowed("renamed")));
            pending.len += 1;
        };
        add(&mut pending, 1, 10);
        add(&mut pending, 2, 20);
        // Span 1 takes its updates, then new ones wait for the same id.
        pending.len -= pending.by_span.remove(&1).unwrap().updates.len();
        add(&mut pending, 1, 30);
        let before = UPDATES_DROPPED.load(Relaxed);
        // The stale (1, 10) entry must not drop the new updates of span 1.
        pending.drop_oldest(|_, since| since < 25);
        assert!(pending.by_span.contains_key(&1), "the newer wait is kept");
        assert!(
            !pending.by_span.contains_key(&2),
            "the older span's are dropped"
        );
        assert_eq!(pending.len, 1);
        assert!(UPDATES_DROPPED.load(Relaxed) > before);
        pending.expire(30 + MAX_WAIT_NANOS + 1);
        assert!(pending.by_span.is_empty(), "updates expire");
        assert_eq!(pending.len, 0);
    }
}
