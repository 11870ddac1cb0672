//! The tower layers on a real tonic server and client (the gRPC health
//! service): each call gets a server span named `{service}/{method}` with
//! the `rpc.*` attributes and its gRPC status (from the trailers, or from
//! the headers of a trailers-only answer), Error only for the server's own
//! failures, the client's span as its parent, and the HTTP server metrics
//! by method path.
//! `cargo test --features tower --test grpc_server`
#![cfg(all(feature = "tower", not(feature = "disable-instrumentation")))]

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use opentelemetry_sdk::trace::SpanData;
use telemark::integrations::http_client::{HttpClientLayer, HttpClientService};
use telemark::integrations::http_server::HttpServerLayer;
use telemark::opentelemetry::trace::{SpanKind, Status};
use telemark::opentelemetry::Value;
use telemark::traced;
use tonic::transport::{Channel, Server};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use common::SpanFixture;

/// Spans to memory with the default sampler: parent-based, roots sampled.
fn fixture() -> &'static SpanFixture {
    static FIXTURE: OnceLock<SpanFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| common::memory_traces(telemark::builder!().without_server()))
}

/// Serves the gRPC health service through the layer, on a free port.
async fn serve() -> SocketAddr {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        Server::builder()
            .layer(HttpServerLayer::new())
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap()
    });
    address
}

/// A client channel through telemark's client layer.
async fn channel(address: SocketAddr) -> HttpClientService<Channel> {
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tower_layer::Layer::layer(&HttpClientLayer::new(), channel)
}

/// `Check` for `service`, from inside a traced call.
#[traced]
async fn check(address: SocketAddr, service: &str) -> Result<i32, Code> {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    HealthClient::new(channel(address).await)
        .check(request)
        .await
        .map(|response| response.into_inner().status)
        .map_err(|status| status.code())
}

/// A method the server does not have.
#[traced]
async fn call_missing_method(address: SocketAddr) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel(address).await);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Missing");
    let request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    let answer: Result<tonic::Response<HealthCheckResponse>, tonic::Status> = grpc
        .unary(request, path, tonic_prost::ProstCodec::default())
        .await;
    answer.unwrap_err().code()
}

fn spans() -> Vec<SpanData> {
    assert!(fixture()
        .telemetry
        .flush_traces(std::time::Duration::from_secs(5)));
    fixture().exporter.get_finished_spans().unwrap()
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// The server span of the call made by the traced function named `caller`.
fn server_span_under(spans: &[SpanData], caller: &str) -> SpanData {
    let caller = spans.iter().find(|s| s.name == caller).expect(caller);
    let client = spans
        .iter()
        .find(|s| s.parent_span_id == caller.span_context.span_id())
        .expect("the client span");
    assert_eq!(client.span_kind, SpanKind::Client);
    assert_eq!(client.name, "POST");
    spans
        .iter()
        .find(|s| s.parent_span_id == client.span_context.span_id())
        .expect("the server span, a child of the client's")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_get_rpc_spans_with_their_status_and_metrics() {
    let address = serve().await;
    fixture().exporter.reset();

    #[traced]
    async fn serving(address: SocketAddr) -> Result<i32, Code> {
        check(address, "").await
    }
    #[traced]
    async fn unknown(address: SocketAddr) -> Result<i32, Code> {
        check(address, "no.such.Service").await
    }
    #[traced]
    async fn missing(address: SocketAddr) -> Code {
        call_missing_method(address).await
    }
    assert_eq!(serving(address).await, Ok(1), "SERVING");
    assert_eq!(unknown(address).await, Err(Code::NotFound));
    assert_eq!(missing(address).await, Code::Unimplemented);

    let spans = spans();
    let checks: Vec<_> = spans.iter().filter(|s| s.name == "check").collect();
    assert_eq!(checks.len(), 2);
    let call = server_span_under(&spans, "check");
    assert_eq!(call.span_kind, SpanKind::Server);
    assert_eq!(call.name, "grpc.health.v1.Health/Check");
    for (key, value) in [
        ("rpc.system", Value::from("grpc")),
        ("rpc.service", Value::from("grpc.health.v1.Health")),
        ("rpc.method", Value::from("Check")),
        ("http.request.method", Value::from("POST")),
        ("http.response.status_code", Value::from(200_i64)),
    ] {
        assert_eq!(attribute(&call, key), Some(value), "{key}");
    }
    let server_calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "grpc.health.v1.Health/Check")
        .collect();
    assert_eq!(server_calls.len(), 2);
    let status_of = |span: &SpanData| attribute(span, "rpc.grpc.status_code");
    let mut codes: Vec<_> = server_calls.iter().map(|s| status_of(s)).collect();
    codes.sort_by_key(|code| format!("{code:?}"));
    assert_eq!(
        codes,
        vec![Some(Value::from(0_i64)), Some(Value::from(5_i64))],
        "OK from the trailers, NOT_FOUND from a trailers-only answer"
    );
    // NOT_FOUND is the caller's mistake: not an error of the server's span.
    for span in &server_calls {
        assert_eq!(span.status, Status::Unset, "{:?}", status_of(span));
    }

    // UNIMPLEMENTED is the server's failure.
    let missing = server_span_under(&spans, "call_missing_method");
    assert_eq!(missing.name, "grpc.health.v1.Health/Missing");
    assert_eq!(status_of(&missing), Some(Value::from(12_i64)));
    assert!(matches!(missing.status, Status::Error { .. }));
    assert_eq!(
        attribute(&missing, "error.type"),
        Some(Value::from("UNIMPLEMENTED"))
    );

    // The HTTP server histogram, by method path; the server's failures with
    // their gRPC code as error_type.
    let text = fixture().telemetry.render_metrics();
    let series = |route: &str, error: Option<&str>| {
        let error = error
            .map(|e| format!(",error_type=\"{e}\""))
            .unwrap_or_default();
        format!(
            "http_server_request_duration_seconds_count{{service_name=\"{}\",http_request_method=\"POST\",url_scheme=\"http\",http_route=\"{route}\",http_response_status_code=\"200\"{error}}} ",
            fixture().telemetry.service_name()
        )
    };
    for (route, error, count) in [
        ("/grpc.health.v1.Health/Check", None, 2),
        ("/grpc.health.v1.Health/Missing", Some("UNIMPLEMENTED"), 1),
    ] {
        let line = series(route, error);
        let found = text
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .unwrap_or_else(|| panic!("{line} in\n{text}"));
        assert_eq!(found, count.to_string(), "{route}");
    }
}
