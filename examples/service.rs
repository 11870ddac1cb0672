//! A small HTTP service on axum and reqwest, instrumented with every
//! telemark attribute and integration, for the observability stack under
//! `assets/` (Prometheus, alert rules, Grafana, an OTLP collector).
//!
//! ```text
//! cargo run --example service --features axum,reqwest,tracing -- --load 20
//! curl 127.0.0.1:8080/price/7                         # the API
//! curl 127.0.0.1:9464/metrics                         # /metrics, /health, /ready, /status
//! curl -X POST '127.0.0.1:8080/admin/dependency?fail=true'    # break the pricing backend
//! curl -X POST '127.0.0.1:8080/admin/dependency?slow=true'    # slow the lookup and backend down
//! ```
//!
//! `GET /price/{item}` looks the item up (`load_item`) and asks the pricing
//! backend for its price over HTTP (`fetch_price`, through the `pricing`
//! circuit breaker with a timeout and retry). The backend answers
//! `GET /internal/pricing/{item}`: by default this same process, or another
//! instance of it given with `--pricing URL` (a second service, as in the
//! end-to-end check). The failure switch makes the backend answer 503, so
//! the breaker opens and the alerts fire on purpose; the slowness switch
//! adds 300 ms to the lookup (HighLatencyP95) and 200 ms to the backend
//! (slow calls, which trip the breaker's slow-call rule). Each switch acts
//! on the process it is sent to: with the backend run as a second instance,
//! send `fail` to that one.
//!
//! Beside the function metrics, `load_item` is counted by the item's
//! category (a label computed from its argument) and `handle_price` records
//! each price it quotes in the `price_quote_cents` histogram.
//!
//! Nothing here handles trace context by hand: telemark's tower layer gives
//! each request its server span (remote parent from `traceparent`, the
//! route as its name, the HTTP server metrics), the reqwest middleware its
//! client span and the headers of the outgoing call, and the `tracing`
//! layers put the trace id on every log line and the log events on the
//! span.
//!
//! Options: `--listen ADDR` (API, default 127.0.0.1:8080), `--metrics-listen
//! ADDR` (telemetry endpoints, default 127.0.0.1:9464), `--pricing URL`
//! (the pricing backend, default this process), `--load RPS` (requests per
//! second from a built-in load generator), `--fail-dependency` (start with
//! the backend failing), `--duration SECONDS` (stop after), `--quiet` (no
//! console spans, no logs). Spans go over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, to the console otherwise.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use reqwest_middleware::ClientWithMiddleware;
use telemark::breaker::BreakerState;
use telemark::integrations::http_client::HttpClientMiddleware;
use telemark::integrations::http_server::HttpServerLayer;
use telemark::integrations::tracing::{SpanEventLayer, TraceIdFormat};
use telemark::metrics::ObjectivePercentile;
use telemark::{
    circuit_breaker, counted, histogram, timed, traced, BreakerError, CircuitBreaker, LabelValue,
    Objective, Traces,
};
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The failure switch of the simulated pricing backend.
static BACKEND_FAILING: AtomicBool = AtomicBool::new(false);
/// The slowness switch: the item lookup takes 300 ms more, the pricing
/// backend 200 ms more (slow calls for the breaker's slow-call rule).
static SLOW: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
enum ApiError {
    /// No such item: the client's mistake, not the service's.
    NotFound,
    /// The pricing backend failed, timed out or its breaker refused the call.
    PricingUnavailable(String),
}

impl From<BreakerError> for ApiError {
    fn from(error: BreakerError) -> Self {
        ApiError::PricingUnavailable(error.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::NotFound => f.write_str("no such item"),
            ApiError::PricingUnavailable(why) => write!(f, "pricing unavailable: {why}"),
        }
    }
}

/// Only failures of the service count as `result="error"`: a 404 does not.
fn server_failed(result: &Result<u64, ApiError>) -> bool {
    matches!(result, Err(ApiError::PricingUnavailable(_)))
}

/// The API's success objective: 99.9 % of price requests succeed (a 404 is
/// a success: see `server_failed`). The shipped alert rules page when its
/// error budget burns 14.4 times too fast, as it does with the backend
/// failing.
const PRICE_AVAILABILITY: Objective =
    Objective::new("price-availability").success_rate(ObjectivePercentile::P99_9);

/// The API's latency objective: 99 % of price requests within 250 ms (one of
/// the default bucket bounds); the slowness switch breaks it.
const PRICE_LATENCY: Objective =
    Objective::new("price-latency").latency(Duration::from_millis(250), ObjectivePercentile::P99);

