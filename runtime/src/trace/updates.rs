//! What code adds to a running span it does not hold: user code, through
//! [`current_span`](super::current_span) or OpenTelemetry's
//! `Context::current().span()`, and circuit breakers inside `#[traced]`
//! functions.
//!
//! On the span's own thread while it is active, an update goes straight into
//! its record. Elsewhere (a context moved to another thread or task), it
//! waits here, keyed by span id, and the span takes its own when it ends.
//! Bounded: past [`MAX_PENDING_UPDATES`], the updates of the span that has
//! waited longest are dropped first.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex};

use opentelemetry::trace::{Link, Status};
use opentelemetry::KeyValue;

use super::span::{with_active_record, RecordedEvent, SpanRecord};

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

#[derive(Default)]
struct Pending {
    by_span: HashMap<u64, Vec<Update>>,
    /// Span ids in the order their first update came (some may be gone).
    order: VecDeque<u64>,
    /// Updates in `by_span`.
    len: usize,
}

static PENDING: LazyLock<Mutex<Pending>> = LazyLock::new(Mutex::default);
/// How many updates wait: ending a span looks here first, without the lock.
pub(crate) static PENDING_UPDATES: AtomicUsize = AtomicUsize::new(0);

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
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    while pending.len >= MAX_PENDING_UPDATES {
        let Some(oldest) = pending.order.pop_front() else {
            break;
        };
        if let Some(dropped) = pending.by_span.remove(&oldest) {
            pending.len -= dropped.len();
        }
    }
    let Pending {
        by_span,
        order,
        len,
    } = &mut *pending;
    by_span
        .entry(span_id)
        .or_insert_with(|| {
            order.push_back(span_id);
            Vec::new()
        })
        .push(update);
    *len += 1;
    if order.len() > 2 * MAX_PENDING_UPDATES {
        order.retain(|id| by_span.contains_key(id));
    }
    PENDING_UPDATES.store(*len, Relaxed);
}

/// Applies the updates waiting for `record`'s span to it.
#[cold]
pub(crate) fn take_pending_updates(record: &mut SpanRecord) {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mine) = pending.by_span.remove(&record.ids.span_id) else {
        return;
    };
    pending.len -= mine.len();
    PENDING_UPDATES.store(pending.len, Relaxed);
    drop(pending);
    for update in mine {
        record.apply(update);
    }
}
