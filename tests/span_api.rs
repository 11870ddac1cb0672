//! What code inside a `#[traced]` call adds to its span, through telemark's
//! `current_span()` and through OpenTelemetry's `Context::current().span()`,
//! reaches the exported span: attributes, events, links, errors, status and
//! name, on the span's thread, after `.await`s and from other threads.
#![cfg(not(feature = "disable-instrumentation"))]

mod common;

use std::time::Duration;

use opentelemetry_sdk::trace::SpanData;
use telemark::opentelemetry::trace::{
    SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use telemark::opentelemetry::{Context, KeyValue, Value};
use telemark::trace::current_span;
use telemark::traced;

use common::span_fixture as fixture;

fn exported(name: &str) -> SpanData {
    common::exported_span(fixture(), name)
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn event_names(span: &SpanData) -> Vec<String> {
    span.events
        .iter()
        .map(|event| event.name.to_string())
        .collect()
}

fn linked() -> SpanContext {
    SpanContext::new(
        TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736_u128),
        SpanId::from(0x00f067aa0ba902b7_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    )
}

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for Declined {}

#[traced]
fn charge_with_telemark_api(cents: i64) -> i64 {
    let span = current_span();
    assert!(span.is_recording());
    span.set_attribute(KeyValue::new("payment.cents", cents));
    span.add_event(
        "card authorised",
        vec![KeyValue::new("card.network", "visa")],
    );
    span.add_link(linked(), vec![KeyValue::new("link.reason", "batch")]);
    span.record_error(&Declined);
    span.set_status(Status::error("declined once"));
    span.update_name("charge card");
    cents
}

#[test]
fn the_telemark_api_adds_to_the_exported_span() {
    fixture();
    assert_eq!(
        charge_with_telemark_api(250),
        250,
        "the result is unchanged"
    );
    let span = exported("charge card");
    assert_eq!(attribute(&span, "payment.cents"), Some(Value::I64(250)));
    assert_eq!(event_names(&span), ["card authorised", "exception"]);
    let exception = &span.events[1];
    assert!(exception
        .attributes
        .contains(&KeyValue::new("exception.message", "card declined")));
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.links[0].span_context, linked());
    assert_eq!(span.status, Status::error("declined once"));
    assert!(
        attribute(&span, "code.function.name").is_some(),
        "renamed, still the function's span"
    );
}

#[traced]
fn charge_with_opentelemetry_api(cents: i64) -> i64 {
    let cx = Context::current();
    let span = cx.span();
    assert!(span.is_recording(), "the context holds a recording span");
    span.set_attribute(KeyValue::new("payment.cents", cents));
    span.add_event("card authorised", vec![]);
    span.add_link(linked(), vec![]);
    span.set_status(Status::Ok);
    span.update_name("charge card (otel)");
    cents
}

#[test]
fn the_opentelemetry_api_on_the_current_context_adds_to_the_exported_span() {
    fixture();
    charge_with_opentelemetry_api(99);
    let span = exported("charge card (otel)");
    assert_eq!(attribute(&span, "payment.cents"), Some(Value::I64(99)));
    assert_eq!(event_names(&span), ["card authorised"]);
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.status, Status::Ok);
}

#[traced(err)]
fn ok_status_is_final() -> Result<(), String> {
    current_span().set_status(Status::Ok);
    Err("returned after the status was set".into())
}

#[traced]
fn error_status_without_an_error_result() -> u8 {
    current_span().set_status(Status::error("degraded"));
    current_span().set_status(Status::Unset); // changes nothing
    1
}

#[test]
fn a_status_set_to_ok_is_final_and_an_error_status_stands_on_its_own() {
    fixture();
    ok_status_is_final().unwrap_err();
    error_status_without_an_error_result();
    assert_eq!(exported("ok_status_is_final").status, Status::Ok);
    assert_eq!(
        exported("error_status_without_an_error_result").status,
        Status::error("degraded")
    );
}

#[traced]
fn outer_span() -> (SpanId, SpanId) {
    let outer = current_span().ids().unwrap().1;
    let inner = inner_span();
    assert_eq!(
        current_span().ids().unwrap().1,
        outer,
        "the outer span again"
    );
    current_span().set_attribute(KeyValue::new("level", "outer"));
    (outer, inner)
}

#[traced]
fn inner_span() -> SpanId {
    current_span().set_attribute(KeyValue::new("level", "inner"));
    current_span().ids().unwrap().1
}

#[test]
fn nested_calls_each_add_to_their_own_span() {
    fixture();
    let (outer, inner) = outer_span();
    let (outer_span, inner_span) = (exported("outer_span"), exported("inner_span"));
    assert_eq!(outer_span.span_context.span_id(), outer);
    assert_eq!(inner_span.span_context.span_id(), inner);
    assert_eq!(attribute(&outer_span, "level"), Some(Value::from("outer")));
    assert_eq!(attribute(&inner_span, "level"), Some(Value::from("inner")));
}

