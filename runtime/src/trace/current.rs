//! The span user code runs in: [`current_span`] for telemark's own API, and
//! the span object telemark puts in the OpenTelemetry context, so that
//! `Context::current().span()` records too. Both reach the exported span.

use std::borrow::Cow;
use std::error::Error;
use std::time::SystemTime;

use opentelemetry::trace::{Link, SpanContext, SpanId, Status, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};

use super::span::{EventTime, RecordedEvent};
use super::updates::{update_span, Update};
use crate::active_span::{active, SpanIds};
use crate::clock::clock;

/// The sampled `#[traced]` span running on this thread, for the code inside
/// it to add attributes, events, links, errors and a status to.
///
/// It is the span of the innermost `#[traced]` call running here (for an
/// `async fn`, during its polls). Outside one, or when that span is not
/// sampled, the handle records nothing and every method returns at once:
/// `current_span()` then costs one thread-local read. Arguments are still
/// built, so check [`CurrentSpan::is_recording`] before costly ones.
///
/// The handle keeps its span: used on another thread or after an `.await`,
/// it still adds to that span (which takes the additions when it ends).
///
/// ```
/// use telemark_runtime::opentelemetry::trace::Status;
/// use telemark_runtime::opentelemetry::KeyValue;
/// use telemark_runtime::trace::current_span;
///
/// fn charge(cents: u64) {
///     let span = current_span();
///     span.set_attribute(KeyValue::new("payment.cents", cents as i64));
///     span.add_event("card authorised", vec![KeyValue::new("card.network", "visa")]);
///     if cents == 0 {
///         span.set_status(Status::error("nothing to charge"));
///     }
/// }
/// charge(250); // outside a #[traced] call: records nothing
/// assert!(!current_span().is_recording());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentSpan {
    span: Option<SpanIds>,
}

/// The sampled `#[traced]` span running on this thread (see [`CurrentSpan`]).
#[inline]
pub fn current_span() -> CurrentSpan {
    CurrentSpan { span: active() }
}

impl CurrentSpan {
    /// Whether the span is sampled: what is added to it is exported.
    #[inline]
    pub fn is_recording(&self) -> bool {
        self.span.is_some()
    }

    /// The span's trace id and span id, if it is recording (to put in logs).
    pub fn ids(&self) -> Option<(TraceId, SpanId)> {
        self.span
            .map(|ids| (TraceId::from(ids.trace_id), SpanId::from(ids.span_id)))
    }

    #[inline]
    fn update(&self, update: impl FnOnce() -> Update) {
        if let Some(ids) = self.span {
            update_span(ids.span_id, update());
        }
    }

    /// Sets an attribute (at most 128 are added to a span; the rest are
    /// counted as dropped).
    #[inline]
    pub fn set_attribute(&self, attribute: KeyValue) {
        self.update(|| Update::Attribute(attribute));
    }

    /// Adds an event, stamped now (at most 128 per span).
    #[inline]
    pub fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        self.update(|| {
            Update::Event(RecordedEvent {
                name: name.into(),
                time: EventTime::Ticks(clock().raw()),
                attributes,
            })
        });
    }

    /// Links another span to this one (at most 128 per span).
    #[inline]
    pub fn add_link(&self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        self.update(|| Update::Link(Link::new(span_context, attributes, 0)));
    }

    /// Records an error as an `exception` event with its message; the
    /// status is left to [`CurrentSpan::set_status`], as in OpenTelemetry.
    #[inline]
    pub fn record_error(&self, error: &dyn Error) {
        if self.is_recording() {
            self.add_event(
                "exception",
                vec![KeyValue::new("exception.message", error.to_string())],
            );
        }
    }

    /// Sets the status. `Ok` is final; an `Err` returned by a function with
    /// `#[traced(err)]` or a panic is recorded as the error otherwise.
    #[inline]
    pub fn set_status(&self, status: Status) {
        self.update(|| Update::Status(status));
    }

    /// Renames the span.
    #[inline]
    pub fn update_name(&self, name: impl Into<Cow<'static, str>>) {
        self.update(|| Update::Name(name.into()));
    }
}

/// The span telemark puts in the OpenTelemetry context of a sampled call,
/// so that `Context::current().span()` (and anything written against the
/// OpenTelemetry API) adds to the exported span.
pub(crate) struct RecordingSpan {
    context: SpanContext,
}

impl RecordingSpan {
    pub(crate) fn new(context: SpanContext) -> Self {
        RecordingSpan { context }
    }

    fn update(&self, update: Update) {
        update_span(
            u64::from_be_bytes(self.context.span_id().to_bytes()),
            update,
        );
    }
}

impl opentelemetry::trace::Span for RecordingSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        self.update(Update::Event(RecordedEvent {
            name: name.into(),
            time: EventTime::Wall(timestamp),
            attributes,
        }));
    }

    fn span_context(&self) -> &SpanContext {
        &self.context
    }

    /// True: telemark ends the span with its call, and what is added after
    /// that is dropped.
    fn is_recording(&self) -> bool {
        true
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        self.update(Update::Attribute(attribute));
    }

    fn set_status(&mut self, status: Status) {
        self.update(Update::Status(status));
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        self.update(Update::Name(new_name.into()));
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        self.update(Update::Link(Link::new(span_context, attributes, 0)));
    }

    /// Does nothing: the span ends when its call does.
    fn end_with_timestamp(&mut self, _timestamp: SystemTime) {}
}

/// Adds an event to the span current in the OpenTelemetry context (a
/// circuit breaker's, inside a `#[traced]` call): a telemark span takes it
/// through [`RecordingSpan`], any other recording span through its own API.
pub(crate) fn event_on_current_span(name: &'static str, attributes: Vec<KeyValue>) {
    Context::map_current(|cx| {
        if cx.has_active_span() {
            cx.span().add_event(name, attributes);
        }
    });
}
