//! Events for spans that are running, added by code that cannot reach the
//! span's record (a circuit breaker inside a `#[traced]` function).
//!
//! They wait here keyed by span id; a span takes its own when it ends.
//! Bounded: when full, the oldest go first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};

use super::pipeline;
use super::span::{RecordedEvent, SpanRecord};
use crate::clock::clock;

static PENDING: Mutex<VecDeque<(u64, RecordedEvent)>> = Mutex::new(VecDeque::new());
/// How many events wait: ending a span looks here first, without the lock.
pub(crate) static PENDING_EVENTS: AtomicUsize = AtomicUsize::new(0);
const MAX_PENDING_EVENTS: usize = 1024;

/// Moves the events waiting for `record`'s span onto it.
#[cold]
pub(crate) fn take_pending_events(record: &mut SpanRecord) {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let (mine, others): (VecDeque<_>, VecDeque<_>) = pending
        .drain(..)
        .partition(|(span_id, _)| *span_id == record.ids.span_id);
    *pending = others;
    PENDING_EVENTS.store(pending.len(), Relaxed);
    drop(pending);
    if !mine.is_empty() {
        record.add_events(mine.into_iter().map(|(_, event)| event));
    }
}

/// Adds an event to the sampled span current on this thread, if any.
pub(crate) fn event_on_current_span(name: &'static str, attributes: Vec<KeyValue>) {
    if pipeline::current().is_none() {
        return;
    }
    let span_id = Context::map_current(|cx| {
        let span = cx.span();
        let context = span.span_context();
        (context.is_valid() && context.is_sampled())
            .then(|| u64::from_be_bytes(context.span_id().to_bytes()))
    });
    let Some(span_id) = span_id else { return };
    let event = RecordedEvent {
        name,
        ticks: clock().raw(),
        attributes,
    };
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if pending.len() >= MAX_PENDING_EVENTS {
        pending.pop_front();
    }
    pending.push_back((span_id, event));
    PENDING_EVENTS.store(pending.len(), Relaxed);
}
