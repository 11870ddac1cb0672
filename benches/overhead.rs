//! Per-call overhead of `#[counted]`, `#[timed]`, `#[traced]` and
//! `#[circuit_breaker]` (closed) against an
//! uninstrumented baseline, the `metrics` facade and the OpenTelemetry SDK,
//! measured in the same run.
//!
//! `cargo bench --bench overhead`. The Prometheus recorder is installed (by
//! telemark's builder) for every case, as in a real service.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use telemark::opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use telemark::opentelemetry_sdk::trace::{Sampler as SdkSampler, SdkTracerProvider};
use telemark::trace::{Root, Sampler};
use telemark::Traces;

mod support;
use support::{
    baseline, baseline_async, calls, contended, counted, dropped_spans, ready, timed,
    timed_in_chunks, traced, traced_async, CallError, NoopExporter,
};

#[telemark::counted]
#[inline(never)]
fn counted_result(x: u64) -> Result<u64, u64> {
    if x == u64::MAX {
        Err(x)
    } else {
        Ok(x.wrapping_mul(31).rotate_left(7))
    }
}

#[inline(never)]
fn baseline_result(x: u64) -> Result<u64, CallError> {
    if x == u64::MAX {
        return Err(CallError::Failed);
    }
    Ok(x.wrapping_mul(31).rotate_left(7))
}

/// The default rules: consecutive failures only.
#[telemark::circuit_breaker(name = "bench-closed")]
#[inline(never)]
fn breaker_closed(x: u64) -> Result<u64, CallError> {
    if x == u64::MAX {
        return Err(CallError::Failed);
    }
    Ok(x.wrapping_mul(31).rotate_left(7))
}

/// With a failure-rate rule: every call is recorded in the sliding window.
#[telemark::circuit_breaker(name = "bench-window", failure_rate = 50, window = 100)]
#[inline(never)]
fn breaker_window(x: u64) -> Result<u64, CallError> {
    if x == u64::MAX {
        return Err(CallError::Failed);
    }
    Ok(x.wrapping_mul(31).rotate_left(7))
}

// `fn(u64) -> u64` shapes for the two-thread cases.
#[inline(never)]
fn baseline_result_value(x: u64) -> u64 {
    baseline_result(x).unwrap_or(0)
}

#[inline(never)]
fn breaker_closed_value(x: u64) -> u64 {
    breaker_closed(x).unwrap_or(0)
}

#[inline(never)]
fn breaker_window_value(x: u64) -> u64 {
    breaker_window(x).unwrap_or(0)
}

