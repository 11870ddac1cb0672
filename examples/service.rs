//! A small HTTP service instrumented with every telemark attribute, for the
//! observability stack under `assets/` (Prometheus, alert rules, Grafana,
//! an OTLP collector).
//!
//! ```text
//! cargo run --example service -- --load 20
//! curl 127.0.0.1:8080/price/7                         # the API
//! curl 127.0.0.1:9464/metrics                         # /metrics, /health, /ready, /status
//! curl -X POST '127.0.0.1:8080/admin/dependency?fail=true'    # break the pricing backend
//! curl -X POST '127.0.0.1:8080/admin/dependency?slow=true'    # slow the lookup and backend down
//! ```
//!
//! `GET /price/<item>` looks the item up (`load_item`) and asks the pricing
//! backend for its price over HTTP (`fetch_price`, through the `pricing`
//! circuit breaker with a timeout and retry). The backend is served by the
//! same process under `/internal/pricing/<item>`; the failure switch makes
//! it answer 503, so the breaker opens and the alerts fire on purpose; the
//! slowness switch adds 300 ms to the lookup (HighLatencyP95) and 200 ms to
//! the backend (slow calls, which trip the breaker's slow-call rule).
//!
//! Options: `--listen ADDR` (API, default 127.0.0.1:8080), `--metrics-listen
//! ADDR` (telemetry endpoints, default 127.0.0.1:9464), `--load RPS`
//! (requests per second from a built-in load generator), `--fail-dependency`
//! (start with the backend failing), `--duration SECONDS` (stop after),
//! `--quiet` (no console spans). Spans go over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, to the console otherwise.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use telemark::breaker::BreakerState;
use telemark::metrics::ObjectivePercentile;
use telemark::opentelemetry::context::FutureExt;
use telemark::propagation::{extract_context, inject_context};
use telemark::{
    circuit_breaker, counted, timed, traced, BreakerError, CircuitBreaker, Objective, Traces,
};
use tokio::net::{TcpListener, TcpStream};

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

/// The API handler: a server span, counted and timed, with its objectives.
#[traced(kind = server, args(item = display), err)]
#[counted(error_if = server_failed, objective = PRICE_AVAILABILITY)]
#[timed(objective = PRICE_LATENCY)]
async fn handle_price(backend: SocketAddr, item: u32) -> Result<u64, ApiError> {
    let cents = load_item(item).await?;
    let factor = fetch_price(backend, item).await?;
    Ok(cents * factor)
}

/// A simulated database lookup.
#[traced]
#[counted(error_if = server_failed)]
#[timed]
async fn load_item(item: u32) -> Result<u64, ApiError> {
    let slow = if SLOW.load(Relaxed) { 300 } else { 0 };
    tokio::time::sleep(Duration::from_millis(1 + u64::from(item % 3) + slow)).await;
    if item == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(u64::from(item) * 100)
}

/// The outbound call to the pricing backend, through the `pricing` breaker.
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
#[traced(kind = client, fields(peer.service = "pricing"), err)]
#[counted]
#[timed]
async fn fetch_price(backend: SocketAddr, item: u32) -> Result<u64, ApiError> {
    let (status, body) = get(backend, &format!("/internal/pricing/{item}"))
        .await
        .map_err(|error| ApiError::PricingUnavailable(error.to_string()))?;
    if status != StatusCode::OK {
        return Err(ApiError::PricingUnavailable(format!(
            "backend answered {status}"
        )));
    }
    body.trim()
        .parse()
        .map_err(|_| ApiError::PricingUnavailable(format!("bad price {body:?}")))
}

/// The pricing backend's handler (a separate service in real life).
#[traced(kind = server, args(item = display), err)]
#[counted]
#[timed]
async fn pricing_backend(item: u32) -> Result<u64, String> {
    let slow = if SLOW.load(Relaxed) { 200 } else { 0 };
    tokio::time::sleep(Duration::from_millis(2 + u64::from(item % 7) + slow)).await;
    if BACKEND_FAILING.load(Relaxed) {
        return Err("pricing database unreachable".into());
    }
    Ok(1 + u64::from(item % 4))
}

