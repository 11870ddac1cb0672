//! What a server layer that gives each request a span costs per request,
//! beside the peers users would pick instead, in one run:
//!
//! - `telemark_layer`: telemark's `HttpServerLayer` (the span with the HTTP
//!   semantic-convention attributes, the remote parent, and the duration
//!   histogram and in-flight gauge);
//! - `tower_http_trace_opentelemetry`: tower-http's `TraceLayer` as it comes
//!   (its span, and its request and response events), its span's parent
//!   set from `traceparent` as users write it, under `tracing-opentelemetry`
//!   with the OpenTelemetry SDK's batch processor;
//! - `fastrace_tower`: fastrace-tower's server layer (a span named by the
//!   method, parent from `traceparent`; no attributes, no metrics), with a
//!   reporter.
//!
//! Every request carries a sampled `traceparent`, and every span goes to an
//! exporter (or reporter) that counts and discards it. The inner service
//! answers at once, so the futures are ready at their first poll and no
//! runtime is needed. After each case, the requests made and the spans that
//! reached the exporter are printed: what each export side kept up with.
//!
//! `cargo bench -p telemark-peers --bench http_server`

use std::convert::Infallible;
use std::future::Ready;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Request, Response};
use http_body_util::Empty;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use telemark::integrations::http_server::HttpServerLayer;
use telemark::opentelemetry::propagation::{Extractor, TextMapPropagator};
use telemark::opentelemetry::trace::TracerProvider;
use telemark::trace::{Root, Sampler};
use telemark::Traces;
use telemark_peers::support::ready;
use tower_layer::Layer;
use tower_service::Service;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Requests the inner service answered.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Spans that reached an exporter or reporter.
static EXPORTED: AtomicU64 = AtomicU64::new(0);

/// Answers 200 at once, and counts.
#[derive(Clone)]
struct Answer;

impl Service<Request<Empty<Bytes>>> for Answer {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Empty<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Empty<Bytes>>) -> Self::Future {
        REQUESTS.fetch_add(1, Relaxed);
        std::future::ready(Ok(Response::new(Empty::new())))
    }
}

/// Counts the spans it is given and drops them.
#[derive(Debug)]
struct CountingExporter;

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        EXPORTED.fetch_add(batch.len() as u64, Relaxed);
        Ok(())
    }
}

/// fastrace's counterpart of `CountingExporter`.
struct CountingReporter;

impl fastrace::collector::Reporter for CountingReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        EXPORTED.fetch_add(spans.len() as u64, Relaxed);
    }
}

fn request() -> Request<Empty<Bytes>> {
    Request::get("http://shop.example/users/7")
        .header("user-agent", "bench/1.0")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Empty::new())
        .unwrap()
}

fn call<S>(service: &mut S) -> bool
where
    S: Service<Request<Empty<Bytes>>>,
{
    ready(service.call(black_box(request()))).is_ok()
}

/// Runs one case and prints what reached the exporter during it.
fn case(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut one_request: impl FnMut() -> bool,
    flush: impl FnOnce(),
) {
    let (requests, exported) = (REQUESTS.load(Relaxed), EXPORTED.load(Relaxed));
    group.bench_function(name, |b| b.iter(&mut one_request));
    flush();
    let requests = REQUESTS.load(Relaxed) - requests;
    let exported = EXPORTED.load(Relaxed) - exported;
    eprintln!(
        "{name}: {requests} requests, {exported} spans exported ({:.1} % dropped)",
        100.0 * (requests.saturating_sub(exported)) as f64 / requests.max(1) as f64
    );
}

/// `traceparent` and `tracestate` from a request's headers, for the
/// OpenTelemetry propagator.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

fn http_server(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_server_peers");
    group.bench_function("bare_service", |b| {
        let mut service = Answer;
        b.iter(|| call(&mut service))
    });

    // telemark, every span sampled and exported.
    let telemetry = telemark::builder!()
        .without_server()
        .traces(Traces::exporter(CountingExporter).sampler(Sampler::ParentBased(Root::AlwaysOn)))
        .start()
        .unwrap();
    let mut service = HttpServerLayer::new()
        .route(|_, _| Some("/users/{id}".to_owned()))
        .layer(Answer);
    case(
        &mut group,
        "telemark_layer",
        || call(&mut service),
        || {
            telemetry.flush_traces(Duration::from_secs(5));
        },
    );
    drop(telemetry);

    // tower-http's TraceLayer under tracing-opentelemetry.
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(CountingExporter)
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    let propagator = TraceContextPropagator::new();
    let trace_layer = tower_http::trace::TraceLayer::new_for_http().make_span_with(
        move |request: &Request<Empty<Bytes>>| {
            let span = tracing::info_span!(
                "request",
                method = %request.method(),
                uri = %request.uri(),
                version = ?request.version(),
            );
            let _ = span.set_parent(propagator.extract(&Headers(request.headers())));
            span
        },
    );
    let mut service = trace_layer.layer(Answer);
    tracing::subscriber::with_default(subscriber, || {
        case(
            &mut group,
            "tower_http_trace_opentelemetry",
            || call(&mut service),
            || {
                let _ = provider.force_flush();
            },
        );
    });
    let _ = provider.shutdown();

    // fastrace-tower's server layer.
    fastrace::set_reporter(CountingReporter, fastrace::collector::Config::default());
    let mut service = fastrace_tower::FastraceServerLayer::default().layer(Answer);
    case(
        &mut group,
        "fastrace_tower",
        || call(&mut service),
        fastrace::flush,
    );
    group.finish();
}

criterion_group!(benches, http_server);
criterion_main!(benches);
