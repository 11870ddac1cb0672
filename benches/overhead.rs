//! Per-call overhead of `#[counted]` and `#[timed]` against an uninstrumented
//! baseline and against the `metrics` facade, measured in the same run.
//!
//! `cargo bench --bench overhead`. The Prometheus recorder is installed (by
//! telemark's builder) for every case, as in a real service.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

#[inline(never)]
fn baseline(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::counted]
#[inline(never)]
fn counted(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::counted]
#[inline(never)]
fn counted_result(x: u64) -> Result<u64, u64> {
    if x == u64::MAX {
        Err(x)
    } else {
        Ok(x.wrapping_mul(31).rotate_left(7))
    }
}

#[telemark::timed]
#[inline(never)]
fn timed(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
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
    telemark::set_enabled(true);
    group.finish();
}

/// Times `iters` calls on this thread while one other thread calls the same
/// function in a loop: the cost of sharing the function between two cores.
fn contended(iters: u64, call: fn(u64) -> u64) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                black_box(call(black_box(i)));
                i += 1;
            }
        })
    };
    let start = Instant::now();
    for i in 0..iters {
        black_box(call(black_box(i)));
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    other.join().unwrap();
    elapsed
}

static CACHED: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();

#[inline(never)]
fn facade_cached_global(x: u64) -> u64 {
    CACHED
        .get_or_init(|| metrics::counter!("bench_contended_total"))
        .increment(1);
    x.wrapping_mul(31).rotate_left(7)
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("two_threads");
    group.bench_function("baseline", |b| b.iter_custom(|n| contended(n, baseline)));
    group.bench_function("counted", |b| b.iter_custom(|n| contended(n, counted)));
    group.bench_function("timed", |b| b.iter_custom(|n| contended(n, timed)));
    group.bench_function("shared_atomic", |b| {
        b.iter_custom(|n| contended(n, shared_atomic))
    });
    group.bench_function("metrics_counter_cached", |b| {
        b.iter_custom(|n| contended(n, facade_cached_global))
    });
    group.finish();
}

fn setup() -> Criterion {
    // Keep the telemetry (and its recorder) alive for the whole run.
    let telemetry = telemark::builder!()
        .without_server()
        .start()
        .expect("telemetry");
    std::mem::forget(telemetry);
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = setup();
    targets = single_thread, two_threads
}
criterion_main!(benches);
