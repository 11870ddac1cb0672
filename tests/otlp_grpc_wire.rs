//! OTLP/gRPC as it goes over the wire, read by a bare HTTP/2 server: the
//! gRPC headers, the user's header, a gzipped message behind its 5-byte
//! prefix, the collector's partial success (rejected spans are dropped),
//! and a collector that answers with an error status.
#![cfg(not(feature = "disable-instrumentation"))]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use telemark::trace::{BatchLimits, Otlp, OtlpCompression, Sampler};
use telemark::{traced, Traces};

#[traced]
fn reserve_seat(seat: u32) -> u32 {
    seat + 1
}

/// What the collector saw of one request.
struct Seen {
    headers: http::HeaderMap,
    /// The message's compressed flag.
    compressed: u8,
    request: ExportTraceServiceRequest,
}

/// How the collector answers.
#[derive(Clone, Copy)]
enum Answer {
    /// Status OK in the trailers, after a partial success rejecting one
    /// span of each request.
    RejectOne,
    /// A trailers-only answer: status UNAVAILABLE and a percent-encoded
    /// message.
    Unavailable,
}

/// A gRPC collector on a bare HTTP/2 server (no gRPC library).
async fn collector(answer: Answer) -> (std::net::SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = Arc::clone(&shared);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let length = u32::from_be_bytes(body[1..5].try_into().unwrap());
                            assert_eq!(body.len(), 5 + length as usize, "one whole message");
                            let mut message = body[5..].to_vec();
                            if body[0] == 1 {
                                let mut plain = Vec::new();
                                flate2::read::GzDecoder::new(&message[..])
                                    .read_to_end(&mut plain)
                                    .unwrap();
                                message = plain;
                            }
                            let gzip = body[0] == 1;
                            seen.lock().unwrap().push(Seen {
                                headers: parts.headers,
                                compressed: body[0],
                                request: ExportTraceServiceRequest::decode(&message[..]).unwrap(),
                            });
                            Ok::<_, std::convert::Infallible>(respond(answer, gzip))
                        }
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
    (address, seen)
}

type AnswerBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// The answer, gzipped as the request was (as the OpenTelemetry
/// Collector, a grpc-go server, answers).
fn respond(answer: Answer, gzip: bool) -> http::Response<AnswerBody> {
    let mut response = http::Response::builder().header("content-type", "application/grpc");
    match answer {
        Answer::RejectOne => {
            let mut message = ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: 1,
                    error_message: "one span was too old".into(),
                }),
            }
            .encode_to_vec();
            if gzip {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(&message).unwrap();
                message = encoder.finish().unwrap();
                response = response.header("grpc-encoding", "gzip");
            }
            let mut framed = vec![u8::from(gzip)];
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(&message);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            let body = Full::new(Bytes::from(framed))
                .with_trailers(async move { Some(Ok(trailers)) })
                .boxed();
            response.body(body).unwrap()
        }
        Answer::Unavailable => response
            .header("grpc-status", "14")
            .header("grpc-message", "collector%20overloaded")
            .body(Full::new(Bytes::new()).boxed())
            .unwrap(),
    }
}

fn counter(telemetry: &telemark::Telemetry, name: &str) -> u64 {
    let text = telemetry.render_metrics();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in\n{text}"))
}

/// Starts a pipeline to `address`, makes `calls` spans, flushes them, and
/// says how many were exported and dropped meanwhile.
async fn export_spans(address: std::net::SocketAddr, calls: u32) -> (u64, u64) {
    let telemetry = telemark::builder!()
        .without_server()
        .traces(
            Traces::otlp_with(
                Otlp::grpc(format!("http://{address}"))
                    .header("x-tenant", "blue")
                    .compression(OtlpCompression::Gzip)
                    .timeout(Duration::from_secs(5)),
            )
            .sampler(Sampler::AlwaysOn)
            .batch_limits(BatchLimits {
                max_export_batch_size: 10,
                scheduled_delay: Duration::from_millis(20),
                ..BatchLimits::default()
            }),
        )
        .start()
        .unwrap();
    let before = (
        counter(&telemetry, "telemark_spans_exported_total"),
        counter(&telemetry, "telemark_spans_dropped_total"),
    );
    for seat in 0..calls {
        assert_eq!(reserve_seat(seat), seat + 1);
    }
    tokio::task::spawn_blocking(move || {
        telemetry.flush_traces(Duration::from_secs(10));
        let after = (
            counter(&telemetry, "telemark_spans_exported_total"),
            counter(&telemetry, "telemark_spans_dropped_total"),
        );
        telemetry.shutdown();
        (after.0 - before.0, after.1 - before.1)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_requests_carry_gzipped_spans_and_the_collectors_answers_are_counted() {
    let (address, seen) = collector(Answer::RejectOne).await;
    let (exported, dropped) = export_spans(address, 40).await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let requests = seen.len() as u64;
    assert!(requests >= 4, "batches of at most 10: {requests} requests");
    assert_eq!(dropped, requests, "one span rejected per request");
    assert_eq!(exported, 40 - requests);
    let mut spans = 0;
    for request in &seen {
        let headers = &request.headers;
        assert_eq!(headers["content-type"], "application/grpc");
        assert_eq!(headers["te"], "trailers");
        assert_eq!(headers["grpc-encoding"], "gzip");
        assert_eq!(headers["grpc-timeout"], "5000m");
        assert_eq!(headers["x-tenant"], "blue");
        let agent = headers["user-agent"].to_str().unwrap();
        assert!(agent.starts_with("telemark/"), "{agent}");
        assert_eq!(request.compressed, 1);
        for span in request
            .request
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .flat_map(|scope| &scope.spans)
        {
            assert_eq!(span.name, "reserve_seat");
            spans += 1;
        }
    }
    assert_eq!(spans, 40, "every span was sent once");

    // A collector that answers UNAVAILABLE: every span it was sent is
    // dropped, and the calls go on unharmed.
    let (address, seen) = collector(Answer::Unavailable).await;
    let (exported, dropped) = export_spans(address, 25).await;
    assert_eq!((exported, dropped), (0, 25));
    let sent: usize = seen
        .lock()
        .unwrap()
        .iter()
        .map(|request| request.request.resource_spans[0].scope_spans[0].spans.len())
        .sum();
    assert_eq!(sent, 25);
}
