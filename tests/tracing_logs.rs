//! `tracing` interop with a real `tracing-subscriber`: log events inside a
//! sampled `#[traced]` call become events of its span, and `fmt` lines (text
//! and JSON) carry its trace and span ids; outside, neither.
//! `cargo test --features tracing --test tracing_logs`
#![cfg(all(feature = "tracing", not(feature = "disable-instrumentation")))]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use opentelemetry_sdk::trace::SpanData;
use telemark::integrations::tracing::{SpanEventLayer, TraceIdFormat};
use telemark::opentelemetry::KeyValue;
use telemark::traced;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use common::span_fixture as fixture;

fn exported(name: &str) -> SpanData {
    common::exported_span(fixture(), name)
}

/// Log lines written by `fmt`, captured.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

#[derive(Debug)]
struct Order {
    id: u32,
}

#[traced]
fn pay_order(order: &Order) -> u32 {
    tracing::info!(
        order.id = order.id,
        amount = 250_u64,
        paid = true,
        ?order,
        "order paid"
    );
    tracing::warn!("retrying the receipt");
    order.id
}

#[test]
fn log_events_inside_a_sampled_call_become_events_of_its_span() {
    fixture();
    let subscriber = tracing_subscriber::registry().with(SpanEventLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(pay_order(&Order { id: 7 }), 7);
        tracing::info!("outside any span"); // recorded nowhere, no panic
    });
    let span = exported("pay_order");
    let names: Vec<_> = span.events.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(names, ["order paid", "retrying the receipt"]);
    let paid = &span.events[0].attributes;
    for expected in [
        KeyValue::new("level", "INFO"),
        KeyValue::new("target", "tracing_logs"),
        KeyValue::new("order.id", 7_i64),
        KeyValue::new("amount", 250_i64),
        KeyValue::new("paid", true),
        KeyValue::new("order", "Order { id: 7 }"),
    ] {
        assert!(paid.contains(&expected), "{expected:?} in {paid:?}");
    }
    assert!(span.events[1]
        .attributes
        .contains(&KeyValue::new("level", "WARN")));
}

#[traced]
fn ship_order() {
    tracing::info!(carrier = "post", "order shipped");
}

#[test]
fn text_log_lines_carry_the_spans_trace_and_span_ids() {
    fixture();
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(lines.clone())
            .with_ansi(false)
            .event_format(TraceIdFormat::text(tracing_subscriber::fmt::format())),
    );
    tracing::subscriber::with_default(subscriber, || {
        ship_order();
        tracing::info!("not in a span");
    });
    let span = exported("ship_order");
    let text = lines.text();
    let mut lines = text.lines();
    let inside = lines.next().unwrap();
    let ids = format!(
        "trace_id={} span_id={} ",
        span.span_context.trace_id(),
        span.span_context.span_id()
    );
    assert!(inside.starts_with(&ids), "{inside}");
    assert!(inside.contains("order shipped") && inside.contains("carrier=\"post\""));
    let outside = lines.next().unwrap();
    assert!(!outside.contains("trace_id="), "{outside}");
}

#[traced]
fn refund_order() {
    tracing::error!(reason = "damaged", "order refunded");
}

#[test]
fn json_log_lines_carry_the_ids_as_members() {
    fixture();
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(lines.clone())
            .event_format(TraceIdFormat::json(
                tracing_subscriber::fmt::format().json(),
            )),
    );
    tracing::subscriber::with_default(subscriber, || {
        refund_order();
        tracing::info!("not in a span");
    });
    let span = exported("refund_order");
    let text = lines.text();
    let parsed: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(
        parsed[0]["trace_id"],
        span.span_context.trace_id().to_string().as_str()
    );
    assert_eq!(
        parsed[0]["span_id"],
        span.span_context.span_id().to_string().as_str()
    );
    assert_eq!(parsed[0]["fields"]["message"], "order refunded");
    assert!(parsed[1].get("trace_id").is_none(), "{}", parsed[1]);
}
