//! Call counters and duration histograms: telemark's `#[counted]` and
//! `#[timed]` beside the `metrics` facade (macro and cached handles, with the
//! Prometheus recorder installed), `#[autometrics]` (its Prometheus
//! exporter) and metered's `HitCount` / `ResponseTime`, on a plain, a
//! `Result` and an async function, on one thread and with a second thread
//! calling the same function; measured in the same run against the same
//! uninstrumented function.
//!
//! `cargo bench -p telemark-peers --bench metrics`

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use metered::{HitCount, ResponseTime};
use telemark_peers::support::{
    baseline, baseline_async, calls, contended, counted as telemark_counted, ready,
    timed as telemark_timed,
};

#[inline(never)]
fn baseline_result(x: u64) -> Result<u64, u64> {
    if x == u64::MAX {
        return Err(x);
    }
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[telemark::counted]
#[telemark::timed]
#[inline(never)]
fn telemark_counted_timed_result(x: u64) -> Result<u64, u64> {
    if x == u64::MAX {
        return Err(x);
    }
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[autometrics::autometrics]
#[inline(never)]
fn autometrics_plain(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[autometrics::autometrics]
#[inline(never)]
fn autometrics_result(x: u64) -> Result<u64, u64> {
    if x == u64::MAX {
        return Err(x);
    }
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[telemark::counted]
#[telemark::timed]
#[inline(never)]
async fn telemark_counted_timed_async(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[autometrics::autometrics]
#[inline(never)]
async fn autometrics_async(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn metrics_counter_macro(x: u64) -> u64 {
    metrics::counter!("peers_macro_total", "function" => "metrics_counter_macro").increment(1);
    x.wrapping_mul(31).rotate_left(7)
}

fn cached_counter() -> &'static metrics::Counter {
    static COUNTER: OnceLock<metrics::Counter> = OnceLock::new();
    COUNTER.get_or_init(|| metrics::counter!("peers_cached_total"))
}

#[inline(never)]
fn metrics_counter_cached(x: u64) -> u64 {
    cached_counter().increment(1);
    x.wrapping_mul(31).rotate_left(7)
}

fn cached_histogram() -> &'static (metrics::Histogram, quanta::Clock) {
    static HISTOGRAM: OnceLock<(metrics::Histogram, quanta::Clock)> = OnceLock::new();
    HISTOGRAM.get_or_init(|| {
        (
            metrics::histogram!("peers_cached_seconds"),
            quanta::Clock::new(),
        )
    })
}

#[inline(never)]
fn metrics_histogram_cached(x: u64) -> u64 {
    let (histogram, clock) = cached_histogram();
    let start = clock.raw();
    let out = x.wrapping_mul(31).rotate_left(7);
    histogram.record(clock.delta_as_nanos(start, clock.raw()) as f64 / 1e9);
    out
}

/// metered's metrics live in a registry struct next to the code they measure.
#[derive(Default, Debug)]
struct Work {
    metrics: WorkMetrics,
}

#[metered::metered(registry = WorkMetrics)]
impl Work {
    #[measure(HitCount)]
    #[inline(never)]
    fn counted(&self, x: u64) -> u64 {
        x.wrapping_mul(31).rotate_left(7)
    }

    #[measure(ResponseTime)]
    #[inline(never)]
    fn timed(&self, x: u64) -> u64 {
        x.wrapping_mul(31).rotate_left(7)
    }
}

fn work() -> &'static Work {
    static WORK: OnceLock<Work> = OnceLock::new();
    WORK.get_or_init(Work::default)
}

#[inline(never)]
fn metered_hit_count(x: u64) -> u64 {
    work().counted(x)
}

#[inline(never)]
fn metered_response_time(x: u64) -> u64 {
    work().timed(x)
}

/// A named case: the function measured.
type Case = (&'static str, fn(u64) -> u64);

const COUNTERS: [Case; 7] = [
    ("baseline", baseline),
    ("telemark_counted", telemark_counted),
    ("metrics_counter_macro", metrics_counter_macro),
    ("metrics_counter_cached", metrics_counter_cached),
    ("autometrics", autometrics_plain),
    ("metered_hit_count", metered_hit_count),
    ("telemark_timed", telemark_timed),
];

const TIMERS: [Case; 2] = [
    ("metrics_histogram_cached_quanta", metrics_histogram_cached),
    ("metered_response_time", metered_response_time),
];

fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("peer_metrics");
    for (name, call) in COUNTERS.iter().chain(&TIMERS) {
        group.bench_function(*name, |b| b.iter(|| call(black_box(7))));
    }
    group.bench_function("baseline_result", |b| {
        b.iter(|| baseline_result(black_box(7)))
    });
    group.bench_function("telemark_counted_timed_result", |b| {
        b.iter(|| telemark_counted_timed_result(black_box(7)))
    });
    group.bench_function("autometrics_result", |b| {
        b.iter(|| autometrics_result(black_box(7)))
    });
    group.bench_function("baseline_async", |b| {
        b.iter(|| ready(baseline_async(black_box(7))))
    });
    group.bench_function("telemark_counted_timed_async", |b| {
        b.iter(|| ready(telemark_counted_timed_async(black_box(7))))
    });
    group.bench_function("autometrics_async", |b| {
        b.iter(|| ready(autometrics_async(black_box(7))))
    });
    telemark::set_enabled(false);
    group.bench_function("telemark_counted_switched_off", |b| {
        b.iter(|| telemark_counted(black_box(7)))
    });
    group.bench_function("telemark_timed_switched_off", |b| {
        b.iter(|| telemark_timed(black_box(7)))
    });
    telemark::set_enabled(true);
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("peer_metrics_two_threads");
    for (name, call) in COUNTERS {
        contended(call, || group.bench_function(name, |b| b.iter(calls(call))));
    }
    group.finish();
}

fn setup(c: &mut Criterion) {
    // Both exporters, as a service using them would have: telemark's
    // Prometheus recorder for the `metrics` facade, autometrics' own.
    let telemetry = telemark::builder!()
        .without_server()
        .start()
        .expect("telemetry");
    autometrics::prometheus_exporter::init();
    one_thread(c);
    two_threads(c);
    telemetry.shutdown();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = setup
}
criterion_main!(benches);
