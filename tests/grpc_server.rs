//! The tower layers on a real tonic server and client (the gRPC health
//! service): each call gets a server span named `{service}/{method}` with
//! the `rpc.*` attributes and its gRPC status (from the trailers, or from
//! the headers of a trailers-only answer), Error only for the server's own
//! failures, the client's span as its parent, and the HTTP server metrics
//! by method path. Separate tests share one exporter: their spans have
//! names of their own.
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
    fixture(); // telemetry started before the first call
    let address = serve().await;

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
    // their gRPC code as error_type. A method the server does not have is
    // no route: a client cannot make up label values.
    let text = fixture().telemetry.render_metrics();
    let series = |route: Option<&str>, error: Option<&str>| {
        let route = route
            .map(|r| format!(",http_route=\"{r}\""))
            .unwrap_or_default();
        let error = error
            .map(|e| format!(",error_type=\"{e}\""))
            .unwrap_or_default();
        format!(
            "http_server_request_duration_seconds_count{{service_name=\"{}\",http_request_method=\"POST\",url_scheme=\"http\"{route},http_response_status_code=\"200\"{error}}} ",
            fixture().telemetry.service_name()
        )
    };
    assert!(!text.contains("Missing"), "{text}");
    for (route, error, count) in [
        (Some("/grpc.health.v1.Health/Check"), None, 2),
        (None, Some("UNIMPLEMENTED"), 1),
    ] {
        let line = series(route, error);
        let found = text
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .unwrap_or_else(|| panic!("{line} in\n{text}"));
        assert_eq!(found, count.to_string(), "{route:?}");
    }
}

/// A gRPC response body made frame by frame: its work (a `#[traced]` call)
/// is done while it is polled, as a streaming handler's is; then one
/// message, then the trailers if it has any.
struct StreamingBody {
    frames: std::collections::VecDeque<http_body::Frame<bytes::Bytes>>,
}

#[traced]
fn make_message() -> bytes::Bytes {
    bytes::Bytes::from_static(b"\0\0\0\0\0")
}

impl StreamingBody {
    fn new(trailers: Option<&str>) -> Self {
        let mut frames = std::collections::VecDeque::new();
        frames.push_back(http_body::Frame::data(bytes::Bytes::new()));
        if let Some(status) = trailers {
            let mut map = http::HeaderMap::new();
            map.insert("grpc-status", status.parse().unwrap());
            frames.push_back(http_body::Frame::trailers(map));
        }
        StreamingBody { frames }
    }
}

impl http_body::Body for StreamingBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let frame = self
            .frames
            .pop_front()
            .map(|frame| match frame.into_data() {
                Ok(_) => Ok(http_body::Frame::data(make_message())),
                Err(trailers) => Ok(trailers),
            });
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }
}

/// One call through the layer, its body read to the end.
async fn call_streaming(path: &str, content_type: &str, trailers: Option<&'static str>) {
    use http_body_util::BodyExt;
    // Answers 200 with a `StreamingBody`, as gRPC.
    let answer = move |_| {
        let mut response = http::Response::new(StreamingBody::new(trailers));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        response
    };
    let mut service =
        tower_layer::Layer::layer(&HttpServerLayer::new(), common::AnswerAtOnce(answer));
    let request = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(())
        .unwrap();
    let response = tower_service::Service::call(&mut service, request)
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
}

#[tokio::test]
async fn streaming_bodies_missing_statuses_and_grpc_web() {
    fixture(); // telemetry started before the first call
    call_streaming("/shop.Stream/Prices", "application/grpc+proto", Some("0")).await;
    call_streaming("/shop.Stream/Broken", "application/grpc", None).await;
    call_streaming("/shop.Stream/Web", "application/grpc-web", None).await;
    let spans = spans();

    // The work done while the body is polled is a child of the call's span.
    let call = spans
        .iter()
        .find(|s| s.name == "shop.Stream/Prices")
        .expect("the streaming call's span");
    let made: Vec<_> = spans.iter().filter(|s| s.name == "make_message").collect();
    assert!(made
        .iter()
        .any(|s| s.parent_span_id == call.span_context.span_id()));
    assert_eq!(
        attribute(call, "rpc.grpc.status_code"),
        Some(Value::from(0_i64))
    );
    assert_eq!(call.status, Status::Unset);

    // A body that ends without a status is a failure, as gRPC clients see it.
    let broken = spans
        .iter()
        .find(|s| s.name == "shop.Stream/Broken")
        .unwrap();
    assert_eq!(attribute(broken, "rpc.grpc.status_code"), None);
    assert_eq!(
        attribute(broken, "error.type"),
        Some(Value::from("missing_grpc_status"))
    );
    assert!(matches!(broken.status, Status::Error { .. }));

    // gRPC-Web (status in the body) is plain HTTP to the layer.
    let web = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server && s.name == "POST")
        .expect("the gRPC-Web call, named by its method");
    assert_eq!(attribute(web, "rpc.system"), None);
    assert_eq!(
        attribute(web, "http.response.status_code"),
        Some(Value::from(200_i64))
    );
}
