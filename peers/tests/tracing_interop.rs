//! A `#[traced]` call inside a `tracing` span, exported to OpenTelemetry by
//! `tracing-opentelemetry`, becomes that span's child; a `tracing` span
//! inside a `#[traced]` call becomes its child, nested both ways.

use std::future::Future;
use std::time::Duration;

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use telemark::opentelemetry::trace::TracerProvider;
use telemark::trace::Sampler;
use telemark::{traced, Traces};
use tracing_subscriber::layer::SubscriberExt;

#[traced]
fn inside_tracing_span(x: u32) -> u32 {
    x + 1
}

#[traced]
async fn inside_instrumented_future() -> u32 {
    2
}

/// Opens a `tracing` span inside its own span, and calls another
/// `#[traced]` function inside that.
#[traced]
fn outer_traced() -> u32 {
    let _inner = tracing::info_span!("inner tracing").entered();
    inner_traced()
}

#[traced]
fn inner_traced() -> u32 {
    3
}

#[test]
fn traced_calls_are_children_of_tracing_spans() {
    let tracing_exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(tracing_exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing")));
    let telemark_exporter = InMemorySpanExporter::default();
    let telemetry = telemark::builder!()
        .without_server()
        .traces(Traces::exporter(telemark_exporter.clone()).sampler(Sampler::AlwaysOn))
        .start()
        .unwrap();

    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request");
        span.in_scope(|| assert_eq!(inside_tracing_span(1), 2));
        // An async call made under an entered tracing span.
        let _entered = tracing::info_span!("async request").entered();
        let mut future = std::pin::pin!(inside_instrumented_future());
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert_eq!(
            future.as_mut().poll(&mut context),
            std::task::Poll::Ready(2)
        );
    });

    assert!(telemetry.flush_traces(Duration::from_secs(5)));
    let _ = provider.force_flush();
    let tracing_spans = tracing_exporter.get_finished_spans().unwrap();
    let ours = telemark_exporter.get_finished_spans().unwrap();
    for (tracing_name, telemark_name) in [
        ("request", "inside_tracing_span"),
        ("async request", "inside_instrumented_future"),
    ] {
        let parent = tracing_spans
            .iter()
            .find(|span| span.name == tracing_name)
            .unwrap_or_else(|| panic!("tracing span {tracing_name}"));
        let child = ours
            .iter()
            .find(|span| span.name == telemark_name)
            .unwrap_or_else(|| panic!("telemark span {telemark_name}"));
        assert_eq!(
            child.parent_span_id,
            parent.span_context.span_id(),
            "{telemark_name}"
        );
        assert_eq!(
            child.span_context.trace_id(),
            parent.span_context.trace_id()
        );
    }

    // Nested both ways: tracing → #[traced] → tracing → #[traced].
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing")));
    tracing::subscriber::with_default(subscriber, || {
        let _outer = tracing::info_span!("outer tracing").entered();
        assert_eq!(outer_traced(), 3);
    });
    assert!(telemetry.flush_traces(Duration::from_secs(5)));
    let _ = provider.force_flush();
    let tracing_spans = tracing_exporter.get_finished_spans().unwrap();
    let ours = telemark_exporter.get_finished_spans().unwrap();
    let find = |spans: &[opentelemetry_sdk::trace::SpanData], name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("span {name}"))
    };
    let outer_tracing = find(&tracing_spans, "outer tracing");
    let outer = find(&ours, "outer_traced");
    let inner_tracing = find(&tracing_spans, "inner tracing");
    let inner = find(&ours, "inner_traced");
    assert_eq!(outer.parent_span_id, outer_tracing.span_context.span_id());
    assert_eq!(
        inner_tracing.parent_span_id,
        outer.span_context.span_id(),
        "a tracing span inside a #[traced] call is its child"
    );
    assert_eq!(inner.parent_span_id, inner_tracing.span_context.span_id());
    for span in [&outer, &inner_tracing, &inner] {
        assert_eq!(
            span.span_context.trace_id(),
            outer_tracing.span_context.trace_id()
        );
    }
    telemetry.shutdown();
}
