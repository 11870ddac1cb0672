//! One sampled span per call: telemark's `#[traced]` beside the OpenTelemetry
//! SDK's `in_span` and `#[tracing::instrument]` with `tracing-opentelemetry`,
//! all exporting in batches to an exporter that discards them, measured in
//! the same run against the same uninstrumented function.
//!
//! `cargo bench -p telemark-peers --bench spans`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry_sdk::trace::SdkTracerProvider;
use telemark::opentelemetry::trace::{Tracer, TracerProvider};
use telemark::{Sampler, Traces};
use telemark_peers::NoopExporter;
use tracing_subscriber::layer::SubscriberExt;

#[inline(never)]
fn baseline(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::traced]
#[inline(never)]
fn telemark_traced(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn tracing_instrumented(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

/// Times `iters` calls in chunks that fit the span queues, flushing between
/// chunks outside the timed region, so no measured span is dropped.
fn timed_in_chunks(iters: u64, mut call: impl FnMut(), flush: impl Fn()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(1024);
        let start = Instant::now();
        for _ in 0..chunk {
            call();
        }
        total += start.elapsed();
        left -= chunk;
        flush();
    }
    total
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("peer_spans");
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("tracing_instrument_no_subscriber", |b| {
        b.iter(|| tracing_instrumented(black_box(7)))
    });

    let telemetry = telemark::builder!()
        .without_server()
        .traces(Traces::exporter(NoopExporter).sampler(Sampler::AlwaysOn))
        .start()
        .expect("telemetry");
    let flush = || {
        telemetry.flush_traces(Duration::from_secs(10));
    };
    group.bench_function("telemark_traced_sampled", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                || {
                    black_box(telemark_traced(black_box(7)));
                },
                flush,
            )
        })
    });
    telemetry.shutdown();

    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(NoopExporter)
        .build();
    let tracer = provider.tracer("bench");
    let sdk_flush = || {
        let _ = provider.force_flush();
    };
    group.bench_function("otel_sdk_in_span_sampled", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                || {
                    black_box(tracer.in_span("in_span", |_| baseline(black_box(7))));
                },
                sdk_flush,
            )
        })
    });

    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing")));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("tracing_instrument_with_tracing_opentelemetry", |b| {
            b.iter_custom(|iters| {
                timed_in_chunks(
                    iters,
                    || {
                        black_box(tracing_instrumented(black_box(7)));
                    },
                    sdk_flush,
                )
            })
        });
    });
    group.finish();
    let _ = provider.shutdown();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = spans
}
criterion_main!(benches);
