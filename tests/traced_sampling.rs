//! Sampling, the kill switch, queue overflow and the OTEL_* environment for
//! `#[traced]` (its own binary: each phase installs its own pipeline, one
//! after the other).
#![cfg(not(feature = "disable-instrumentation"))]

mod common;
use common::rendered_counter;

use std::future::Future;
use std::time::Duration;

use telemark::opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use telemark::opentelemetry::Context;
use telemark::opentelemetry_sdk::error::OTelSdkResult;
use telemark::opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData, SpanExporter};
use telemark::trace::{BatchLimits, Root, Sampler};
use telemark::{traced, Telemetry, Traces};

#[traced]
fn root() -> usize {
    child() + 1
}

#[traced]
fn child() -> usize {
    1
}

#[traced]
async fn panicking_root() {
    panic!("inside a poll");
}

/// The headers a request made here would carry.
#[traced]
fn outgoing_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    telemark::propagation::inject_context(&mut headers);
    headers
}

#[traced]
fn unsampled_root_with_inner_parent(remote: &SpanContext) {
    let _inner = Context::current()
        .with_remote_span_context(remote.clone())
        .attach();
    root();
}

fn start(traces: Traces) -> Telemetry {
    telemark::builder!()
        .without_server()
        .traces(traces)
        .start()
        .expect("telemetry starts")
}

fn exported(telemetry: &Telemetry, exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    assert!(telemetry.flush_traces(Duration::from_secs(5)));
    exporter.get_finished_spans().unwrap()
}

/// An exporter slow enough for the queue to overflow.
#[derive(Debug)]
struct SlowExporter;

impl SpanExporter for SlowExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        std::thread::sleep(Duration::from_millis(20));
        Ok(())
    }
}