#[inline(never)]
fn facade_macro(x: u64) -> u64 {
    metrics::counter!("bench_macro_total", "function" => "facade_macro").increment(1);
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn facade_cached(counter: &metrics::Counter, x: u64) -> u64 {
    counter.increment(1);
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn facade_histogram_instant(histogram: &metrics::Histogram, x: u64) -> u64 {
    let start = Instant::now();
    let out = x.wrapping_mul(31).rotate_left(7);
    histogram.record(start.elapsed().as_secs_f64());
    out
}

#[inline(never)]
fn facade_histogram_quanta(histogram: &metrics::Histogram, clock: &quanta::Clock, x: u64) -> u64 {
    let start = clock.raw();
    let out = x.wrapping_mul(31).rotate_left(7);
    histogram.record(clock.delta_as_nanos(start, clock.raw()) as f64 / 1e9);
    out
}

static SHARED: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn shared_atomic(x: u64) -> u64 {
    SHARED.fetch_add(1, Ordering::Relaxed);
    x.wrapping_mul(31).rotate_left(7)
}

fn single_thread(c: &mut Criterion) {
    let counter = metrics::counter!("bench_cached_total");
    let histogram = metrics::histogram!("bench_cached_seconds");
    let clock = quanta::Clock::new();

    let mut group = c.benchmark_group("per_call");
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("counted", |b| b.iter(|| counted(black_box(7))));
    group.bench_function("counted_result", |b| {
        b.iter(|| counted_result(black_box(7)))
    });
    group.bench_function("timed", |b| b.iter(|| timed(black_box(7))));
    // `Result`-returning functions are measured through the same `u64`
    // wrapper, so that only the breaker differs.
    group.bench_function("baseline_result", |b| {
        b.iter(|| baseline_result_value(black_box(7)))
    });
    group.bench_function("breaker_closed", |b| {
        b.iter(|| breaker_closed_value(black_box(7)))
    });
    group.bench_function("breaker_window", |b| {
        b.iter(|| breaker_window_value(black_box(7)))
    });
    group.bench_function("shared_atomic", |b| b.iter(|| shared_atomic(black_box(7))));
    group.bench_function("metrics_counter_macro", |b| {
        b.iter(|| facade_macro(black_box(7)))
    });
    group.bench_function("metrics_counter_cached", |b| {
        b.iter(|| facade_cached(&counter, black_box(7)))
    });
    group.bench_function("metrics_histogram_instant", |b| {
        b.iter(|| facade_histogram_instant(&histogram, black_box(7)))
    });
    group.bench_function("metrics_histogram_quanta", |b| {
        b.iter(|| facade_histogram_quanta(&histogram, &clock, black_box(7)))
    });
    group.bench_function("clock_instant_now", |b| b.iter(Instant::now));
    group.bench_function("clock_quanta_raw", |b| b.iter(|| clock.raw()));

    telemark::set_enabled(false);
    group.bench_function("counted_switched_off", |b| b.iter(|| counted(black_box(7))));
    group.bench_function("timed_switched_off", |b| b.iter(|| timed(black_box(7))));
    group.bench_function("breaker_switched_off", |b| {
        b.iter(|| breaker_closed_value(black_box(7)))
    });
    telemark::set_enabled(true);
    group.finish();
}

static CACHED: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();

#[inline(never)]
fn facade_cached_global(x: u64) -> u64 {
    CACHED
        .get_or_init(|| metrics::counter!("bench_contended_total"))
        .increment(1);
    x.wrapping_mul(31).rotate_left(7)
}

/// A benchmarked function.
type Call = fn(u64) -> u64;

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("two_threads");
    let cases: [(&str, Call); 8] = [
        ("baseline", baseline),
        ("counted", counted),
        ("timed", timed),
        ("shared_atomic", shared_atomic),
        ("metrics_counter_cached", facade_cached_global),
        ("baseline_result", baseline_result_value),
        ("breaker_closed", breaker_closed_value),
        ("breaker_window", breaker_window_value),
    ];
    for (name, call) in cases {
        contended(call, || group.bench_function(name, |b| b.iter(calls(call))));
    }
    group.finish();
}

fn start_traces(sampler: Sampler) -> telemark::Telemetry {
    telemark::builder!()
        .without_server()
        .traces(Traces::exporter(NoopExporter).sampler(sampler))
        .start()
        .expect("telemetry")
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("spans");
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("baseline_async", |b| {
        b.iter(|| ready(baseline_async(black_box(7))))
    });

    let sampled = start_traces(Sampler::AlwaysOn);
    let flush = || {
        sampled.flush_traces(Duration::from_secs(10));
    };
    let dropped_before = dropped_spans(&sampled);
    group.bench_function("traced_sampled", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                || {
                    black_box(traced(black_box(7)));
                },
                flush,
            )
        })
    });
    group.bench_function("traced_async_sampled", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                || {
                    black_box(ready(traced_async(black_box(7))));
                },
                flush,
            )
        })
    });
    println!(
        "spans dropped while measuring sampled #[traced]: {}",
        dropped_spans(&sampled) - dropped_before
    );
    sampled.shutdown();

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
    let unsampled_provider = SdkTracerProvider::builder()
        .with_sampler(SdkSampler::AlwaysOff)
        .with_batch_exporter(NoopExporter)
        .build();
    let unsampled_tracer = unsampled_provider.tracer("bench");
    group.bench_function("otel_sdk_in_span_not_sampled", |b| {
        b.iter(|| unsampled_tracer.in_span("in_span", |_| baseline(black_box(7))))
    });

    // The floor of an unsampled root: finding out whether a parent exists.
    group.bench_function("otel_context_parent_lookup", |b| {
        b.iter(|| {
            telemark::opentelemetry::Context::map_current(|cx| {
                black_box(cx.span().span_context().is_valid())
            })
        })
    });

    let not_sampled = start_traces(Sampler::ParentBased(Root::AlwaysOff));
    group.bench_function("traced_not_sampled", |b| b.iter(|| traced(black_box(7))));
    not_sampled.shutdown();

    let ratio_zero = start_traces(Sampler::TraceIdRatio(0.0));
    group.bench_function("traced_sampler_off", |b| b.iter(|| traced(black_box(7))));
    ratio_zero.shutdown();

    group.bench_function("traced_no_pipeline", |b| b.iter(|| traced(black_box(7))));
    telemark::set_enabled(false);
    group.bench_function("traced_switched_off", |b| b.iter(|| traced(black_box(7))));
    telemark::set_enabled(true);
    group.finish();
    let _ = provider.shutdown();
    let _ = unsampled_provider.shutdown();
}

criterion_group! {
    name = benches;
    config = support::criterion_with_telemetry();
    targets = single_thread, two_threads, spans
}
criterion_main!(benches);
