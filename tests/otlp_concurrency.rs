//! Span export over OTLP/HTTP against a slow collector: batches are sent
//! several at once, never more than `max_concurrent_exports`, every span
//! arrives once, and spans the collector says it rejected are counted as
//! dropped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use telemark::trace::{BatchLimits, Sampler};
use telemark::Traces;

#[telemark::traced]
fn unit_of_work(item: u32) -> u32 {
    item * 2
}

/// What the collector saw.
#[derive(Default)]
struct Seen {
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    requests: AtomicUsize,
    span_ids: Mutex<Vec<Vec<u8>>>,
}

/// An OTLP/HTTP collector that takes `hold` to answer each request and
/// rejects one span of each.
async fn slow_collector(hold: Duration) -> (std::net::SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = Arc::clone(&shared);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
                            seen.requests.fetch_add(1, Ordering::SeqCst);
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let request = ExportTraceServiceRequest::decode(body).unwrap();
                            let spans = request
                                .resource_spans
                                .iter()
                                .flat_map(|r| &r.scope_spans)
                                .flat_map(|s| &s.spans);
                            seen.span_ids
                                .lock()
                                .unwrap()
                                .extend(spans.map(|span| span.span_id.clone()));
                            tokio::time::sleep(hold).await;
                            seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                            let answer = ExportTraceServiceResponse {
                                partial_success: Some(ExportTracePartialSuccess {
                                    rejected_spans: 1,
                                    error_message: "one span was too old".into(),
                                }),
                            };
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(
                                    answer.encode_to_vec(),
                                )),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, seen)
}

fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_go_out_at_once_within_the_bound_and_rejected_spans_are_dropped() {
    let (address, seen) = slow_collector(Duration::from_millis(300)).await;
    let telemetry = telemark::builder!()
        .without_server()
        .traces(
            Traces::otlp_http(format!("http://{address}/v1/traces"))
                .sampler(Sampler::AlwaysOn)
                .batch_limits(BatchLimits {
                    max_export_batch_size: 10,
                    max_concurrent_exports: 3,
                    scheduled_delay: Duration::from_millis(50),
                    ..BatchLimits::default()
                }),
        )
        .start()
        .unwrap();
    let calls = 100;
    for item in 0..calls {
        assert_eq!(unit_of_work(item), item * 2);
    }
    let (telemetry, flushed) = tokio::task::spawn_blocking(move || {
        let flushed = telemetry.flush_traces(Duration::from_secs(20));
        (telemetry, flushed)
    })
    .await
    .unwrap();
    assert!(flushed);

    let ids = seen.span_ids.lock().unwrap().clone();
    assert_eq!(ids.len(), calls as usize, "every span was sent");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "once");
    let requests = seen.requests.load(Ordering::SeqCst);
    assert!(requests >= 10, "batches of at most 10: {requests} requests");
    assert_eq!(
        seen.most_in_flight.load(Ordering::SeqCst),
        3,
        "three exports were under way at once, and never more"
    );
    let text = telemetry.render_metrics();
    assert_eq!(
        counter(&text, "telemark_spans_dropped_total"),
        requests as f64
    );
    assert_eq!(
        counter(&text, "telemark_spans_exported_total"),
        (calls as usize - requests) as f64
    );
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
}
