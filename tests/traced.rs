//! `#[traced]` spans as an exporter receives them: names, kinds, code
//! attributes, parent and trace ids, status and events.
#![cfg(not(feature = "disable-instrumentation"))]

mod common;

use std::future::Future;
use std::time::Duration;

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use telemark::opentelemetry::trace::{
    SpanId, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use telemark::opentelemetry::{Context, Value};
use telemark::traced;

use common::span_fixture as fixture;

/// Every exported span whose name starts with `prefix`.
fn spans(prefix: &str) -> Vec<SpanData> {
    let fixture = fixture();
    assert!(fixture.telemetry.flush_traces(Duration::from_secs(5)));
    fixture
        .exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|span| span.name.starts_with(prefix))
        .collect()
}

fn one(spans: &[SpanData], name: &str) -> SpanData {
    let found: Vec<_> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "one span {name} among {:?}", names(spans));
    found[0].clone()
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|span| span.name.to_string()).collect()
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

#[traced(name = "basic_lookup", kind = client, fields(db.system = "postgres", rows = 3), args(id = display, filter = debug), ret)]
fn basic_lookup(id: u64, filter: Option<&str>) -> u64 {
    id * 2
}

#[test]
fn a_sync_call_has_one_span_with_name_kind_code_attributes_and_fields() {
    fixture();
    assert_eq!(
        basic_lookup(21, Some("active")),
        42,
        "the result is unchanged"
    );
    let spans = spans("basic_lookup");
    let span = one(&spans, "basic_lookup");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(span.parent_span_id, SpanId::INVALID);
    assert_eq!(
        attribute(&span, "code.function.name"),
        Some(Value::from("traced::basic_lookup"))
    );
    assert_eq!(
        attribute(&span, "code.file.path"),
        Some(Value::from("tests/traced.rs"))
    );
    assert!(matches!(attribute(&span, "code.line.number"), Some(Value::I64(line)) if line > 0));
    assert_eq!(attribute(&span, "db.system"), Some(Value::from("postgres")));
    assert_eq!(attribute(&span, "rows"), Some(Value::I64(3)));
    assert_eq!(attribute(&span, "id"), Some(Value::from("21")));
    assert_eq!(
        attribute(&span, "filter"),
        Some(Value::from("Some(\"active\")"))
    );
    assert_eq!(attribute(&span, "return.value"), Some(Value::from("42")));
    assert!(span.end_time >= span.start_time);
}

#[traced(args(secret = debug))]
fn nested_outer(secret: &str) -> usize {
    nested_inner(1) + nested_inner(2) + secret.len()
}

#[traced]
fn nested_inner(x: usize) -> usize {
    x
}

#[test]
fn nested_sync_calls_are_children_in_one_trace() {
    fixture();
    nested_outer("pw");
    let spans = spans("nested_");
    let outer = one(&spans, "nested_outer");
    let inner: Vec<_> = spans.iter().filter(|s| s.name == "nested_inner").collect();
    assert_eq!(inner.len(), 2);
    for child in inner {
        assert_eq!(child.parent_span_id, outer.span_context.span_id());
        assert_eq!(child.span_context.trace_id(), outer.span_context.trace_id());
        assert!(!child.parent_span_is_remote);
    }
}

#[traced]
async fn async_outer() -> (SpanId, usize) {
    tokio::task::yield_now().await;
    let seen = Context::current().span().span_context().span_id();
    let inner = async_inner().await;
    tokio::task::yield_now().await;
    (seen, inner)
}

