//! Spans exported over OTLP/gRPC to an in-process collector, and an
//! unreachable collector that must not disturb the application.
#![cfg(not(feature = "disable-instrumentation"))]

use std::time::Duration;

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use telemark::http::HeaderMap;
use telemark::propagation::{extract_context, inject_context};
use telemark::trace::Sampler;
use telemark::{traced, Traces};

#[traced(kind = client, fields(peer.service = "inventory"))]
fn call_inventory(item: u32) -> u32 {
    let mut headers = HeaderMap::new();
    inject_context(&mut headers);
    // The "other service": a fresh thread with only the headers.
    std::thread::spawn(move || {
        let _parent = extract_context(&headers).attach();
        serve_inventory(item)
    })
    .join()
    .unwrap()
}

#[traced(kind = server, args(item = display))]
fn serve_inventory(item: u32) -> u32 {
    item * 10
}

#[traced]
async fn checkout() -> Result<u32, String> {
    let stock = call_inventory(4);
    tokio::task::yield_now().await;
    charge(stock).await
}

#[traced(err)]
async fn charge(amount: u32) -> Result<u32, String> {
    if amount > 10 {
        Err(format!("declined: {amount}"))
    } else {
        Ok(amount)
    }
}

/// A string attribute as the collector received it (it keeps the protobuf
/// value's `Debug` text: `Some(AnyValue { value: Some(StringValue("x")) })`).
fn string_attribute(span: &ExportedSpan, key: &str) -> String {
    let raw = span
        .attributes
        .get(key)
        .unwrap_or_else(|| panic!("attribute {key} on {span:?}"));
    raw.split_once("StringValue(\"")
        .and_then(|(_, rest)| rest.split_once("\")"))
        .map(|(value, _)| value.to_owned())
        .unwrap_or_else(|| panic!("{key} is not a string: {raw}"))
}

/// Exports everything queued and stops (off the async worker: both block).
async fn flush_and_shut_down(telemetry: telemark::Telemetry) {
    let flushed = tokio::task::spawn_blocking(move || {
        let flushed = telemetry.flush_traces(Duration::from_secs(10));
        telemetry.shutdown();
        flushed
    })
    .await
    .unwrap();
    assert!(flushed, "spans exported in time");
}

/// The span pipeline is process-wide: tests that install one take turns.
static PIPELINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[traced]
async fn spawns_child() {
    use telemark::opentelemetry::context::FutureExt;
    tokio::spawn(spawned().with_current_context())
        .await
        .unwrap();
}

#[traced]
async fn spawned() {}

#[traced]
async fn never_finishes() {
    std::future::pending::<()>().await;
}

#[traced]
fn panics_here() {
    panic!("boom");
}