#[traced]
async fn across_awaits() {
    current_span().set_attribute(KeyValue::new("before", true));
    tokio::time::sleep(Duration::from_millis(5)).await;
    current_span().set_attribute(KeyValue::new("after", true));
    tokio::task::yield_now().await;
    Context::current().span().add_event("after a yield", vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_call_adds_to_its_span_across_awaits_and_threads() {
    fixture();
    across_awaits().await;
    let span = exported("across_awaits");
    assert_eq!(attribute(&span, "before"), Some(Value::Bool(true)));
    assert_eq!(attribute(&span, "after"), Some(Value::Bool(true)));
    assert_eq!(event_names(&span), ["after a yield"]);
}

#[traced]
fn fans_out_to_threads() {
    let handle = current_span();
    let cx = Context::current();
    std::thread::scope(|scope| {
        scope.spawn(|| handle.set_attribute(KeyValue::new("from.thread", "handle")));
        scope.spawn(|| cx.span().add_event("from a worker thread", vec![]));
    });
}

#[test]
fn additions_from_other_threads_reach_the_span_when_it_ends() {
    fixture();
    fans_out_to_threads();
    let span = exported("fans_out_to_threads");
    assert_eq!(attribute(&span, "from.thread"), Some(Value::from("handle")));
    assert_eq!(event_names(&span), ["from a worker thread"]);
}

#[traced]
fn too_many_additions() {
    let span = current_span();
    for i in 0..200 {
        span.set_attribute(KeyValue::new(format!("key.{i}"), i as i64));
        span.add_event("tick", vec![]);
    }
}

#[test]
fn a_span_takes_at_most_128_attributes_and_events_and_counts_the_rest() {
    fixture();
    too_many_additions();
    let span = exported("too_many_additions");
    let added = span
        .attributes
        .iter()
        .filter(|kv| kv.key.as_str().starts_with("key."))
        .count();
    assert_eq!(added, 128);
    assert_eq!(span.dropped_attributes_count, 72);
    assert_eq!(span.events.len(), 128);
    assert_eq!(span.events.dropped_count, 72);
}

#[test]
fn outside_a_sampled_span_the_api_records_nothing_and_never_fails() {
    fixture();
    let span = current_span();
    assert!(!span.is_recording());
    assert_eq!(span.ids(), None);
    span.set_attribute(KeyValue::new("lost", 1));
    span.add_event("lost", vec![]);
    span.record_error(&Declined);
    span.set_status(Status::error("lost"));
    assert!(!Context::current().span().is_recording());
}

/// Its `Display` adds to the span that records it as `return.value`.
struct Receipt(u8);

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        current_span().set_attribute(KeyValue::new("receipt.formatted", true));
        write!(f, "receipt #{}", self.0)
    }
}

#[traced(ret = display)]
fn issue_receipt() -> Receipt {
    Receipt(3)
}

#[test]
fn a_returned_values_display_may_itself_add_to_the_span() {
    fixture();
    assert_eq!(issue_receipt().0, 3);
    let span = exported("issue_receipt");
    assert_eq!(
        attribute(&span, "return.value"),
        Some(Value::from("receipt #3"))
    );
    assert_eq!(
        attribute(&span, "receipt.formatted"),
        Some(Value::Bool(true))
    );
}

#[traced(ret = display)]
async fn issue_receipt_later() -> Receipt {
    tokio::task::yield_now().await;
    Receipt(4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_returned_values_display_adds_to_its_own_span() {
    fixture();
    assert_eq!(issue_receipt_later().await.0, 4);
    let span = exported("issue_receipt_later");
    assert_eq!(
        attribute(&span, "return.value"),
        Some(Value::from("receipt #4"))
    );
    assert_eq!(
        attribute(&span, "receipt.formatted"),
        Some(Value::Bool(true))
    );
}

#[traced]
fn under_a_vendor_trace_state() -> String {
    Context::map_current(|cx| cx.span().span_context().trace_state().header())
}

/// A remote parent's `tracestate` is kept: by the span's context while it
/// runs (so calls it makes carry it on) and by the exported span.
#[test]
fn a_parents_trace_state_reaches_the_span_and_what_it_propagates() {
    let _spans = fixture();
    let parent = SpanContext::new(
        TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
        SpanId::from(0xb7ad6b7169203331_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "opaque-value")]).unwrap(),
    );
    let seen = {
        let _remote = Context::new().with_remote_span_context(parent).attach();
        under_a_vendor_trace_state()
    };
    assert_eq!(seen, "vendor=opaque-value");
    let span = exported("under_a_vendor_trace_state");
    assert_eq!(
        span.span_context.trace_state().header(),
        "vendor=opaque-value"
    );
    assert_eq!(span.parent_span_id, SpanId::from(0xb7ad6b7169203331_u64));
}
