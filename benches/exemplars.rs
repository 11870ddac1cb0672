//! What exemplars cost: a `#[counted]` + `#[timed]` function called with no
//! sampled span active (the check every call makes) and inside a sampled
//! span (both exemplars written on every call), beside an uninstrumented
//! baseline measured in the same run; and one `/metrics` render in each
//! format.
//!
//! `cargo bench --bench exemplars`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use telemark::metrics::ExpositionFormat;
use telemark::trace::Sampler;
use telemark::Traces;

#[inline(always)]
fn work(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn baseline(x: u64) -> u64 {
    work(x)
}

#[telemark::counted]
#[telemark::timed]
#[inline(never)]
fn counted_timed(x: u64) -> u64 {
    work(x)
}

/// Runs `body` inside one sampled span, active on this thread throughout.
#[telemark::traced]
fn in_sampled_span(body: impl FnOnce()) {
    body()
}

fn exemplars(c: &mut Criterion) {
    let exporter = InMemorySpanExporter::default();
    let telemetry = telemark::builder!()
        .without_server()
        .traces(Traces::exporter(exporter.clone()).sampler(Sampler::AlwaysOn))
        .start()
        .unwrap();
    let mut group = c.benchmark_group("exemplars");
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("counted_timed_no_span", |b| {
        b.iter(|| counted_timed(black_box(7)))
    });
    group.bench_function("counted_timed_in_sampled_span", |b| {
        in_sampled_span(|| b.iter(|| counted_timed(black_box(7))))
    });
    group.bench_function("render_prometheus_text", |b| {
        b.iter(|| telemetry.render_metrics_as(ExpositionFormat::PrometheusText))
    });
    group.bench_function("render_openmetrics", |b| {
        b.iter(|| telemetry.render_metrics_as(ExpositionFormat::OpenMetrics))
    });
    group.finish();
    assert!(
        telemetry
            .render_metrics_as(ExpositionFormat::OpenMetrics)
            .contains(" # {trace_id="),
        "the sampled case wrote exemplars"
    );
    exporter.reset();
}

criterion_group!(benches, exemplars);
criterion_main!(benches);
