//! What a service behind `HttpServerLayer` propagates when its sampler does
//! not sample roots (parent-based, always-off roots): a request with no
//! trace, or with only baggage, is not sampled, and the calls its handler
//! makes say so (sampled flag off) with the caller's baggage; a caller that
//! sampled is followed. Its own binary: the pipeline is process-wide.
//! `cargo test --features tower --test http_unsampled`
#![cfg(all(feature = "tower", not(feature = "disable-instrumentation")))]

mod common;

use telemark::integrations::http_server::HttpServerLayer;
use telemark::opentelemetry::baggage::BaggageExt;
use telemark::opentelemetry::trace::TraceContextExt;
use telemark::trace::{Root, Sampler};
use telemark::Traces;

/// The headers a call made by the handler would carry, as its answer.
fn outgoing(_: http::Request<()>) -> http::Response<http::HeaderMap> {
    let mut headers = http::HeaderMap::new();
    telemark::propagation::inject_context(&mut headers);
    http::Response::new(headers)
}

/// One request with `headers` through the layer: what the handler's own
/// outgoing call carries.
async fn handler_propagates(headers: &[(&str, &str)]) -> telemark::opentelemetry::Context {
    let mut service =
        tower_layer::Layer::layer(&HttpServerLayer::new(), common::AnswerAtOnce(outgoing));
    let mut request = http::Request::get("http://shop.internal/price/7");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tower_service::Service::call(&mut service, request.body(()).unwrap())
        .await
        .unwrap();
    telemark::propagation::extract_context(response.into_body().get_ref())
}

#[tokio::test]
async fn unsampled_requests_propagate_the_decision_and_baggage() {
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let telemetry = telemark::builder!()
        .without_server()
        .traces(Traces::exporter(exporter.clone()).sampler(Sampler::ParentBased(Root::AlwaysOff)))
        .start()
        .unwrap();

    // No trace: not sampled, and the handler's call says so.
    let sent = handler_propagates(&[]).await;
    let context = sent.span().span_context().clone();
    assert!(context.is_valid() && !context.is_sampled(), "{context:?}");

    // Only baggage: the same, and the baggage goes on.
    let sent = handler_propagates(&[("baggage", "tenant=acme")]).await;
    let context = sent.span().span_context().clone();
    assert!(context.is_valid() && !context.is_sampled(), "{context:?}");
    assert_eq!(
        sent.baggage().get("tenant").map(|value| value.to_string()),
        Some("acme".to_owned())
    );

    // A caller that did not sample: its trace id and decision go on.
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let sent = handler_propagates(&[("traceparent", unsampled)]).await;
    let context = sent.span().span_context().clone();
    assert_eq!(
        format!("{:032x}", context.trace_id()),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(!context.is_sampled());

    // A caller that sampled is followed: the request's span is sampled and
    // the handler's call carries it.
    let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let sent = handler_propagates(&[("traceparent", sampled)]).await;
    let context = sent.span().span_context().clone();
    assert!(context.is_sampled());
    assert_eq!(
        format!("{:032x}", context.trace_id()),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(telemetry.flush_traces(std::time::Duration::from_secs(5)));
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(
        spans.len(),
        1,
        "only the sampled caller's request: {spans:?}"
    );
    assert_eq!(spans[0].span_context.span_id(), context.span_id());
}