/// Where the API finds its pricing backend, and how it calls it.
#[derive(Clone)]
struct Shop {
    /// reqwest with telemark's middleware: a client span per call, and the
    /// trace context in the call's headers.
    client: ClientWithMiddleware,
    /// The backend's base URL, such as `http://127.0.0.1:8080`.
    pricing: String,
}

/// The API handler: a child of the request's server span (made by
/// [`HttpServerLayer`]), counted and timed, with its objectives.
/// Each price quoted goes into `price_quote_cents`, a histogram of the
/// returned value (failures are not quoted: `None` is not recorded).
#[traced(args(item = display), err)]
#[counted(error_if = server_failed, objective = PRICE_AVAILABILITY)]
#[timed(objective = PRICE_LATENCY)]
#[histogram(
    name = "price_quote_cents",
    value = |quote| quote.as_ref().ok().copied(),
    buckets = [1_000, 10_000, 100_000, 1_000_000],
    unit = "cents"
)]
async fn handle_price(shop: &Shop, item: u32) -> Result<u64, ApiError> {
    let cents = load_item(item).await?;
    let factor = fetch_price(&shop.client, &shop.pricing, item).await?;
    // With the trace and span ids on the log line, and as an event of the
    // span.
    tracing::info!(item, cents, factor, "priced");
    Ok(cents * factor)
}

/// What a shop sells: `function_calls_total{function="load_item"}` is
/// split by it (`category="books"`, …), a label computed on each call.
#[derive(Clone, Copy, LabelValue)]
enum Category {
    Books,
    Games,
    Toys,
}

impl Category {
    fn of(item: u32) -> Category {
        [Category::Books, Category::Games, Category::Toys][item as usize % 3]
    }
}

/// A simulated database lookup, counted by the item's category.
#[traced]
#[counted(error_if = server_failed, labels(category = Category::of(item)))]
#[timed]
async fn load_item(item: u32) -> Result<u64, ApiError> {
    let slow = if SLOW.load(Relaxed) { 300 } else { 0 };
    tokio::time::sleep(Duration::from_millis(1 + u64::from(item % 3) + slow)).await;
    if item == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(u64::from(item) * 100)
}

/// The outbound call to the pricing backend, through the `pricing` breaker;
/// each attempt is an HTTP client span under this one.
#[circuit_breaker(
    name = "pricing",
    consecutive_failures = 5,
    failure_rate = 50,
    window = 20,
    min_calls = 10,
    open_for = "5s",
    open_for_max = "20s",
    slow_call = "150ms",
    slow_call_rate = 80,
    half_open_calls = 2,
    timeout = "250ms",
    retry(attempts = 2, backoff = "20ms..100ms", jitter = "full")
)]
#[traced(fields(peer.service = "pricing"), err)]
#[counted]
#[timed]
async fn fetch_price(
    client: &ClientWithMiddleware,
    pricing: &str,
    item: u32,
) -> Result<u64, ApiError> {
    let unavailable = |why: String| ApiError::PricingUnavailable(why);
    let response = client
        .get(format!("{pricing}/internal/pricing/{item}"))
        .send()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(unavailable(format!("backend answered {status}")));
    }
    let body = response
        .text()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    body.trim()
        .parse()
        .map_err(|_| unavailable(format!("bad price {body:?}")))
}

/// The pricing backend's handler: a child of its request's server span,
/// whose parent is the caller's client span (from `traceparent`).
#[traced(args(item = display), err)]
#[counted]
#[timed]
async fn pricing_backend(item: u32) -> Result<u64, String> {
    let slow = if SLOW.load(Relaxed) { 200 } else { 0 };
    tokio::time::sleep(Duration::from_millis(2 + u64::from(item % 7) + slow)).await;
    if BACKEND_FAILING.load(Relaxed) {
        tracing::warn!(item, "pricing database unreachable");
        return Err("pricing database unreachable".into());
    }
    Ok(1 + u64::from(item % 4))
}

async fn index() -> &'static str {
    "GET /price/{item}\nPOST /admin/dependency?fail=true|false\nPOST /admin/dependency?slow=true|false\n"
}

async fn price(State(shop): State<Shop>, Path(item): Path<u32>) -> (StatusCode, String) {
    match handle_price(&shop, item).await {
        Ok(cents) => (StatusCode::OK, format!("{cents}\n")),
        Err(error @ ApiError::NotFound) => (StatusCode::NOT_FOUND, error.to_string()),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

async fn pricing(Path(item): Path<u32>) -> (StatusCode, String) {
    match pricing_backend(item).await {
        Ok(factor) => (StatusCode::OK, factor.to_string()),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error),
    }
}

async fn switch_dependency(RawQuery(query): RawQuery) -> (StatusCode, String) {
    let (switch, name, on) = match query.as_deref().unwrap_or_default() {
        "fail=true" => (&BACKEND_FAILING, "failing", true),
        "fail=false" => (&BACKEND_FAILING, "failing", false),
        "slow=true" => (&SLOW, "slow", true),
        "slow=false" => (&SLOW, "slow", false),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "expected ?fail=true|false or ?slow=true|false".into(),
            )
        }
    };
    switch.store(on, Relaxed);
    tracing::info!(name, on, "dependencies switched");
    (StatusCode::OK, format!("dependencies {name}: {on}\n"))
}

