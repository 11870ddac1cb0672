//! Per-call cost of `#[histogram]` and `#[gauge]` (a value from an
//! argument or from the returned value) beside an uninstrumented baseline
//! and the `metrics` facade recording the same value, in the same run.
//!
//! `cargo bench --bench value_metrics`. The Prometheus recorder is
//! installed (by telemark's builder), as in a real service.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

mod support;
use support::baseline;

/// Eight bounds, as a bytes histogram might have.
#[telemark::histogram(name = "bench_argument_bytes", value = size, buckets = [64, 128, 256, 512, 1024, 2048, 4096, 8192], unit = "bytes")]
#[inline(never)]
fn histogram_argument(x: u64, size: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::histogram(name = "bench_returned", value = |value| *value & 8191, buckets = [64, 128, 256, 512, 1024, 2048, 4096, 8192])]
#[inline(never)]
fn histogram_returned(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::gauge(name = "bench_last", value = size)]
#[inline(never)]
fn gauge_argument(x: u64, size: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn facade_histogram(histogram: &metrics::Histogram, x: u64, size: u64) -> u64 {
    histogram.record(size as f64);
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn facade_gauge(gauge: &metrics::Gauge, x: u64, size: u64) -> u64 {
    gauge.set(size as f64);
    x.wrapping_mul(31).rotate_left(7)
}

fn per_call(c: &mut Criterion) {
    let histogram = metrics::histogram!("bench_facade_bytes");
    let gauge = metrics::gauge!("bench_facade_last");
    let mut group = c.benchmark_group("value_metrics");
    let mut i = 0u64;
    // Sizes spread over the buckets, as real payloads are.
    let mut size = move || {
        i = i.wrapping_add(1);
        (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 51) & 8191
    };
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("histogram_argument", |b| {
        b.iter(|| histogram_argument(black_box(7), black_box(size())))
    });
    group.bench_function("histogram_returned", |b| {
        b.iter(|| histogram_returned(black_box(size())))
    });
    group.bench_function("gauge_argument", |b| {
        b.iter(|| gauge_argument(black_box(7), black_box(size())))
    });
    group.bench_function("metrics_histogram_cached", |b| {
        b.iter(|| facade_histogram(&histogram, black_box(7), black_box(size())))
    });
    group.bench_function("metrics_gauge_cached", |b| {
        b.iter(|| facade_gauge(&gauge, black_box(7), black_box(size())))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion_with_telemetry();
    targets = per_call
}
criterion_main!(benches);
