//! The tower layer on a real axum server: each request gets a server span
//! named by its route, with the HTTP semantic-convention attributes, the
//! remote parent from `traceparent`, `#[traced]` handlers as children, an
//! Error status on 5xx, and the HTTP server metrics on `/metrics`; a caller
//! that did not sample is followed; cancelled requests are measured.
//! `cargo test --features axum --test http_server`
#![cfg(all(feature = "axum", not(feature = "disable-instrumentation")))]

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use opentelemetry_sdk::trace::SpanData;
use telemark::integrations::http_server::HttpServerLayer;
use telemark::opentelemetry::baggage::BaggageExt;
use telemark::opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use telemark::opentelemetry::{Context, Value};
use telemark::traced;

use common::SpanFixture;

/// Spans to memory with the default sampler: parent-based, roots sampled.
fn fixture() -> &'static SpanFixture {
    static FIXTURE: OnceLock<SpanFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| common::memory_traces(telemark::builder!().without_server()))
}

/// What a handler sees of the caller: its trace id, whether it sampled,
/// and the `tenant` baggage.
async fn caller_context() -> String {
    let cx = Context::current();
    let span = cx.span();
    let context = span.span_context();
    let tenant = cx
        .baggage()
        .get("tenant")
        .map(|value| value.to_string())
        .unwrap_or_default();
    format!("{} {} {tenant}", context.trace_id(), context.is_sampled())
}

#[traced]
async fn load_user(id: u64) -> String {
    tokio::task::yield_now().await;
    format!("user {id}")
}

async fn user(axum::extract::Path(id): axum::extract::Path<u64>) -> String {
    load_user(id).await
}

/// Serves the app on a free port, on the test's runtime.
async fn serve() -> SocketAddr {
    let app = Router::new()
        .route("/users/{id}", get(user))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/context", get(caller_context))
        .layer(HttpServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// `GET path` with `headers`: the status code and the body.
async fn get_with_body(address: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: tests/1.0\r\n{headers}Connection: close\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    })
    .await
    .unwrap()
}

/// `GET path` with `headers`: the status code.
async fn get_path(address: SocketAddr, path: &str, headers: &str) -> u16 {
    get_with_body(address, path, headers).await.0
}

fn spans() -> Vec<SpanData> {
    let fixture = fixture();
    assert!(fixture.telemetry.flush_traces(Duration::from_secs(5)));
    fixture.exporter.get_finished_spans().unwrap()
}

