//! One trace across two HTTP services: `frontend` handles `GET /checkout/<item>`
//! and calls `inventory` over HTTP; the `traceparent` header carries the
//! trace from the client span to the inventory handler's span.
//!
//! ```sh
//! cargo run --example propagation                     # spans on the console
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example propagation
//! ```
//!
//! Both services answer with the trace id they ran under; the example checks
//! that they match and exits with an error if they do not.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use telemark::opentelemetry::context::FutureExt;
use telemark::opentelemetry::trace::TraceContextExt;
use telemark::opentelemetry::Context;
use telemark::propagation::{extract_context, inject_context};
use telemark::{traced, Traces};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn current_trace_id() -> String {
    Context::current()
        .span()
        .span_context()
        .trace_id()
        .to_string()
}

/// Inventory's handler: a server span, child of the caller's client span.
#[traced(kind = server, args(item = display))]
async fn reserve_stock(item: u32) -> Result<String, String> {
    tokio::time::sleep(Duration::from_millis(3)).await;
    if item == 0 {
        return Err("no such item".into());
    }
    Ok(current_trace_id())
}

/// Frontend's outbound call: a client span whose context goes into the headers.
#[traced(kind = client, fields(peer.service = "inventory"), err)]
async fn call_inventory(inventory: SocketAddr, item: u32) -> Result<String, Error> {
    let mut request = Request::get(format!("/reserve/{item}"))
        .header("host", inventory.to_string())
        .body(Empty::<Bytes>::new())?;
    inject_context(request.headers_mut());
    let stream = TcpStream::connect(inventory).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        return Err(format!("inventory answered {status}: {body}").into());
    }
    Ok(body)
}

/// Frontend's handler: the root span of the request.
#[traced(kind = server, args(item = display), err)]
async fn checkout(inventory: SocketAddr, item: u32) -> Result<String, Error> {
    let inventory_trace = call_inventory(inventory, item).await?;
    Ok(format!("{} {inventory_trace}", current_trace_id()))
}

fn item_from(path: &str, prefix: &str) -> Option<u32> {
    path.strip_prefix(prefix)?.parse().ok()
}

fn text(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response
}

/// Serves `handle` on a free loopback port.
async fn serve<F, Fut>(handle: F) -> Result<SocketAddr, Error>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let handle = handle.clone();
                    async move { Ok::<_, Infallible>(handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let telemetry = telemark::builder!()
        .without_server()
        .service_name("propagation-example")
        .traces(Traces::from_env())
        .start()?;

    let inventory = serve(|request: Request<Incoming>| async move {
        // Continue the caller's trace: its context is current while the handler runs.
        let parent = extract_context(request.headers());
        let Some(item) = item_from(request.uri().path(), "/reserve/") else {
            return text(404, "unknown path".into());
        };
        match reserve_stock(item).with_context(parent).await {
            Ok(trace_id) => text(200, trace_id),
            Err(error) => text(409, error),
        }
    })
    .await?;

    let frontend = serve(move |request: Request<Incoming>| async move {
        let Some(item) = item_from(request.uri().path(), "/checkout/") else {
            return text(404, "unknown path".into());
        };
        match checkout(inventory, item).await {
            Ok(trace_ids) => text(200, trace_ids),
            Err(error) => text(502, error.to_string()),
        }
    })
    .await?;

    // A user's request to the frontend, with no trace of its own.
    let stream = TcpStream::connect(frontend).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get("/checkout/42")
        .header("host", frontend.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();

    let (flushed, metrics) = tokio::task::spawn_blocking(move || {
        let flushed = telemetry.flush_traces(Duration::from_secs(10));
        let metrics = telemetry.render_metrics();
        telemetry.shutdown();
        (flushed, metrics)
    })
    .await?;
    let counter = |name: &str| {
        metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    println!(
        "spans exported: {}, dropped: {}",
        counter("telemark_spans_exported_total"),
        counter("telemark_spans_dropped_total")
    );

    let (frontend_trace, inventory_trace) = body
        .split_once(' ')
        .ok_or_else(|| format!("unexpected answer: {body}"))?;
    println!("frontend ran in trace  {frontend_trace}");
    println!("inventory ran in trace {inventory_trace}");
    if frontend_trace != inventory_trace || frontend_trace.chars().all(|c| c == '0') {
        return Err("the trace did not cross the HTTP hop".into());
    }
    if !flushed {
        return Err("spans were not exported in time".into());
    }
    println!("one trace across both services: ok");
    Ok(())
}
