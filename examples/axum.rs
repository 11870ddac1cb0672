//! An axum service with telemark: the README's example, which CI keeps
//! identical to this file. `curl 127.0.0.1:8080/items/7` gives one trace:
//! the request's server span, `stock`'s span, its HTTP client span, and the
//! server span of the `/stock/7` request that it makes.
use axum::{extract::Path, routing::get, Router};
use telemark::integrations::http_client::HttpClientMiddleware;
use telemark::integrations::http_server::HttpServerLayer;
use telemark::integrations::tracing::{SpanEventLayer, TraceIdFormat};
use telemark::{counted, timed, traced, Traces};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

type Client = reqwest_middleware::ClientWithMiddleware;

#[traced(args(id = display), err)]
#[counted]
#[timed]
async fn stock(client: &Client, id: u32) -> Result<String, reqwest_middleware::Error> {
    tracing::info!(id, "asking the inventory"); // logged with trace_id=… span_id=…
    let url = format!("http://127.0.0.1:8080/stock/{id}"); // another service in real life
    Ok(client.get(url).send().await?.text().await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let telemetry = telemark::builder!().traces(Traces::from_env()).start()?; // /metrics on :9464
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(TraceIdFormat::text(tracing_subscriber::fmt::format())),
        )
        .with(SpanEventLayer::new())
        .init();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(HttpClientMiddleware::new()) // a client span, and traceparent sent along
        .build();
    let app = Router::new()
        .route(
            "/items/{id}",
            get(|Path(id): Path<u32>| async move {
                stock(&client, id)
                    .await
                    .unwrap_or_else(|error| error.to_string())
            }),
        )
        .route(
            "/stock/{id}",
            get(|Path(id): Path<u32>| async move { format!("{}\n", id % 5) }),
        )
        .layer(HttpServerLayer::new()); // a server span and the HTTP metrics per request
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app).await?;
    telemetry.shutdown();
    Ok(())
}