#[traced]
async fn async_inner() -> usize {
    tokio::time::sleep(Duration::from_millis(2)).await;
    7
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_spans_are_current_across_awaits_and_parent_nested_calls() {
    fixture();
    let (seen_inside, value) = async_outer().await;
    assert_eq!(value, 7);
    let spans = spans("async_");
    let outer = one(&spans, "async_outer");
    let inner = one(&spans, "async_inner");
    assert_eq!(
        seen_inside,
        outer.span_context.span_id(),
        "Context::current() inside sees the span"
    );
    assert_eq!(inner.parent_span_id, outer.span_context.span_id());
    assert_eq!(inner.span_context.trace_id(), outer.span_context.trace_id());
    // Slept 2 ms; allow for the TSC-to-wall-clock conversion's rounding.
    assert!(inner.end_time.duration_since(inner.start_time).unwrap() >= Duration::from_millis(1));
}

#[traced]
async fn spawn_parent() {
    use telemark::opentelemetry::context::FutureExt;
    let handle = tokio::spawn(spawned_child().with_current_context());
    handle.await.unwrap();
}

#[traced]
async fn spawned_child() {}

#[tokio::test]
async fn spawned_tasks_keep_their_parent_with_with_current_context() {
    fixture();
    spawn_parent().await;
    let spans = spans("spawn");
    let parent = one(&spans, "spawn_parent");
    let child = one(&spans, "spawned_child");
    assert_eq!(child.parent_span_id, parent.span_context.span_id());
}

#[traced(err)]
fn fails(input: &str) -> Result<u32, std::num::ParseIntError> {
    input.parse()
}

#[traced(err = debug)]
async fn fails_async() -> Result<(), String> {
    Err("disk full".to_owned())
}

#[tokio::test]
async fn errors_set_status_error_with_an_exception_event_and_error_type() {
    fixture();
    assert!(fails("x").is_err());
    assert_eq!(fails("5"), Ok(5));
    assert!(fails_async().await.is_err());
    let spans = spans("fails");
    let failed: Vec<_> = spans.iter().filter(|s| s.name == "fails").collect();
    assert_eq!(failed.len(), 2);
    let err = failed.iter().find(|s| s.status != Status::Unset).unwrap();
    let ok = failed.iter().find(|s| s.status == Status::Unset).unwrap();
    assert!(ok.events.is_empty());
    assert_eq!(err.status, Status::error("invalid digit found in string"));
    assert_eq!(
        attribute(err, "error.type"),
        Some(Value::from("core::num::error::ParseIntError"))
    );
    let event = &err.events[0];
    assert_eq!(event.name, "exception");
    assert!(event
        .attributes
        .iter()
        .any(|kv| kv.key.as_str() == "exception.message"
            && kv.value == Value::from("invalid digit found in string")));
    let async_err = one(&spans, "fails_async");
    assert_eq!(async_err.status, Status::error("\"disk full\""));
}

#[traced]
fn panics() {
    panic!("boom");
}

#[test]
fn a_panic_ends_the_span_with_status_error_and_keeps_unwinding() {
    fixture();
    assert!(std::panic::catch_unwind(panics).is_err());
    let spans = spans("panics");
    let span = one(&spans, "panics");
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(span.events[0].name, "exception");
}

#[traced]
async fn panics_in_task() {
    tokio::task::yield_now().await;
    panic!("task boom");
}

#[traced]
async fn panics_when_polled() {
    panic!("poll boom");
}

#[tokio::test]
async fn a_panicking_future_ends_its_span_with_status_error_whoever_drops_it() {
    fixture();
    // Tokio drops a future whose poll panicked while still unwinding.
    let joined = tokio::spawn(panics_in_task()).await;
    assert!(joined.unwrap_err().is_panic());
    // An executor may instead catch the panic and drop the future later,
    // when nothing unwinds any more (as `FutureExt::catch_unwind` does).
    let mut future = Box::pin(panics_when_polled());
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = future.as_mut().poll(&mut context);
    }));
    assert!(caught.is_err());
    drop(future);

    for name in ["panics_in_task", "panics_when_polled"] {
        let spans = spans(name);
        let span = one(&spans, name);
        assert_eq!(
            span.status,
            Status::error("the function panicked"),
            "{name}"
        );
        assert_eq!(span.events[0].name, "exception");
        assert_eq!(
            attribute(&span, "telemark.cancelled"),
            None,
            "{name}: a panic, not a cancellation"
        );
    }
}