#[test]
fn sampling_kill_switch_overflow_and_environment() {
    // Unsampled roots: neither they nor their children are exported.
    let exporter = InMemorySpanExporter::default();
    let telemetry =
        start(Traces::exporter(exporter.clone()).sampler(Sampler::ParentBased(Root::AlwaysOff)));
    assert_eq!(root(), 2);
    assert!(exported(&telemetry, &exporter).is_empty());
    // A call made inside one says so: the next service does not sample a
    // fragment of the trace on its own.
    let headers = outgoing_headers();
    let traceparent = headers["traceparent"].to_str().unwrap().to_owned();
    assert!(
        traceparent.starts_with("00-") && traceparent.ends_with("-00"),
        "{traceparent}"
    );
    let next = telemark::propagation::extract_context(&headers);
    let next = next.span().span_context().clone();
    assert!(next.is_valid() && !next.is_sampled() && next.is_remote());
    assert!(exported(&telemetry, &exporter).is_empty());

    // A sampled remote parent (as extracted from `traceparent`) is followed.
    let remote = SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
        SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let guard = Context::current()
        .with_remote_span_context(remote.clone())
        .attach();
    root();
    drop(guard);
    let spans = exported(&telemetry, &exporter);
    assert_eq!(spans.len(), 2, "{spans:?}");
    let root_span = spans.iter().find(|s| s.name == "root").unwrap();
    let child_span = spans.iter().find(|s| s.name == "child").unwrap();
    assert_eq!(root_span.span_context.trace_id(), remote.trace_id());
    assert_eq!(root_span.parent_span_id, remote.span_id());
    assert!(root_span.parent_span_is_remote);
    assert_eq!(child_span.parent_span_id, root_span.span_context.span_id());

    // An unsampled root that panics inside a poll does not leave its thread
    // marked: a sampled parent attached afterwards is followed again.
    exporter.reset();
    {
        let mut future = std::pin::pin!(panicking_root());
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = future.as_mut().poll(&mut context);
        }));
        assert!(polled.is_err());
    }
    let guard = Context::current()
        .with_remote_span_context(remote.clone())
        .attach();
    root();
    drop(guard);
    assert_eq!(
        exported(&telemetry, &exporter).len(),
        2,
        "root and child after the panic"
    );

    // Inside an unsampled root, a span made current by other code parents
    // telemark's spans as usual.
    exporter.reset();
    unsampled_root_with_inner_parent(&remote);
    let spans = exported(&telemetry, &exporter);
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(spans
        .iter()
        .all(|s| s.span_context.trace_id() == remote.trace_id()));

    // An unsampled remote parent is followed too.
    exporter.reset();
    let unsampled = SpanContext::new(
        remote.trace_id(),
        remote.span_id(),
        TraceFlags::default(),
        true,
        TraceState::default(),
    );
    let guard = Context::current()
        .with_remote_span_context(unsampled)
        .attach();
    root();
    drop(guard);
    assert!(exported(&telemetry, &exporter).is_empty());
    telemetry.shutdown();

    // A ratio keeps that fraction of roots (4000 roots: expect 1000, sd 27).
    let exporter = InMemorySpanExporter::default();
    let telemetry = start(
        Traces::exporter(exporter.clone())
            .sampler(Sampler::TraceIdRatio(0.25))
            .batch_limits(BatchLimits {
                max_queue_size: 8192,
                ..BatchLimits::default()
            }),
    );
    for _ in 0..4000 {
        child();
    }
    let kept = exported(&telemetry, &exporter).len();
    assert!(
        (850..=1150).contains(&kept),
        "kept {kept} of 4000 roots at ratio 0.25"
    );
    telemetry.shutdown();

    // Always on, then switched off and on again.
    let exporter = InMemorySpanExporter::default();
    let telemetry = start(Traces::exporter(exporter.clone()).sampler(Sampler::AlwaysOn));
    telemark::set_enabled(false);
    assert_eq!(root(), 2);
    assert!(exported(&telemetry, &exporter).is_empty());
    telemark::set_enabled(true);
    root();
    assert_eq!(exported(&telemetry, &exporter).len(), 2);
    telemetry.shutdown();

    // A ratio outside 0..=1 (or NaN) set in code is an error, as in the
    // environment.
    for ratio in [f64::NAN, -0.5, 1.5] {
        let error = telemark::builder!()
            .without_server()
            .traces(
                Traces::exporter(InMemorySpanExporter::default())
                    .sampler(Sampler::TraceIdRatio(ratio)),
            )
            .start()
            .unwrap_err();
        assert!(
            error.to_string().contains("a ratio must be from 0 to 1"),
            "{error}"
        );
    }

    // Not configured: no pipeline, nothing recorded, nothing panics.
    assert_eq!(root(), 2);

    // A queue of 4 in front of a slow exporter drops spans and counts them.
    let telemetry = start(
        Traces::exporter(SlowExporter)
            .sampler(Sampler::AlwaysOn)
            .batch_limits(BatchLimits {
                max_queue_size: 4,
                max_export_batch_size: 2,
                ..BatchLimits::default()
            }),
    );
    let exported_before = rendered_counter(&telemetry, "telemark_spans_exported_total");
    let dropped_before = rendered_counter(&telemetry, "telemark_spans_dropped_total");
    for _ in 0..100 {
        child();
    }
    assert!(telemetry.flush_traces(Duration::from_secs(10)));
    let exported_now =
        rendered_counter(&telemetry, "telemark_spans_exported_total") - exported_before;
    let dropped_now = rendered_counter(&telemetry, "telemark_spans_dropped_total") - dropped_before;
    assert_eq!(
        exported_now + dropped_now,
        100,
        "every span is exported or counted as dropped"
    );
    assert!(dropped_now > 0, "the queue overflowed");
    telemetry.shutdown();

    // The standard environment: bad values are errors, OTEL_SDK_DISABLED wins.
    // (This test is the only one in its binary, so changing the environment is safe.)
    let start_from_env = || {
        telemark::builder!()
            .without_server()
            .traces(Traces::otlp())
            .start()
    };
    std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon");
    let error = start_from_env().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"carrier-pigeon\""),
        "{error}"
    );
    std::env::remove_var("OTEL_EXPORTER_OTLP_PROTOCOL");

    std::env::set_var("OTEL_TRACES_SAMPLER", "sometimes");
    let error = start_from_env().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("OTEL_TRACES_SAMPLER=\"sometimes\""),
        "{error}"
    );
    std::env::set_var("OTEL_TRACES_SAMPLER", "traceidratio");
    std::env::set_var("OTEL_TRACES_SAMPLER_ARG", "1.5");
    assert!(start_from_env().is_err());
    std::env::remove_var("OTEL_TRACES_SAMPLER");
    std::env::remove_var("OTEL_TRACES_SAMPLER_ARG");

    // A bad endpoint is an error naming its variable, also when start()
    // runs inside async code.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url at all");
    let in_async = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { start_from_env().map(drop) });
    let error = in_async.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("OTEL_EXPORTER_OTLP_ENDPOINT=\"not a url at all\""),
        "{error}"
    );
    std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");

    std::env::set_var("OTEL_RESOURCE_ATTRIBUTES", "team=payments,nonsense");
    let error = start_from_env().unwrap_err();
    assert!(
        error.to_string().contains("\"nonsense\" is not key=value"),
        "{error}"
    );
    std::env::remove_var("OTEL_RESOURCE_ATTRIBUTES");
    let error = telemark::builder!()
        .without_server()
        .traces(Traces::otlp().batch_limits(BatchLimits {
            max_export_batch_size: 0,
            ..BatchLimits::default()
        }))
        .start()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("batch limits must all be positive"),
        "{error}"
    );

    std::env::set_var("OTEL_SDK_DISABLED", "perhaps");
    assert!(start_from_env().is_err());
    std::env::set_var("OTEL_SDK_DISABLED", "true");
    let exporter = InMemorySpanExporter::default();
    let telemetry = start(Traces::exporter(exporter.clone()).sampler(Sampler::AlwaysOn));
    root();
    assert!(
        !telemetry.flush_traces(Duration::from_millis(100)),
        "no pipeline to flush"
    );
    assert!(exporter.get_finished_spans().unwrap().is_empty());
    std::env::remove_var("OTEL_SDK_DISABLED");
}