/// The API and the pricing backend, each request through telemark's layer.
fn app(shop: Shop) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/price/{item}", get(price))
        .route("/internal/pricing/{item}", get(pricing))
        .route("/admin/dependency", post(switch_dependency))
        .with_state(shop)
        .layer(HttpServerLayer::new())
}

/// Where this process reaches its own listener (loopback when it listens
/// on every interface).
fn reachable(mut address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    address
}

/// Sends `rate` requests per second for random items (1 in 100 unknown),
/// as an outside client would: without trace context.
async fn generate_load(api: SocketAddr, rate: u32) {
    static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a plain HTTP client");
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    loop {
        ticks.tick().await;
        // xorshift: enough to spread the items.
        let mut x = SEED.load(Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        SEED.store(x, Relaxed);
        let item = x % 100;
        let request = client.get(format!("http://{api}/price/{item}"));
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }
}

struct Options {
    listen: String,
    metrics_listen: String,
    pricing: Option<String>,
    load: u32,
    fail_dependency: bool,
    duration: Option<Duration>,
    quiet: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:8080".into(),
        metrics_listen: telemark::telemetry::DEFAULT_LISTEN_ADDRESS.into(),
        pricing: None,
        load: 0,
        fail_dependency: false,
        duration: None,
        quiet: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => options.listen = value()?,
            "--metrics-listen" => options.metrics_listen = value()?,
            "--pricing" => {
                let url = value()?;
                if !url.starts_with("http://") {
                    return Err(format!("--pricing takes an http:// URL, not {url:?}"));
                }
                options.pricing = Some(url.trim_end_matches('/').to_owned());
            }
            "--load" => {
                options.load = value()?
                    .parse()
                    .ok()
                    .filter(|rate| *rate <= 10_000)
                    .ok_or("--load takes requests per second, up to 10000")?
            }
            "--duration" => {
                let seconds: f64 = value()?.parse().map_err(|_| "--duration takes seconds")?;
                options.duration = Some(
                    Duration::try_from_secs_f64(seconds)
                        .map_err(|_| "--duration takes a positive number of seconds")?,
                );
            }
            "--fail-dependency" => options.fail_dependency = true,
            "--quiet" => options.quiet = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let options = options()?;
    let otlp = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|value| !value.is_empty()));
    let service_name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "shop".into());
    let mut builder = telemark::builder!()
        .service_name(service_name)
        .listen(options.metrics_listen.clone())
        .readiness_check("pricing-breaker", || async {
            match CircuitBreaker::named("pricing").map(CircuitBreaker::state) {
                Some(BreakerState::ForcedOpen) => Err("the pricing breaker is forced open".into()),
                _ => Ok(()),
            }
        });
    if otlp || !options.quiet {
        builder = builder.traces(Traces::from_env());
    }
    let telemetry = builder.start()?;
    if !options.quiet {
        // Log lines to stdout, each made inside a sampled span led by its
        // trace and span ids; the same events recorded on the span. INFO
        // and above only, for both (hyper logs every connection at DEBUG).
        let lines = tracing_subscriber::fmt::layer()
            .event_format(TraceIdFormat::text(tracing_subscriber::fmt::format()));
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(lines)
            .with(SpanEventLayer::new())
            .init();
    }
    BACKEND_FAILING.store(options.fail_dependency, Relaxed);

    let listener = TcpListener::bind(&options.listen).await?;
    let api = reachable(listener.local_addr()?);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let shop = Shop {
        client: reqwest_middleware::ClientBuilder::new(client)
            .with(HttpClientMiddleware::new())
            .build(),
        pricing: options.pricing.unwrap_or_else(|| format!("http://{api}")),
    };
    println!(
        "shop API on http://{api} (pricing backend {}), telemetry on http://{}/metrics",
        shop.pricing,
        telemetry.local_addr().expect("endpoints are served")
    );
    tokio::spawn(async move { axum::serve(listener, app(shop)).await });
    if options.load > 0 {
        println!("load generator: {} requests per second", options.load);
        tokio::spawn(generate_load(api, options.load));
    }
    match options.duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => tokio::signal::ctrl_c().await?,
    }
    tokio::task::spawn_blocking(move || {
        telemetry.flush_traces(Duration::from_secs(5));
        telemetry.shutdown();
    })
    .await?;
    Ok(())
}
