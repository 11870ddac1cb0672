//! `tracing` interop (feature `tracing`).
//!
//! - [`SpanEventLayer`]: a `tracing-subscriber` layer that records each log
//!   event made inside a sampled `#[traced]` call as an event of that span
//!   (the message as its name; the level, target and fields as attributes).
//! - [`TraceIdFormat`]: wraps a `fmt` event format so that each log line
//!   made inside a sampled `#[traced]` call carries its `trace_id` and
//!   `span_id`, in text or JSON, and logs can be joined to traces.
//!
//! ```
//! use telemark_runtime::integrations::tracing::{SpanEventLayer, TraceIdFormat};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer().event_format(TraceIdFormat::text(
//!         tracing_subscriber::fmt::format(),
//!     )))
//!     .with(SpanEventLayer::new());
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(order = 7, "paid"); // outside a sampled span: no ids
//! });
//! ```
//!
//! Only telemark's own sampled spans are seen: a span another tracer made
//! current gives neither events nor ids. Outside a sampled span, both cost
//! one thread-local read per event.

use std::fmt;

use opentelemetry::KeyValue;
use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::trace::current_span;

/// Records log events made inside a sampled `#[traced]` call as events of
/// its span: named by the event's message (else its metadata name), with
/// `level`, `target` and the event's fields as attributes (`Debug` text for
/// values that are not numbers, booleans or strings). At most 128 events
/// per span, as for every addition (see `current_span`).
///
/// ```
/// use telemark_runtime::integrations::tracing::SpanEventLayer;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(SpanEventLayer::new());
/// # drop(subscriber);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanEventLayer {
    _private: (),
}

impl SpanEventLayer {
    /// The layer.
    pub fn new() -> Self {
        SpanEventLayer::default()
    }
}

impl<S: Subscriber> Layer<S> for SpanEventLayer {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let span = current_span();
        if !span.is_recording() {
            return;
        }
        let metadata = event.metadata();
        let mut fields = EventFields {
            message: None,
            attributes: vec![
                KeyValue::new("level", metadata.level().as_str()),
                KeyValue::new("target", metadata.target()),
            ],
        };
        event.record(&mut fields);
        let name = match fields.message {
            Some(message) => message,
            None => metadata.name().to_owned(),
        };
        span.add_event(name, fields.attributes);
    }
}

/// An event's fields as span event attributes.
struct EventFields {
    message: Option<String>,
    attributes: Vec<KeyValue>,
}

impl Visit for EventFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let value: opentelemetry::Value = match i64::try_from(value) {
            Ok(small) => small.into(),
            Err(_) => value.to_string().into(),
        };
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.attributes
                .push(KeyValue::new(field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.attributes.push(KeyValue::new(field.name(), text));
        }
    }
}

/// A `tracing-subscriber` event format that adds the `trace_id` and
/// `span_id` of the sampled `#[traced]` span a log event is made in, around
/// the line `inner` writes:
///
/// - [`TraceIdFormat::text`]: `trace_id=… span_id=… ` before the line;
/// - [`TraceIdFormat::json`]: `"trace_id":"…","span_id":"…"` as the first
///   members of the JSON object (for `format().json()`).
///
/// ```
/// use telemark_runtime::integrations::tracing::TraceIdFormat;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let json_lines = tracing_subscriber::fmt::layer()
///     .event_format(TraceIdFormat::json(tracing_subscriber::fmt::format().json()));
/// let subscriber = tracing_subscriber::registry().with(json_lines);
/// # drop(subscriber);
/// ```
#[derive(Debug, Clone)]
pub struct TraceIdFormat<F> {
    inner: F,
    json: bool,
}

impl<F> TraceIdFormat<F> {
    /// Ids before each line of a text format.
    pub fn text(inner: F) -> Self {
        TraceIdFormat { inner, json: false }
    }

    /// Ids as the first members of each line of a JSON format.
    pub fn json(inner: F) -> Self {
        TraceIdFormat { inner, json: true }
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIdFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = current_span().ids() else {
            return self.inner.format_event(context, writer, event);
        };
        if !self.json {
            write!(writer, "trace_id={trace_id} span_id={span_id} ")?;
            return self.inner.format_event(context, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(context, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(members) => {
                let separator = if members.trim_start().starts_with('}') {
                    ""
                } else {
                    ","
                };
                write!(
                    writer,
                    "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"{separator}{members}"
                )
            }
            // Not a JSON object after all: keep the line as it is.
            None => writer.write_str(&line),
        }
    }
}
