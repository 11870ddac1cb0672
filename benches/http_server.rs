//! What `HttpServerLayer` costs per request: a service answering at once,
//! called bare and through the layer, with the request's span not sampled
//! and sampled (exported to an exporter that drops them), in one run.
//! The futures are ready at their first poll, so no runtime is needed.
//! After each layer case, the spans exported and dropped during it are
//! printed: what the export thread kept up with.
//!
//! `cargo bench --features axum --bench http_server`

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::future::Ready;
use std::hint::black_box;
use std::task::{Context, Poll};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use telemark::integrations::http_server::HttpServerLayer;
use telemark::trace::{Root, Sampler};
use telemark::Traces;
use tower_layer::Layer;
use tower_service::Service;

use support::{ready, NoopExporter};

/// Answers 200 at once.
#[derive(Clone)]
struct Answer;

impl Service<Request<()>> for Answer {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

fn request() -> Request<()> {
    Request::get("http://shop.example/users/7")
        .header("user-agent", "bench/1.0")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(())
        .unwrap()
}

fn call<S: Service<Request<()>>>(service: &mut S) -> bool {
    ready(service.call(black_box(request()))).is_ok()
}

fn http_server(c: &mut Criterion) {
    let layer = HttpServerLayer::new().route(|_, _| Some("/users/{id}".to_owned()));
    let mut group = c.benchmark_group("http_server");
    group.bench_function("bare_service", |b| {
        let mut service = Answer;
        b.iter(|| call(&mut service))
    });
    for (name, sampler) in [
        ("layer_not_sampled", Sampler::AlwaysOff),
        ("layer_sampled", Sampler::ParentBased(Root::AlwaysOn)),
    ] {
        let telemetry = telemark::builder!()
            .without_server()
            .traces(Traces::exporter(NoopExporter).sampler(sampler))
            .start()
            .unwrap();
        let mut service = layer.layer(Answer);
        let before = (
            span_count(&telemetry, "exported"),
            span_count(&telemetry, "dropped"),
        );
        group.bench_function(name, |b| b.iter(|| call(&mut service)));
        telemetry.flush_traces(std::time::Duration::from_secs(5));
        eprintln!(
            "{name}: spans exported {}, dropped {}",
            span_count(&telemetry, "exported") - before.0,
            span_count(&telemetry, "dropped") - before.1,
        );
        drop(telemetry);
    }
    group.finish();
}

/// `telemark_spans_{what}_total` as `/metrics` shows it.
fn span_count(telemetry: &telemark::Telemetry, what: &str) -> u64 {
    let prefix = format!("telemark_spans_{what}_total ");
    telemetry
        .render_metrics()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0)
}

criterion_group!(benches, http_server);
criterion_main!(benches);