/// `GET path` on `address`, carrying the current trace in `traceparent`.
async fn get(address: SocketAddr, path: &str) -> Result<(StatusCode, String), BoxError> {
    let mut request = Request::get(path)
        .header("host", address.to_string())
        .body(Empty::<Bytes>::new())?;
    inject_context(request.headers_mut());
    let stream = TcpStream::connect(address).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response
}

async fn route(own: SocketAddr, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let item = |prefix: &str| path.strip_prefix(prefix).and_then(|rest| rest.parse().ok());
    match (request.method(), path.as_str()) {
        (&Method::GET, "/") => text(
            StatusCode::OK,
            "GET /price/<item>\nPOST /admin/dependency?fail=true|false\nPOST /admin/dependency?slow=true|false\n",
        ),
        (&Method::GET, p) if p.starts_with("/price/") => match item("/price/") {
            Some(item) => match handle_price(own, item).await {
                Ok(cents) => text(StatusCode::OK, format!("{cents}\n")),
                Err(error @ ApiError::NotFound) => text(StatusCode::NOT_FOUND, error.to_string()),
                Err(error) => text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
            },
            None => text(StatusCode::BAD_REQUEST, "the item is a number"),
        },
        (&Method::GET, p) if p.starts_with("/internal/pricing/") => {
            let Some(item) = item("/internal/pricing/") else {
                return text(StatusCode::BAD_REQUEST, "the item is a number");
            };
            // The caller's span is the parent of the backend's.
            let parent = extract_context(request.headers());
            match pricing_backend(item).with_context(parent).await {
                Ok(factor) => text(StatusCode::OK, factor.to_string()),
                Err(error) => text(StatusCode::SERVICE_UNAVAILABLE, error),
            }
        }
        (&Method::POST, "/admin/dependency") => {
            let (switch, name, on) = match query.as_str() {
                "fail=true" => (&BACKEND_FAILING, "failing", true),
                "fail=false" => (&BACKEND_FAILING, "failing", false),
                "slow=true" => (&SLOW, "slow", true),
                "slow=false" => (&SLOW, "slow", false),
                _ => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "expected ?fail=true|false or ?slow=true|false",
                    )
                }
            };
            switch.store(on, Relaxed);
            println!("dependencies {name}: {on}");
            text(StatusCode::OK, format!("dependencies {name}: {on}\n"))
        }
        _ => text(StatusCode::NOT_FOUND, "unknown path"),
    }
}

/// Where this process reaches its own listener (loopback when it listens
/// on every interface).
fn reachable(mut address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    address
}

async fn serve(listener: TcpListener) {
    let own = reachable(listener.local_addr().expect("a bound listener"));
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| async move {
                Ok::<_, Infallible>(route(own, request).await)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Sends `rate` requests per second for random items (1 in 100 unknown).
async fn generate_load(api: SocketAddr, rate: u32) {
    static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
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
        tokio::spawn(async move {
            let _ = get(api, &format!("/price/{item}")).await;
        });
    }
}

struct Options {
    listen: String,
    metrics_listen: String,
    load: u32,
    fail_dependency: bool,
    duration: Option<Duration>,
    quiet: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:8080".into(),
        metrics_listen: telemark::telemetry::DEFAULT_LISTEN_ADDRESS.into(),
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
    BACKEND_FAILING.store(options.fail_dependency, Relaxed);

    let listener = TcpListener::bind(&options.listen).await?;
    let api = reachable(listener.local_addr()?);
    tokio::spawn(serve(listener));
    println!(
        "shop API on http://{api}, telemetry on http://{}/metrics",
        telemetry.local_addr().expect("endpoints are served")
    );
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