fn by_name<'a>(spans: &'a [ExportedSpan], name: &str) -> &'a ExportedSpan {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| {
            panic!(
                "span {name} in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The lock only serialises this binary's tests; nothing awaited here takes it.
#[allow(clippy::await_holding_lock)]
async fn spans_reach_an_otlp_grpc_collector_with_their_parent_links() {
    let _turn = PIPELINE.lock().unwrap_or_else(|p| p.into_inner());
    let mut collector = FakeCollectorServer::start()
        .await
        .expect("collector starts");
    let telemetry = telemark::builder!()
        .without_server()
        .service_name("otlp-test")
        .traces(Traces::otlp_grpc(collector.endpoint()).sampler(Sampler::AlwaysOn))
        .start()
        .expect("telemetry starts");

    assert_eq!(checkout().await, Err("declined: 40".to_owned()));
    spawns_child().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(5), never_finishes())
            .await
            .is_err()
    );
    assert!(std::panic::catch_unwind(panics_here).is_err());
    flush_and_shut_down(telemetry).await;

    let spans = collector.exported_spans(8, Duration::from_secs(10)).await;
    assert_eq!(spans.len(), 8, "{spans:#?}");
    let checkout = by_name(&spans, "checkout");
    let client = by_name(&spans, "call_inventory");
    let server = by_name(&spans, "serve_inventory");
    let charge = by_name(&spans, "charge");

    assert_eq!(checkout.parent_span_id, "");
    for span in [client, server, charge] {
        assert_eq!(span.trace_id, checkout.trace_id, "one trace: {span:?}");
    }
    assert_eq!(client.parent_span_id, checkout.span_id);
    assert_eq!(
        server.parent_span_id, client.span_id,
        "propagated through headers"
    );
    assert_eq!(charge.parent_span_id, checkout.span_id);

    assert_eq!(client.kind, "SPAN_KIND_CLIENT");
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(string_attribute(client, "peer.service"), "inventory");
    assert_eq!(string_attribute(server, "item"), "4");
    assert_eq!(
        string_attribute(server, "code.function.name"),
        "otlp::serve_inventory"
    );
    assert_eq!(string_attribute(server, "code.file.path"), "tests/otlp.rs");

    let status = charge.status.as_ref().expect("a status");
    assert_eq!(status.message, "declined: 40");
    assert_eq!(charge.events[0].name, "exception");
    assert!(checkout.end_time_unix_nano >= charge.end_time_unix_nano);

    let parent = by_name(&spans, "spawns_child");
    let child = by_name(&spans, "spawned");
    assert_eq!(
        child.parent_span_id, parent.span_id,
        "spawned with its parent"
    );
    assert_eq!(child.trace_id, parent.trace_id);
    let cancelled = by_name(&spans, "never_finishes");
    assert!(cancelled.attributes["telemark.cancelled"].contains("BoolValue(true)"));
    let panicked = by_name(&spans, "panics_here");
    assert_eq!(
        panicked.status.as_ref().expect("a status").message,
        "the function panicked"
    );
    assert_eq!(panicked.events[0].name, "exception");
}

#[traced]
fn sampled_out_root() -> u8 {
    sampled_out_child()
}

#[traced]
fn sampled_out_child() -> u8 {
    1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn sampled_out_calls_reach_the_collector_only_under_a_sampled_parent() {
    let _turn = PIPELINE.lock().unwrap_or_else(|p| p.into_inner());
    let mut collector = FakeCollectorServer::start()
        .await
        .expect("collector starts");
    let telemetry = telemark::builder!()
        .without_server()
        .traces(
            Traces::otlp_grpc(collector.endpoint())
                .sampler(Sampler::ParentBased(telemark::trace::Root::AlwaysOff)),
        )
        .start()
        .expect("telemetry starts");
    for _ in 0..10 {
        sampled_out_root();
    }
    // One call under a sampled remote parent, as if extracted from headers.
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    {
        let _parent = extract_context(&headers).attach();
        sampled_out_root();
    }
    flush_and_shut_down(telemetry).await;
    let spans = collector.exported_spans(3, Duration::from_secs(3)).await;
    assert_eq!(
        spans.len(),
        2,
        "only the sampled call's two spans: {spans:#?}"
    );
    let root = by_name(&spans, "sampled_out_root");
    assert_eq!(root.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(root.parent_span_id, "00f067aa0ba902b7");
    assert_eq!(
        by_name(&spans, "sampled_out_child").parent_span_id,
        root.span_id
    );
}

#[traced]
fn while_collector_down(x: u32) -> u32 {
    x + 1
}

#[test]
fn an_unreachable_collector_drops_and_counts_spans_without_failing_calls() {
    let _turn = PIPELINE.lock().unwrap_or_else(|p| p.into_inner());
    let telemetry = telemark::builder!()
        .without_server()
        .traces(
            // Nothing listens on port 9 of loopback.
            Traces::otlp_grpc("http://127.0.0.1:9")
                .sampler(Sampler::AlwaysOn)
                .batch_limits(telemark::trace::BatchLimits {
                    export_timeout: Duration::from_secs(2),
                    ..telemark::trace::BatchLimits::default()
                }),
        )
        .start()
        .expect("telemetry starts even though the collector is down");
    let dropped = |t: &telemark::Telemetry| -> u64 {
        t.render_metrics()
            .lines()
            .find_map(|line| line.strip_prefix("telemark_spans_dropped_total "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = dropped(&telemetry);
    for x in 0..50 {
        assert_eq!(while_collector_down(x), x + 1);
    }
    assert!(telemetry.flush_traces(Duration::from_secs(10)));
    assert_eq!(
        dropped(&telemetry) - before,
        50,
        "every span the collector never got is counted"
    );
    telemetry.shutdown();
}
