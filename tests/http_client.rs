//! Outgoing calls through reqwest (with `HttpClientMiddleware`) to a real
//! axum server (with `HttpServerLayer`): one trace across both, the client
//! span between the caller's span and the server's, the semantic-convention
//! attributes, Error on 4xx, failures and the client metrics; the tower
//! layer injects the same headers.
//! `cargo test --features axum,reqwest --test http_client`
#![cfg(all(
    feature = "axum",
    feature = "reqwest",
    not(feature = "disable-instrumentation")
))]

mod common;

use std::sync::OnceLock;

use axum::routing::get;
use axum::Router;
use opentelemetry_sdk::trace::SpanData;
use telemark::integrations::http_client::{HttpClientLayer, HttpClientMiddleware};
use telemark::integrations::http_server::HttpServerLayer;
use telemark::opentelemetry::trace::{SpanKind, Status};
use telemark::opentelemetry::Value;
use telemark::traced;

use common::SpanFixture;

fn fixture() -> &'static SpanFixture {
    static FIXTURE: OnceLock<SpanFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| common::memory_traces(telemark::builder!().without_server()))
}

fn spans() -> Vec<SpanData> {
    let fixture = fixture();
    assert!(fixture
        .telemetry
        .flush_traces(std::time::Duration::from_secs(5)));
    fixture.exporter.get_finished_spans().unwrap()
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

async fn serve() -> std::net::SocketAddr {
    let app = Router::new()
        .route("/items/{id}", get(|| async { "an item" }))
        .layer(HttpServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// Calls `url` through the middleware, inside its own span.
#[traced]
async fn fetch(url: String) -> Result<u16, String> {
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(HttpClientMiddleware::new())
        .build();
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_the_caller_through_reqwest_to_the_server() {
    fixture();
    let address = serve().await;
    let port = address.port();
    assert_eq!(
        fetch(format!("http://{address}/items/7?token=secret")).await,
        Ok(200)
    );
    assert_eq!(fetch(format!("http://{address}/missing")).await, Ok(404));
    // Nothing listens on port 9 (discard) on loopback: the connection fails.
    assert!(fetch("http://127.0.0.1:9/".to_owned()).await.is_err());

    let spans = spans();
    let server = spans.iter().find(|s| s.name == "GET /items/{id}").unwrap();
    let client = spans
        .iter()
        .find(|s| s.span_context.span_id() == server.parent_span_id)
        .expect("the server span's parent is the client span");
    assert_eq!(client.name, "GET");
    assert_eq!(client.span_kind, SpanKind::Client);
    let caller = spans
        .iter()
        .find(|s| s.span_context.span_id() == client.parent_span_id)
        .expect("the client span's parent is the caller's span");
    assert_eq!(caller.name, "fetch");
    for span in [client, caller] {
        assert_eq!(span.span_context.trace_id(), server.span_context.trace_id());
    }
    for (key, value) in [
        ("http.request.method", Value::from("GET")),
        ("server.address", Value::from("127.0.0.1")),
        ("server.port", Value::I64(i64::from(port))),
        ("url.full", Value::from(format!("http://{address}/items/7"))),
        ("network.protocol.version", Value::from("1.1")),
        ("http.response.status_code", Value::I64(200)),
    ] {
        assert_eq!(attribute(client, key), Some(value), "{key}");
    }
    assert_eq!(client.status, Status::Unset);

    let clients: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Client)
        .collect();
    let missing = clients
        .iter()
        .find(|s| attribute(s, "http.response.status_code") == Some(Value::I64(404)))
        .expect("the 404 call");
    assert_eq!(missing.status, Status::error(""));
    assert_eq!(attribute(missing, "error.type"), Some(Value::from("404")));
    let refused = clients
        .iter()
        .find(|s| attribute(s, "server.port") == Some(Value::I64(9)))
        .expect("the refused call");
    assert_eq!(
        attribute(refused, "error.type"),
        Some(Value::from("connect"))
    );
    assert!(matches!(refused.status, Status::Error { .. }));

    let text = fixture().telemetry.render_metrics();
    for line in [
        format!(r#"http_client_request_duration_seconds_count{{service_name="telemark",http_request_method="GET",url_scheme="http",server_address="127.0.0.1",server_port="{port}",http_response_status_code="200"}} 1"#),
        format!(r#"http_client_request_duration_seconds_count{{service_name="telemark",http_request_method="GET",url_scheme="http",server_address="127.0.0.1",server_port="{port}",http_response_status_code="404",error_type="404"}} 1"#),
        r#"http_client_request_duration_seconds_count{service_name="telemark",http_request_method="GET",url_scheme="http",server_address="127.0.0.1",server_port="9",error_type="connect"} 1"#.to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
}

/// A tower "client": answers with the `traceparent` it was sent.
fn echo_traceparent(request: http::Request<()>) -> http::Response<String> {
    let sent = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    http::Response::new(sent)
}

#[traced]
async fn call_through_tower() -> String {
    let mut client = tower_layer::Layer::layer(
        &HttpClientLayer::new(),
        common::AnswerAtOnce(echo_traceparent),
    );
    let request = http::Request::get("http://inventory.internal:8081/stock")
        .body(())
        .unwrap();
    let response = tower_service::Service::call(&mut client, request)
        .await
        .unwrap();
    response.into_body()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_layer_injects_the_client_spans_context() {
    fixture();
    let sent = call_through_tower().await;
    let spans = spans();
    let client = spans
        .iter()
        .find(|s| attribute(s, "server.address") == Some(Value::from("inventory.internal")))
        .expect("the tower client span");
    assert_eq!(attribute(client, "server.port"), Some(Value::I64(8081)));
    assert_eq!(
        sent,
        format!(
            "00-{}-{}-01",
            client.span_context.trace_id(),
            client.span_context.span_id()
        ),
        "the callee is sent the client span as its parent"
    );
}