fn one(spans: &[SpanData], name: &str) -> SpanData {
    let found: Vec<_> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "one span named {name}");
    found[0].clone()
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_a_server_span_with_attributes_a_remote_parent_and_metrics() {
    fixture();
    let address = serve().await;
    let traceparent = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n";
    assert_eq!(get_path(address, "/users/7", traceparent).await, 200);
    assert_eq!(get_path(address, "/fail", "").await, 500);
    assert_eq!(get_path(address, "/nowhere", "").await, 404);

    let exported = spans();
    let server = one(&exported, "GET /users/{id}");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(
        format!("{}", server.span_context.trace_id()),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(format!("{}", server.parent_span_id), "00f067aa0ba902b7");
    assert!(server.parent_span_is_remote);
    for (key, value) in [
        ("http.request.method", Value::from("GET")),
        ("http.route", Value::from("/users/{id}")),
        ("url.path", Value::from("/users/7")),
        ("url.scheme", Value::from("http")),
        ("server.address", Value::from("127.0.0.1")),
        ("network.protocol.version", Value::from("1.1")),
        ("user_agent.original", Value::from("tests/1.0")),
        ("http.response.status_code", Value::I64(200)),
    ] {
        assert_eq!(attribute(&server, key), Some(value), "{key}");
    }
    assert_eq!(attribute(&server, "code.function.name"), None);
    assert_eq!(server.status, Status::Unset);
    let handler = one(&exported, "load_user");
    assert_eq!(handler.parent_span_id, server.span_context.span_id());
    assert_eq!(
        handler.span_context.trace_id(),
        server.span_context.trace_id()
    );

    let failed = one(&exported, "GET /fail");
    assert_eq!(failed.status, Status::error(""));
    assert_eq!(attribute(&failed, "error.type"), Some(Value::from("500")));
    let unrouted = one(&exported, "GET");
    assert_eq!(attribute(&unrouted, "http.route"), None);
    assert_eq!(
        attribute(&unrouted, "http.response.status_code"),
        Some(Value::I64(404))
    );

    let text = fixture().telemetry.render_metrics();
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    for line in [
        "# TYPE http_server_request_duration_seconds histogram",
        r#"http_server_request_duration_seconds_count{service_name="telemark",http_request_method="GET",url_scheme="http",http_route="/users/{id}",http_response_status_code="200"} 1"#,
        r#"http_server_request_duration_seconds_count{service_name="telemark",http_request_method="GET",url_scheme="http",http_route="/fail",http_response_status_code="500",error_type="500"} 1"#,
        r#"http_server_request_duration_seconds_count{service_name="telemark",http_request_method="GET",url_scheme="http",http_response_status_code="404"} 1"#,
        r#"http_server_active_requests{service_name="telemark",http_request_method="GET",url_scheme="http"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    assert!(text.contains(
        r#"http_server_request_duration_seconds_bucket{service_name="telemark",http_request_method="GET",url_scheme="http",http_route="/users/{id}",http_response_status_code="200",le="10"} 1"#
    ));

    // A caller that did not sample: nothing is sampled here either, and the
    // handler still sees the caller's trace and baggage.
    let spans_before = spans().len();
    let (status, body) = get_with_body(
        address,
        "/context",
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\r\nbaggage: tenant=acme\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, "0af7651916cd43dd8448eb211c80319c false acme");
    assert_eq!(spans().len(), spans_before, "no span sampled");
    // A sampled caller: the handler sees the request's own span.
    let (_, body) = get_with_body(
        address,
        "/context",
        "traceparent: 00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203331-01\r\nbaggage: tenant=acme\r\n",
    )
    .await;
    assert_eq!(body, "0af7651916cd43dd8448eb211c80319d true acme");

    // A request dropped before it is answered is measured as cancelled,
    // and is no longer active.
    let mut never = tower_layer::Layer::layer(&HttpServerLayer::new(), Answer { never: true });
    let request = axum::http::Request::post("/slow").body(()).unwrap();
    let mut future = Box::pin(tower_service::Service::call(&mut never, request));
    let waker = std::task::Waker::noop();
    assert!(future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
        .is_pending());
    drop(future);
    let text = fixture().telemetry.render_metrics();
    for line in [
        r#"http_server_request_duration_seconds_count{service_name="telemark",http_request_method="POST",url_scheme="http",error_type="cancelled"} 1"#,
        r#"http_server_active_requests{service_name="telemark",http_request_method="POST",url_scheme="http"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    let cancelled = one(&spans(), "POST");
    assert_eq!(
        attribute(&cancelled, "telemark.cancelled"),
        Some(Value::Bool(true))
    );

    // A route function that returns raw paths (what the cap is for): past
    // 1,000 series, requests are counted in the one overflow series.
    let mut raw_paths = tower_layer::Layer::layer(
        &HttpServerLayer::new().route(|_, uri| Some(uri.path().to_owned())),
        Answer { never: false },
    );
    for n in 0..1_200 {
        let request = axum::http::Request::get(format!("/raw/{n}"))
            .body(())
            .unwrap();
        let response = tower_service::Service::call(&mut raw_paths, request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "answers are unchanged");
    }
    let text = fixture().telemetry.render_metrics();
    let series = text
        .lines()
        .filter(|line| line.starts_with("http_server_request_duration_seconds_count{"))
        .count();
    assert_eq!(series, 1_001, "1,000 series and the overflow");
    let overflow = text
        .lines()
        .find(|line| {
            line.starts_with(
                r#"http_server_request_duration_seconds_count{service_name="telemark",otel_metric_overflow="true"}"#,
            )
        })
        .expect("the overflow series");
    // 5 series above, so 995 raw paths have their own; 205 overflow.
    assert!(overflow.ends_with(" 205"), "{overflow}");
}

/// A service answering 200 at once, or never.
#[derive(Clone)]
struct Answer {
    never: bool,
}

type Answered = Result<axum::http::Response<()>, std::convert::Infallible>;

impl tower_service::Service<axum::http::Request<()>> for Answer {
    type Response = axum::http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Answered> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: axum::http::Request<()>) -> Self::Future {
        if self.never {
            Box::pin(std::future::pending())
        } else {
            Box::pin(std::future::ready(Ok(axum::http::Response::new(()))))
        }
    }
}