#[traced]
async fn cancelled_waiter() {
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_dropped_future_ends_its_span_marked_cancelled() {
    fixture();
    let result = tokio::time::timeout(Duration::from_millis(5), cancelled_waiter()).await;
    assert!(result.is_err());
    let spans = spans("cancelled_waiter");
    let span = one(&spans, "cancelled_waiter");
    assert_eq!(
        attribute(&span, "telemark.cancelled"),
        Some(Value::Bool(true))
    );
    assert_eq!(span.status, Status::Unset);
}

#[traced]
fn under_sdk_span() -> SpanId {
    Context::current().span().span_context().span_id()
}

#[test]
fn a_span_made_with_the_otel_sdk_directly_is_the_parent() {
    fixture();
    let sdk_exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(sdk_exporter.clone())
        .build();
    let tracer = provider.tracer("direct");
    let (outer_id, seen) = tracer.in_span("sdk outer", |cx| {
        (cx.span().span_context().span_id(), under_sdk_span())
    });
    let spans = spans("under_sdk_span");
    let ours = one(&spans, "under_sdk_span");
    assert_eq!(ours.parent_span_id, outer_id);
    assert_eq!(seen, ours.span_context.span_id());
    let sdk_spans = sdk_exporter.get_finished_spans().unwrap();
    assert_eq!(
        sdk_spans[0].span_context.trace_id(),
        ours.span_context.trace_id()
    );
}

#[traced]
fn counted_export() {}

#[test]
fn the_metrics_endpoint_counts_exported_spans() {
    fixture();
    counted_export();
    let _ = spans("counted_export");
    let text = fixture().telemetry.render_metrics();
    let exported: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("telemark_spans_exported_total "))
        .expect("telemark_spans_exported_total")
        .parse()
        .unwrap();
    assert!(exported >= 1.0, "{text}");
    assert!(text.contains("telemark_spans_dropped_total 0"), "{text}");
}

#[traced]
async fn traced_small(x: u64) -> u64 {
    x + 1
}

async fn plain_small(x: u64) -> u64 {
    x + 1
}

#[test]
fn an_async_span_adds_a_few_words_to_the_future() {
    // A call's future moves, whole, into its caller's: a sampled span's
    // record and context are boxed, so every call (sampled or not) moves
    // its function's future and a few words, not the span (144 bytes
    // more, before).
    let traced = std::mem::size_of_val(&traced_small(1));
    let plain = std::mem::size_of_val(&plain_small(1));
    // With caller labels the call also keeps its function's site (a word).
    let words = if cfg!(feature = "caller-labels") {
        5
    } else {
        4
    };
    assert!(
        traced <= plain + 8 * words,
        "traced {traced} bytes, plain {plain}"
    );
}

/// An argument whose `Display` panics.
struct PanickingDisplay;

impl std::fmt::Display for PanickingDisplay {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("display boom")
    }
}

#[traced(args(label = display))]
fn with_a_panicking_argument(label: PanickingDisplay) -> u8 {
    let _ = label;
    7
}

#[traced(args(label = display))]
async fn with_a_panicking_argument_async(label: PanickingDisplay) -> u8 {
    let _ = label;
    7
}

#[traced]
fn after_the_panicking_argument() -> bool {
    Context::map_current(|cx| cx.has_active_span())
}

/// Capturing an argument runs the user's `Display`: when it panics, the
/// panic reaches the caller, the half-made span is dropped (neither
/// exported nor left current), and later spans on the thread are whole.
#[test]
fn an_argument_whose_display_panics_leaves_no_span_behind() {
    fixture();
    let caught = std::panic::catch_unwind(|| with_a_panicking_argument(PanickingDisplay));
    assert!(caught.is_err());
    let caught = std::panic::catch_unwind(|| {
        let mut future = std::pin::pin!(with_a_panicking_argument_async(PanickingDisplay));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let _ = future.as_mut().poll(&mut context);
    });
    assert!(caught.is_err());
    assert!(
        !Context::map_current(|cx| cx.has_active_span()),
        "no span left current"
    );
    assert!(after_the_panicking_argument(), "the next span is current");
    assert!(!Context::map_current(|cx| cx.has_active_span()));
    let spans = spans("after_the_panicking_argument");
    let span = one(&spans, "after_the_panicking_argument");
    assert_eq!(
        span.parent_span_id,
        SpanId::INVALID,
        "a root: no leftover parent"
    );
}
